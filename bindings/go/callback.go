package jinanet

// The completion callback of every asynchronous C call, and the registry of the sends waiting for
// one. The callback lives in a file of its own because a file with //export may only declare C code
// in its preamble; the C trampoline that the library calls (jinanet_trampoline, in cgo_helpers.go)
// forwards to it.

/*
#include <stdint.h>
#include "jina_net.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// directCompletions counts the completions of caller-driven pools' sends that ran inside a
// WaitReady (for the tests).
var directCompletions int64

// waiter is one started send waiting for its completion: the callback writes out, then signals
// done (capacity 1, so the callback never blocks). Waiters are reused (waiters) once their
// completion was received, so a send allocates neither a channel nor a handle.
type waiter struct {
	done chan struct{}
	out  sendOutcome
	// batch: the completion is signalled after the poll that ran the callback (nil: at once).
	batch *batch
	// retain: large bodies stay in the library (SendView lends them), whoever runs the callback.
	retain bool
	next   *waiter // in batch
}

// batch collects the waiters completed during one poll of a caller-driven pool, to signal them
// together after it. Only the goroutine polling the pool uses it (the callbacks run inside its poll),
// and so the string cache of its conversions.
type batch struct {
	// collecting (atomic: with CallbacksInPoll, a send still pending when its pool is freed completes
	// on a library thread, which reads it too) is set during the poll.
	collecting int32
	head       *waiter
	intern     *internCache
}

// flush signals every collected waiter but own, and reports whether own was collected.
func (b *batch) flush(own *waiter) (ownDone bool) {
	w := b.head
	b.head = nil
	for w != nil {
		next := w.next // w may be recycled as soon as it is signalled
		w.next = nil
		if w == own {
			ownDone = true
		} else {
			w.done <- struct{}{}
		}
		w = next
	}
	return ownDone
}

var waiters = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

func getWaiter() *waiter { return waiters.Get().(*waiter) }

// putWaiter recycles w. Only after its completion was received from w.done: no callback may still
// hold it.
func putWaiter(w *waiter) {
	w.out = sendOutcome{}
	w.batch = nil
	w.retain = false
	waiters.Put(w)
}

// pending maps the user_data of the sends in flight to their waiters. C may not keep a Go pointer,
// so user_data is an index into this table (plus one, so that it is never NULL), not the waiter's
// address. It replaces runtime/cgo.Handle, whose sync.Map costs more for keys that live once.
var pending registry

type registry struct {
	mu    sync.Mutex
	slots []*waiter
	free  []uintptr // indexes of empty slots
}

// add registers w and returns its handle (never 0).
func (r *registry) add(w *waiter) uintptr {
	r.mu.Lock()
	var i uintptr
	if n := len(r.free); n > 0 {
		i = r.free[n-1]
		r.free = r.free[:n-1]
		r.slots[i] = w
	} else {
		i = uintptr(len(r.slots))
		r.slots = append(r.slots, w)
	}
	r.mu.Unlock()
	return i + 1
}

// take removes and returns the waiter of handle h (nil for an unknown handle).
func (r *registry) take(h uintptr) *waiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := h - 1
	if h == 0 || i >= uintptr(len(r.slots)) || r.slots[i] == nil {
		return nil
	}
	w := r.slots[i]
	r.slots[i] = nil
	r.free = append(r.free, i)
	return w
}

// size is the number of registered waiters (for the tests).
func (r *registry) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.slots) - len(r.free)
}

// jinanetSendComplete runs exactly once per started send: on the goroutine polling a caller-driven
// pool (inside jina_net_pool_poll, see driver), on the goroutine closing such a pool (inside
// jina_net_pool_free), or on a libjina_net runtime thread (pools with LibraryThreads, the one-shot
// helpers). handle is
// the send's registry handle: the library hands it back untouched, it is never a Go pointer. direct
// is non-zero when the callback runs inside jina_net_pool_wait_ready (WaitReady drives a
// caller-driven pool on its own thread, which does not hold the role of poller): the sender is
// signalled at once, the poller's batch left alone.
// Everything result points to is valid only during this call, so it is copied into Go memory before
// the callback returns. No panic may unwind into C: all are recovered here, and a panic while
// copying is delivered to the waiting sender as CodePanic.
//
//export jinanetSendComplete
func jinanetSendComplete(handle C.uintptr_t, result *C.jina_net_send_result, direct C.int) {
	defer func() { _ = recover() }() // C must not unwind
	w := pending.take(uintptr(handle))
	if w == nil {
		return // an unknown handle: nobody to tell
	}
	if direct != 0 && w.batch != nil {
		atomic.AddInt64(&directCompletions, 1)
	}
	// inside the poll of the goroutine holding the role (direct: on WaitReady's thread, another one)
	if b := w.batch; b != nil && direct == 0 && atomic.LoadInt32(&b.collecting) != 0 {
		w.out = copyOutcome(result, b.intern, w.retain)
		w.next = b.head
		b.head = w
		return
	}
	w.out = copyOutcome(result, nil, w.retain)
	w.done <- struct{}{} // capacity 1 and signalled once per registration: never blocks
}

// copyOutcome converts a C send result to Go, turning a panic into a CodePanic failure. intern (nil:
// none) is a string cache only the calling goroutine uses; retain keeps large bodies in the library.
func copyOutcome(result *C.jina_net_send_result, intern *internCache, retain bool) (out sendOutcome) {
	defer func() {
		if r := recover(); r != nil {
			out = sendOutcome{err: newError(CodePanic, fmt.Sprintf("jinanet: panic while reading a send result: %v", r))}
		}
	}()
	return convertSendResult(result, nil, intern, retain)
}
