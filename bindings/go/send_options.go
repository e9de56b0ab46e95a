package jinanet

/*
#include <stdint.h>
#include <stdlib.h>
#include "jina_net.h"

// Defined in callback.go (//export).
extern void jinanetSendComplete(uintptr_t handle, jina_net_send_result *result);

static void jinanet_ex_trampoline(void *user_data, const jina_net_send_result *result) {
	jinanetSendComplete((uintptr_t)user_data, (jina_net_send_result *)result);
}

// jina_net_pool_send_ex from `n` messages stored back to back in `data` (lengths `lens`).
static jina_net_result jinanet_pool_send_ex(jina_net_pool *pool, const uint8_t *data, const size_t *lens,
		size_t n, const char *deployment, jina_net_send_options *options, uintptr_t handle,
		uint64_t *out_send_id) {
	jina_net_bytes one = {NULL, 0};
	jina_net_bytes *items = &one;
	if (n > 1) {
		items = malloc(n * sizeof *items);
		if (items == NULL) return JINA_NET_RUNTIME_ERROR;
	}
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		items[i].data = lens[i] == 0 ? NULL : data + off;
		items[i].len = lens[i];
		off += lens[i];
	}
	jina_net_result rc = jina_net_pool_send_ex(pool, items, n, deployment, options, jinanet_ex_trampoline,
		(void *)handle, out_send_id);
	if (items != &one) free(items);
	return rc;
}
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
)

// SendOptions are per-send settings beyond Send's.
type SendOptions struct {
	// Idempotent says the send may be performed more than once: it is hedged when the pool hedges
	// (PoolOptions.MaxHedges). The responses still come back once.
	Idempotent bool
}

// SendWithOptions is Send with per-send options (jina_net_pool_send_ex); everything else, the
// context included, works as for Send.
func (p *Pool) SendWithOptions(ctx context.Context, req Request, target Target, opts SendOptions) ([]*Response, error) {
	const fn = "SendWithOptions"
	if err := ctx.Err(); err != nil {
		return nil, contextError(ctx, fn)
	}
	timeoutMS, expired := remainingMillis(ctx)
	if expired {
		return nil, contextDeadlineError(fn)
	}
	dep, err := cString(target.deployment, "deployment", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(dep)
	endpoint, err := cOptionalString(req.Endpoint, "endpoint", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(endpoint)
	var o C.jina_net_send_options
	C.jina_net_send_options_init(&o)
	o.kind = C.uint32_t(req.Kind)
	o.head = C.bool(target.head)
	o.shard_id = C.int64_t(target.shard)
	if target.all {
		o.polling = C.JINA_NET_POLLING_ALL
	}
	o.endpoint = endpoint
	o.timeout_ms = C.uint64_t(timeoutMS)
	o.idempotent = C.bool(opts.Idempotent)
	data, lens, buf := cMessages(req.Messages)

	done := make(chan sendOutcome, 1)
	handle := cgo.NewHandle((chan<- sendOutcome)(done))
	var id C.uint64_t
	err = p.use(fn, func(pool *C.jina_net_pool) error {
		return call(func() uint32 {
			return uint32(C.jinanet_pool_send_ex(pool, data, lensPtr(lens), C.size_t(len(lens)), dep, &o,
				C.uintptr_t(handle), &id))
		})
	})
	runtime.KeepAlive(buf)
	runtime.KeepAlive(lens)
	if err != nil {
		handle.Delete() // nothing was sent: the callback will not fire
		return nil, err
	}
	var out sendOutcome
	select {
	case out = <-done:
	case <-ctx.Done():
		p.cancel(uint64(id))
		out = <-done // the callback fires exactly once, promptly after a cancel (or a close)
	}
	runtime.KeepAlive(p)
	if out.err != nil {
		return out.responses, withContext(out.err, ctx)
	}
	return out.responses, nil
}
