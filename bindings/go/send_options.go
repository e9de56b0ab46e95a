package jinanet

import "context"

// SendOptions are per-send settings beyond Send's.
type SendOptions struct {
	// Idempotent says the send may be performed more than once: it is hedged when the pool hedges
	// (PoolOptions.MaxHedges). The responses still come back once.
	Idempotent bool
}

// SendWithOptions is Send with per-send options (jina_net_pool_send_ex); everything else, the
// context included, works as for Send.
func (p *Pool) SendWithOptions(ctx context.Context, req Request, target Target, opts SendOptions) ([]*Response, error) {
	return p.send(ctx, "SendWithOptions", req, target, opts, false).result()
}
