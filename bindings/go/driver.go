package jinanet

/*
#include <stdint.h>
#include "jina_net.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"time"
)

// driver runs a caller-driven pool (the default; PoolOptions.LibraryThreads turns it off) on Go
// goroutines: its network I/O, timers and completion callbacks run inside jina_net_pool_poll, called
// by one goroutine at a time, the one holding the pool's role of poller. A pool with
// PoolOptions.CallbacksInPoll is polled the same way, for its callbacks only (library threads run
// its I/O).
//
//   - A goroutine waiting in Send for its completion takes the role when it is free (the leader) and
//     polls until its own send has completed; the others (followers) wait on their channel, or for
//     the role. So with one send in flight, the goroutine that sent also polls: the request and its
//     completion cross no thread. The callbacks reach Go on a Go thread that is inside a cgo call,
//     cgocallback's cheap path (no extra M taken and given back, no signal-mask syscalls), not on a
//     library thread Go did not create.
//   - The callbacks run during the leader's poll only copy the result and collect the waiter; the
//     leader signals all of them after the poll returns, then yields (runtime.Gosched) so that the
//     goroutines it woke can run, and make their next sends, on its own thread before it polls again.
//   - When the leader's send completed it gives the role up and wakes one follower, if any, to take
//     it. A follower whose context is cancelled cancels its send (jina_net_pool_cancel); a leader,
//     which cannot select on its context while inside C, polls in slices of leaderCancelPollMS when
//     its context can be cancelled, and cancels between them.
//   - While no Send waits, nobody needs the pool's answers, but its connections still should be
//     served (HTTP/2 pings and settings, closes from servers, background timers). An idle poller
//     goroutine takes the role after the pool was left alone for idleAfter and polls with no time
//     limit; a Send arriving meanwhile is run by it (the completion ends its poll, it gives the role
//     back), and the senders lead again.
//
// While it waits in the poll, a goroutine is inside a cgo call: it occupies its OS thread but no P
// (as in a blocking syscall), so polling takes no GOMAXPROCS slot from other goroutines. There is
// never more than one poller: only one thread can run a caller-driven pool at a time.
//
// The driver does not point to its Pool, so a Pool whose driver's idle poller runs can still be
// finalized.
type driver struct {
	pool *C.jina_net_pool
	// state: driverHeld | driverClosed, and above them a count of the role's acquisitions by
	// senders (the idle poller's sign of activity). Atomic.
	state     uint32
	followers int32         // goroutines waiting for a completion or the role (atomic)
	wake      chan struct{} // capacity 1: the role was given up while followers waited
	released  chan struct{} // capacity 1: the role was given up after the pool was closed
	closing   chan struct{} // closed by close: the idle poller stops
	idleDone  chan struct{} // closed when the idle poller has returned

	// Used only by the goroutine holding the role (the callbacks run inside its poll).
	batch  batch
	intern internCache
}

const (
	driverHeld     = 1
	driverClosed   = 2
	driverAcquired = 4 // the unit of the acquisition count
)

// leaderCancelPollMS bounds each poll of a leader whose context can be cancelled (it checks the
// context in between): the most a cancellation of a leading send waits before it is passed on.
const leaderCancelPollMS = 10

// idleAfter: the idle poller takes the role when no sender has taken it for this long.
const idleAfter = 50 * time.Millisecond

// noTimeLimit is the poll timeout "no time limit" (UINT64_MAX).
const noTimeLimit = ^C.uint64_t(0)

// For the tests: polls that failed (not expected), running idle pollers, and the times an idle
// poller took the role.
var pollFailures, idlePollers, idlePolls int64

func newDriver(pool *C.jina_net_pool) *driver {
	d := &driver{
		pool:     pool,
		wake:     make(chan struct{}, 1),
		released: make(chan struct{}, 1),
		closing:  make(chan struct{}),
		idleDone: make(chan struct{}),
	}
	d.batch.intern = &d.intern
	atomic.AddInt64(&idlePollers, 1)
	go d.idle()
	return d
}

// tryAcquire takes the role if it is free and the pool is open (count: a sender's acquisition).
func (d *driver) tryAcquire(count uint32) bool {
	s := atomic.LoadUint32(&d.state)
	return s&(driverHeld|driverClosed) == 0 && atomic.CompareAndSwapUint32(&d.state, s, (s+count)|driverHeld)
}

// release gives the role up: it wakes one follower (it takes the role, or passes the wake on), or,
// once the pool is closed, close.
func (d *driver) release() {
	for {
		s := atomic.LoadUint32(&d.state)
		if !atomic.CompareAndSwapUint32(&d.state, s, s&^driverHeld) {
			continue
		}
		if s&driverClosed != 0 {
			notify(d.released)
			return
		}
		break
	}
	// A follower increments followers before it checks the role, and release frees the role before
	// it reads followers: a follower that saw the role held is seen here.
	if atomic.LoadInt32(&d.followers) > 0 {
		notify(d.wake)
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a signal is pending already
	}
}

// close stops the driving: no goroutine takes the role any more, the poll running returns
// (jina_net_pool_close makes every poll of the pool return, and later ones at once), and close waits
// until its goroutine has given the role up and the idle poller has returned. The pool is closed,
// not freed; its pending sends complete in jina_net_pool_free.
func (d *driver) close() {
	var s uint32
	for {
		s = atomic.LoadUint32(&d.state)
		if atomic.CompareAndSwapUint32(&d.state, s, s|driverClosed) {
			break
		}
	}
	close(d.closing)
	C.jina_net_pool_close(d.pool)
	if s&driverHeld != 0 {
		<-d.released
	}
	<-d.idleDone
}

// wait waits for w's completion, leading while no other goroutine polls. cancelled is ctx.Done()
// (nil: the context cannot be cancelled), id the send's id for jina_net_pool_cancel, cancel the
// follower's way to cancel (through the pool's lock).
func (d *driver) wait(w *waiter, cancelled <-chan struct{}, id C.uint64_t, cancel func()) {
	for {
		if d.tryAcquire(driverAcquired) {
			if d.lead(w, &cancelled, id) {
				return
			}
			// The pool was closed: the completion comes from jina_net_pool_free.
		}
		atomic.AddInt32(&d.followers, 1)
		if atomic.LoadUint32(&d.state)&(driverHeld|driverClosed) == 0 {
			atomic.AddInt32(&d.followers, -1) // the role was given up meanwhile: take it
			continue
		}
		select {
		case <-w.done:
			atomic.AddInt32(&d.followers, -1)
			return
		case <-d.wake:
			atomic.AddInt32(&d.followers, -1)
		case <-cancelled:
			atomic.AddInt32(&d.followers, -1)
			cancelled = nil
			cancel()
		}
	}
}

// lead polls, holding the role, until w has completed (true: its signal is consumed) or the pool is
// closed (false). It gives the role up either way.
func (d *driver) lead(w *waiter, cancelled *<-chan struct{}, id C.uint64_t) bool {
	for {
		select {
		case <-w.done: // signalled while this goroutine was a follower
			d.release()
			return true
		default:
		}
		if atomic.LoadUint32(&d.state)&driverClosed != 0 {
			d.release()
			return false
		}
		timeout := noTimeLimit
		if *cancelled != nil {
			timeout = leaderCancelPollMS
		}
		own := d.poll(timeout, w)
		if own {
			d.release()
			return true
		}
		if *cancelled != nil {
			select {
			case <-*cancelled:
				*cancelled = nil
				C.jina_net_pool_cancel(d.pool, id) // the role keeps the pool alive; NOT_FOUND: done
			default:
			}
		}
		runtime.Gosched() // let the goroutines just signalled run (and send) on this thread first
	}
}

// poll runs one jina_net_pool_poll, collecting the completions, and then signals them, except
// own's, which it reports instead. Only the role's holder calls it.
func (d *driver) poll(timeout C.uint64_t, own *waiter) (ownDone bool) {
	atomic.StoreInt32(&d.batch.collecting, 1)
	rc := C.jina_net_pool_poll(d.pool, timeout, nil)
	atomic.StoreInt32(&d.batch.collecting, 0)
	ownDone = d.batch.flush(own)
	if rc != C.JINA_NET_OK {
		// Not expected: the pool is caller-driven and no goroutine polls from a callback. The
		// sends still need polling: go on, a little later.
		atomic.AddInt64(&pollFailures, 1)
		time.Sleep(time.Millisecond)
	}
	return ownDone
}

// idle is the idle poller (see driver).
func (d *driver) idle() {
	defer close(d.idleDone)
	defer atomic.AddInt64(&idlePollers, -1)
	t := time.NewTimer(idleAfter)
	defer t.Stop()
	last := atomic.LoadUint32(&d.state)
	for {
		select {
		case <-d.closing:
			return
		case <-t.C:
		}
		s := atomic.LoadUint32(&d.state)
		quiet := s&^(driverHeld|driverClosed) == last&^(driverHeld|driverClosed)
		if quiet && atomic.LoadInt32(&d.followers) == 0 && d.tryAcquire(0) {
			atomic.AddInt64(&idlePolls, 1)
			d.poll(noTimeLimit, nil) // until a completion (a send made meanwhile) or the close
			d.release()
		}
		last = atomic.LoadUint32(&d.state)
		t.Reset(idleAfter)
	}
}
