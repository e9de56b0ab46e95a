package jinanet

/*
#include <stdlib.h>
#include "jina_net.h"
*/
import "C"

// MetricsText returns the pool's metrics in the Prometheus text exposition format (version 0.0.4):
// per deployment, head or shard (label shard: "head" or the id) and replica address, the latency
// histogram jina_sending_request_seconds, the counters jina_net_requests_total,
// jina_net_errors_total (label code), jina_net_retries_total, jina_net_hedges_total,
// jina_net_ejections_total, the gauge jina_net_in_flight, and with in-flight limits the queued and
// rejected sends per head or shard. It fails with ErrInvalidArgument when the pool was created
// without PoolOptions.Metrics.
func (p *Pool) MetricsText() (string, error) {
	var text *C.char
	err := p.use("MetricsText", func(pool *C.jina_net_pool) error {
		return call(func() C.jina_net_result { return C.jina_net_pool_metrics_text(pool, &text) })
	})
	if err != nil {
		return "", err
	}
	s := C.GoString(text)
	C.jina_net_string_free(text)
	return s, nil
}
