package jinanet

import "sync/atomic"

// LivePools is the number of pools created and not yet closed (explicitly or by the finalizer).
func LivePools() int64 { return atomic.LoadInt64(&livePools) }
