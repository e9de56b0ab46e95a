package jinanet

/*
#include <stdint.h>
#include <stdlib.h>
#include "jina_net.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// CBuffer is a request buffer in C memory, for SendOwned: the library sends it without copying it
// and frees it itself when the send no longer needs it. (The cgo rules forbid C to keep a Go
// pointer after a call returns, so a zero-copy send needs the bytes in C memory from the start.)
// Build a request straight into Bytes(), or copy one in with CBufferFrom; then hand it to
// SendOwned, which takes it whatever it returns. A buffer that is not sent must be freed with Free.
//
// A CBuffer is safe for concurrent use, but its bytes are not synchronized: do not write them while
// another goroutine hands the buffer over.
type CBuffer struct {
	ptr unsafe.Pointer
	n   int
	// state: 0 = the caller's, 1 = taken (sent or being sent, or freed).
	state int32
}

// cBuffersAllocated and cBuffersFreedInGo count CBuffers (with ownedFreedByLibrary: for the tests).
var cBuffersAllocated, cBuffersFreedInGo int64

// NewCBuffer allocates an n-byte buffer in C memory (malloc; not zeroed). It panics if n is
// negative or the allocation fails, as make does.
func NewCBuffer(n int) *CBuffer {
	if n < 0 {
		panic("jinanet: NewCBuffer: negative size")
	}
	size := n
	if size == 0 {
		size = 1 // a non-NULL pointer: the library frees only non-NULL buffers
	}
	p := C.malloc(C.size_t(size))
	if p == nil {
		panic("jinanet: NewCBuffer: out of C memory")
	}
	atomic.AddInt64(&cBuffersAllocated, 1)
	b := &CBuffer{ptr: p, n: n}
	runtime.SetFinalizer(b, (*CBuffer).Free) // a buffer dropped unsent is not leaked
	return b
}

// CBufferFrom copies data into a new CBuffer (one copy, made by the caller's goroutine).
func CBufferFrom(data []byte) *CBuffer {
	b := NewCBuffer(len(data))
	copy(b.Bytes(), data)
	return b
}

// Bytes is the buffer's memory as a []byte (no copy); nil once the buffer was sent or freed. The
// slice must not be used after that.
func (b *CBuffer) Bytes() []byte {
	if b == nil || atomic.LoadInt32(&b.state) != 0 || b.n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(b.ptr), b.n)
}

// Len is the buffer's size in bytes (0 once it was sent or freed).
func (b *CBuffer) Len() int {
	if b == nil || atomic.LoadInt32(&b.state) != 0 {
		return 0
	}
	return b.n
}

// Free frees a buffer that was not sent. Freeing a sent or freed buffer (or nil) does nothing.
func (b *CBuffer) Free() {
	if b == nil || !b.take() {
		return
	}
	C.free(b.ptr)
	atomic.AddInt64(&cBuffersFreedInGo, 1)
}

// take marks the buffer as no longer the caller's; false when it already was not.
func (b *CBuffer) take() bool {
	if !atomic.CompareAndSwapInt32(&b.state, 0, 1) {
		return false
	}
	runtime.SetFinalizer(b, nil)
	return true
}

// OwnedRequest is a Request whose messages are CBuffers, for SendOwned.
type OwnedRequest struct {
	// Kind of the messages (the zero value is KindData).
	Kind RequestKind
	// Messages, as Request.Messages; each is taken by SendOwned.
	Messages []*CBuffer
	// Endpoint is the "endpoint" metadata of data requests ("" = none).
	Endpoint string
}

// NewOwnedDataRequest makes a data OwnedRequest from serialized DataRequestProto messages in C memory.
func NewOwnedDataRequest(messages ...*CBuffer) OwnedRequest {
	return OwnedRequest{Kind: KindData, Messages: messages}
}

// WithEndpoint returns a copy of r with the endpoint metadata set.
func (r OwnedRequest) WithEndpoint(endpoint string) OwnedRequest { r.Endpoint = endpoint; return r }

// SendOwned is Send without the library's copy of the request bytes (jina_net_pool_send_owned): it
// takes every buffer of req, whatever it returns, and the library frees each exactly once (with C's
// free) when the send no longer needs it, retries included; a send that fails before it started
// frees them before SendOwned returns (so does a send refused for its request metadata). Afterwards
// the buffers are empty (Bytes() is nil) and Free does nothing. A nil buffer, or one already sent or
// freed, fails the send with CodeInvalidArgument (the other buffers are freed). Everything else, the
// request metadata of the context included, is as for Send.
func (p *Pool) SendOwned(ctx context.Context, req OwnedRequest, target Target) ([]*Response, error) {
	return p.sendOwned(ctx, "SendOwned", req, target, SendOptions{}, false).result()
}

// SendOwnedWithOptions is SendOwned with per-send options (jina_net_pool_send_owned_ex): an
// Idempotent send is hedged when the pool hedges, its attempts sharing the buffers (freed once), and
// Metadata goes with every attempt.
func (p *Pool) SendOwnedWithOptions(ctx context.Context, req OwnedRequest, target Target, opts SendOptions) ([]*Response, error) {
	return p.sendOwned(ctx, "SendOwnedWithOptions", req, target, opts, false).result()
}

// SendOwnedView is SendOwned with SendView's way of handing over the outcome: no copy of the request
// bytes nor of large response bodies. view is called exactly once, as for SendView; the buffers of
// req are taken as by SendOwned (also when view is nil, which fails with CodeInvalidArgument).
func (p *Pool) SendOwnedView(ctx context.Context, req OwnedRequest, target Target,
	view func(resps []*Response, err error) error) error {
	return p.sendOwnedView(ctx, "SendOwnedView", req, target, SendOptions{}, view)
}

// SendOwnedViewWithOptions is SendOwnedView with per-send options (jina_net_pool_send_owned_ex).
func (p *Pool) SendOwnedViewWithOptions(ctx context.Context, req OwnedRequest, target Target, opts SendOptions,
	view func(resps []*Response, err error) error) error {
	return p.sendOwnedView(ctx, "SendOwnedViewWithOptions", req, target, opts, view)
}

func (p *Pool) sendOwnedView(ctx context.Context, fn string, req OwnedRequest, target Target, opts SendOptions,
	view func(resps []*Response, err error) error) error {
	if view == nil {
		for _, b := range req.Messages {
			b.Free()
		}
		return newError(CodeInvalidArgument, fn+": view is nil")
	}
	return lendTo(view, p.sendOwned(ctx, fn, req, target, opts, true))
}

// sendOwned is SendOwned and its variants with options and view: the outcome, as send's.
func (p *Pool) sendOwned(ctx context.Context, fn string, req OwnedRequest, target Target, opts SendOptions,
	view bool) sendOutcome {
	// Take every buffer first: from here on each is freed exactly once, by the library or below.
	taken := make([]*CBuffer, 0, len(req.Messages))
	var bad error
	for _, b := range req.Messages {
		switch {
		case b == nil:
			bad = newError(CodeInvalidArgument, fn+": a message is a nil *CBuffer")
		case !b.take():
			bad = newError(CodeInvalidArgument, fn+": a message's CBuffer was already sent or freed")
		default:
			taken = append(taken, b)
		}
	}
	freeAll := func() {
		for _, b := range taken {
			C.free(b.ptr)
			atomic.AddInt64(&cBuffersFreedInGo, 1)
		}
	}
	if bad != nil {
		freeAll()
		return sendOutcome{err: bad}
	}
	if err := ctx.Err(); err != nil {
		freeAll()
		return sendOutcome{err: contextError(ctx, fn)}
	}
	timeoutMS, expired := remainingMillis(ctx)
	if expired {
		freeAll()
		return sendOutcome{err: contextDeadlineError(fn)}
	}
	dep, err := sendString(target.deployment, "deployment", fn)
	if err != nil {
		freeAll()
		return sendOutcome{err: err}
	}
	endpoint, err := sendString(req.Endpoint, "endpoint", fn)
	if err != nil {
		freeAll()
		return sendOutcome{err: err}
	}
	md, err := requestMetadata(ctx, opts.Metadata, fn)
	if err != nil {
		freeAll()
		return sendOutcome{err: err}
	}
	shards := C.uint32_t(C.JINA_NET_SHARDS_ANY)
	if target.all {
		shards = C.JINA_NET_SHARDS_ALL
	}
	// Only C pointers inside: this Go array may be passed to C.
	items := make([]C.jina_net_bytes, len(taken))
	for i, b := range taken {
		items[i].data = (*C.uint8_t)(b.ptr)
		items[i].len = C.size_t(b.n)
	}
	var itemsPtr *C.jina_net_bytes
	if len(items) > 0 {
		itemsPtr = &items[0]
	}
	out, called, err := p.start(ctx, fn, view, func(pool *C.jina_net_pool, handle C.uintptr_t, id *C.uint64_t) C.jina_net_result {
		return poolSendOwned(pool, C.uint32_t(req.Kind), itemsPtr, C.size_t(len(items)), dep,
			C.bool(target.head), C.int64_t(target.shard), shards, endpoint, C.uint64_t(timeoutMS),
			C.bool(opts.Idempotent), md, handle, id)
	})
	runtime.KeepAlive(items)
	runtime.KeepAlive(target.deployment)
	runtime.KeepAlive(req.Endpoint)
	md.release() // the library copied the entries before the send call returned
	if !called {
		freeAll() // the pool was closed before the library saw the buffers
	}
	if err != nil {
		return sendOutcome{err: err}
	}
	return out
}
