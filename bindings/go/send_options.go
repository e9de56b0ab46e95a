package jinanet

import "context"

// SendOptions are per-send settings beyond Send's.
type SendOptions struct {
	// Idempotent says the send may be performed more than once: it is hedged when the pool hedges
	// (PoolOptions.MaxHedges). The responses still come back once.
	Idempotent bool
	// Metadata is request metadata sent with every attempt of the send (see Metadata for the rules
	// of keys and values). It is merged with the context's (NewOutgoingContext,
	// AppendToOutgoingContext): the values of a key both give are all sent, the context's first.
	// nil (and no metadata in the context) sends none and costs nothing.
	Metadata Metadata
}

// SendWithOptions is Send with per-send options (jina_net_pool_send_ex for an idempotent send or one
// with metadata); everything else, the context included, works as for Send.
func (p *Pool) SendWithOptions(ctx context.Context, req Request, target Target, opts SendOptions) ([]*Response, error) {
	return p.send(ctx, "SendWithOptions", req, target, opts, false).result()
}
