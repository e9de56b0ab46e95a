package jinanet

// The completion callback of every asynchronous C call. It lives in a file of its own because a
// file with //export may only declare C code in its preamble; the C trampoline that the library
// calls (jinanet_trampoline, in cgo_helpers.go) forwards to it.

/*
#include <stdint.h>
#include "jina_net.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
)

// jinanetSendComplete runs on a libjina_net runtime thread (never a Go-created one), exactly once per
// started send. handle is the runtime/cgo.Handle of the send's result channel: the library hands it
// back untouched, it is never a Go pointer. Everything result points to is valid only during this
// call, so it is copied into Go memory before the callback returns. No panic may unwind into C: all
// are recovered here, and a panic while copying is delivered to the waiting sender as CodePanic.
//
//export jinanetSendComplete
func jinanetSendComplete(handle C.uintptr_t, result *C.jina_net_send_result) {
	defer func() { _ = recover() }() // an invalid handle: nobody to tell, and C must not unwind
	h := cgo.Handle(handle)
	done, ok := h.Value().(chan<- sendOutcome)
	h.Delete()
	if !ok {
		return
	}
	done <- copyOutcome(result) // buffered (capacity 1) and written once: never blocks
}

// copyOutcome converts a C send result to Go, turning a panic into a CodePanic failure.
func copyOutcome(result *C.jina_net_send_result) (out sendOutcome) {
	defer func() {
		if r := recover(); r != nil {
			out = sendOutcome{err: newError(CodePanic, fmt.Sprintf("jinanet: panic while reading a send result: %v", r))}
		}
	}()
	return convertSendResult(result)
}
