package jinanet

import "context"

// SendView is Send without the copy of large response bodies into Go memory, for a caller that
// reads a response and then forgets it (a gateway forwarding it, a parser): view is called exactly
// once, on the calling goroutine, with what Send would have returned (the error of a send that did
// not start, with no responses, included), and SendView returns what view returns.
//
// A body of 64 KiB or more is then a view of the library's buffer, not a copy: it is valid only
// until view returns, and must not be modified. The library frees it after view (also when view
// panics) and the Body of that *Response becomes nil; copy what must outlive view. Smaller bodies
// are copied, as by Send. A large response costs no Go allocation, so neither the copy nor the
// garbage collection that 1 MiB responses bring. Everything else (the context, cancellation,
// timeouts, caller-driven or library threads) is as for Send.
func (p *Pool) SendView(ctx context.Context, req Request, target Target,
	view func(resps []*Response, err error) error) error {
	if view == nil {
		return newError(CodeInvalidArgument, "SendView: view is nil")
	}
	return lendTo(view, p.send(ctx, "SendView", req, target, SendOptions{}, true))
}

// SendViewWithOptions is SendView with per-send options (as SendWithOptions).
func (p *Pool) SendViewWithOptions(ctx context.Context, req Request, target Target, opts SendOptions,
	view func(resps []*Response, err error) error) error {
	if view == nil {
		return newError(CodeInvalidArgument, "SendViewWithOptions: view is nil")
	}
	return lendTo(view, p.send(ctx, "SendViewWithOptions", req, target, opts, true))
}

// lendTo calls view with out, its retained bodies lent, and frees them when view returns or panics.
func lendTo(view func(resps []*Response, err error) error, out sendOutcome) error {
	defer out.release()
	out.lend()
	return view(out.responses, out.err)
}
