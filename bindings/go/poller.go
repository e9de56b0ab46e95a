package jinanet

/*
#include <stdint.h>
#include "jina_net.h"
*/
import "C"

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// poller runs a caller-driven pool: one goroutine loops on jina_net_pool_poll, inside which the
// pool's network I/O, timers and completion callbacks run. The callbacks thus reach Go on a Go
// thread that is inside a cgo call (cgocallback's cheap path: no extra M, no signal-mask syscalls)
// instead of on a library thread Go did not create. Sends are queued to the pool from any goroutine
// (jina_net_pool_send wakes the poll). One poller per pool: only one thread can run a caller-driven
// pool at a time, so a second one would only wait.
//
// While it waits in the poll, the poller's goroutine is in a cgo call: it occupies its OS thread but
// no P (like a blocking syscall), so it does not take a GOMAXPROCS slot from other goroutines.
type poller struct {
	pool    *C.jina_net_pool
	stopped int32 // atomic: Close asked the poller to stop (set before jina_net_pool_close)
	exited  chan struct{}
}

// pollerFailures counts polls that failed (never expected; for the tests).
var pollerFailures int64

// pollers counts the running pollers (for the tests).
var pollers int64

// Experiment knobs (temporary).
var (
	pollerLock    = os.Getenv("JINANET_POLLER_LOCK") == "1"
	pollerGosched = os.Getenv("JINANET_POLLER_GOSCHED") == "1"
)

func startPoller(pool *C.jina_net_pool) *poller {
	pl := &poller{pool: pool, exited: make(chan struct{})}
	atomic.AddInt64(&pollers, 1)
	go pl.run()
	return pl
}

func (pl *poller) run() {
	defer close(pl.exited)
	defer atomic.AddInt64(&pollers, -1)
	if pollerLock {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	backoff := time.Millisecond
	for atomic.LoadInt32(&pl.stopped) == 0 {
		var n C.size_t
		// No time limit: the poll returns when a send completed, or when the pool is closed.
		rc := C.jina_net_pool_poll(pl.pool, C.uint64_t(^uint64(0)), &n)
		if rc != C.JINA_NET_OK {
			// Not expected (the pool is caller-driven and this goroutine is never inside a
			// callback); the sends still need a poller, so keep polling, a little later.
			atomic.AddInt64(&pollerFailures, 1)
			time.Sleep(backoff)
			if backoff < 100*time.Millisecond {
				backoff *= 2
			}
			continue
		}
		backoff = time.Millisecond
		if pollerGosched && n > 0 {
			runtime.Gosched()
		}
	}
}

// stop makes the poller return and waits for it; the pool is closed (jina_net_pool_close) but not
// freed. Only Close calls it, once.
func (pl *poller) stop() {
	atomic.StoreInt32(&pl.stopped, 1)
	C.jina_net_pool_close(pl.pool) // every poll of the pool returns, and later ones at once
	<-pl.exited
}
