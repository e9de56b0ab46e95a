package jinanet

/*
#include <stdlib.h>
#include "jina_net.h"
*/
import "C"

import (
	"context"
	"runtime"
	"time"
	"unsafe"
)

// OneShotOptions configures SendRequestSync (nil = defaults).
type OneShotOptions struct {
	// Timeout is the deadline of the call, retries included (0 = the library's 100 s).
	Timeout time.Duration
	// TLS uses TLS even without an https:// or grpcs:// address.
	TLS bool
	// RootCertificatesPEM are the PEM root certificates to trust instead of the system roots.
	RootCertificatesPEM []byte

	// C ABI 0.2.2 (a zero field is not written; see PoolOptions for each):

	// TLSCertChainPEM and TLSPrivateKeyPEM are a client identity for mutual TLS (PEM, both or
	// neither; otherwise, or when they do not decode, ErrTLS).
	TLSCertChainPEM  []byte
	TLSPrivateKeyPEM []byte
	// TLSServerName is the name the server's certificate must carry instead of the address's host
	// ("" = the host).
	TLSServerName string
	// Compression compresses the request (0 = CompressionNone).
	Compression Compression
}

// SendRequestSync sends req straight to address (no pool; jina's send_requests_sync), with up to 3
// attempts on UNAVAILABLE, each on a fresh channel, and blocks until the response. The response's
// Shard is -1. It blocks its OS thread for the whole call (use a Pool and Send to honour a context).
func SendRequestSync(req Request, address string, opts *OneShotOptions) (*Response, error) {
	const fn = "SendRequestSync"
	guardSIGPIPE()
	if opts == nil {
		opts = &OneShotOptions{}
	}
	if opts.Timeout < 0 {
		return nil, newError(CodeInvalidArgument, fn+": negative Timeout")
	}
	target, err := cString(address, "address", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(target)
	endpoint, err := cOptionalString(req.Endpoint, "endpoint", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(endpoint)
	serverName, err := cOptionalString(opts.TLSServerName, "TLSServerName", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(serverName)
	var pem *C.uint8_t
	if len(opts.RootCertificatesPEM) > 0 {
		pem = (*C.uint8_t)(unsafe.Pointer(&opts.RootCertificatesPEM[0]))
	}
	tr := oneShotTransport{chain: opts.TLSCertChainPEM, key: opts.TLSPrivateKeyPEM, serverName: serverName,
		compression: opts.Compression}
	data, lens, single, buf := cMessages(req.Messages)
	var resp *C.jina_net_response
	err = call(func() C.jina_net_result {
		return sendRequestsSync(C.uint32_t(req.Kind), data, lensPtr(lens), C.size_t(len(req.Messages)), single, target,
			C.uint64_t(millisCeil(opts.Timeout)), C.bool(opts.TLS), pem, C.size_t(len(opts.RootCertificatesPEM)),
			endpoint, &tr, &resp)
	})
	runtime.KeepAlive(buf)
	runtime.KeepAlive(lens)
	runtime.KeepAlive(opts)
	if err != nil {
		return nil, err
	}
	defer C.jina_net_response_free(resp)
	return convertResponse(resp)
}

// ActivateWorker registers the worker workerHost:workerPort (shard shard, or NoShard to send none)
// with the head at headAddress: a control request ACTIVATE, one attempt, with the library's deadline
// of 1 s. The response's Body is the head's echo of the ControlRequestProto. If ctx is done first,
// ActivateWorker returns its error at once (the request may still reach the head).
func ActivateWorker(ctx context.Context, workerHost string, workerPort int, headAddress string, shard int) (*Response, error) {
	return workerControlRequest(ctx, "ActivateWorker", true, workerHost, workerPort, headAddress, shard)
}

// DeactivateWorker takes the worker out of the head (DEACTIVATE); otherwise as ActivateWorker.
func DeactivateWorker(ctx context.Context, workerHost string, workerPort int, headAddress string, shard int) (*Response, error) {
	return workerControlRequest(ctx, "DeactivateWorker", false, workerHost, workerPort, headAddress, shard)
}

func workerControlRequest(ctx context.Context, fn string, activate bool, workerHost string, workerPort int,
	headAddress string, shard int) (*Response, error) {
	guardSIGPIPE()
	if err := ctx.Err(); err != nil {
		return nil, contextError(ctx, fn)
	}
	if workerPort < 0 || workerPort > 65535 {
		return nil, newError(CodeInvalidArgument, fn+": worker port out of range")
	}
	host, err := cString(workerHost, "worker host", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(host)
	head, err := cString(headAddress, "head address", fn)
	if err != nil {
		return nil, err
	}
	defer freeString(head)
	w := getWaiter()
	handle := pending.add(w)
	err = call(func() C.jina_net_result {
		return workerControl(activate, host, C.uint16_t(workerPort), head, C.int64_t(shard), C.uintptr_t(handle))
	})
	if err != nil {
		pending.take(handle)
		putWaiter(w)
		return nil, err
	}
	select {
	case <-w.done:
		out := w.out
		putWaiter(w)
		out.materialize()
		var resp *Response
		if len(out.responses) > 0 {
			resp = out.responses[0]
		}
		return resp, out.err
	case <-ctx.Done():
		// No cancel for the one-shot helpers: the callback still fires (within the library's 1 s)
		// and signals the buffered channel of w, which is then garbage (not recycled).
		return nil, contextError(ctx, fn)
	}
}

// HostIsLocal says whether host is this machine: "localhost", "0.0.0.0" and loopback IPs are, other
// IPs are not, and any other name fails with ErrInvalidHost (as jina raises).
func HostIsLocal(host string) (bool, error) {
	h, err := cString(host, "host", "HostIsLocal")
	if err != nil {
		return false, err
	}
	defer freeString(h)
	var local C.bool
	err = call(func() C.jina_net_result { return C.jina_net_host_is_local(h, &local) })
	return bool(local), err
}

// IsRemoteLocalConnection is jina's is_remote_local_connection(first, second): true only when first
// is a global address and second is private or loopback (or "localhost").
func IsRemoteLocalConnection(first, second string) (bool, error) {
	a, err := cString(first, "first", "IsRemoteLocalConnection")
	if err != nil {
		return false, err
	}
	defer freeString(a)
	b, err := cString(second, "second", "IsRemoteLocalConnection")
	if err != nil {
		return false, err
	}
	defer freeString(b)
	var result C.bool
	err = call(func() C.jina_net_result { return C.jina_net_is_remote_local_connection(a, b, &result) })
	return bool(result), err
}

// GRPCOption is a gRPC channel option in gRPC core's naming; Value -1 means unlimited.
type GRPCOption struct {
	Name  string
	Value int64
}

// DefaultGRPCOptions are jina's default gRPC options (unlimited message sizes).
func DefaultGRPCOptions() []GRPCOption {
	var n C.size_t
	p := C.jina_net_default_grpc_options(&n)
	opts := make([]GRPCOption, 0, int(n))
	for _, o := range unsafe.Slice(p, int(n)) {
		opts = append(opts, GRPCOption{Name: C.GoString(o.name), Value: int64(o.value)})
	}
	return opts
}

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.jina_net_version()) }

// SetBusyPoll sets the most a library worker busy-polls before it sleeps, in microseconds (default
// 100; 0 turns it off): while a few sends (at most 8) wait for their answers, or right after the
// last one completed, a worker with nothing to run polls the connections that long instead of
// sleeping at once (less latency on machines whose idle CPUs sleep deeply, for CPU; see the
// README's "Busy polling"). Any time, also while the runtime runs. Over 10000 fails with
// ErrInvalidArgument. C ABI 0.2.3.
func SetBusyPoll(microseconds uint32) error {
	return call(func() C.jina_net_result { return C.jina_net_runtime_set_busy_poll_us(C.uint32_t(microseconds)) })
}

// InitRuntime sets the number of worker threads of the library runtime (default: half the cores,
// at least 1 and at most 4).
// Only before the runtime starts (the first NewPool, send or helper starts it); afterwards it fails
// with ErrAlreadyStarted.
func InitRuntime(workerThreads int) error {
	if workerThreads < 0 || int64(workerThreads) > int64(^uint32(0)) {
		return newError(CodeInvalidArgument, "InitRuntime: worker thread count out of range")
	}
	return call(func() C.jina_net_result { return C.jina_net_runtime_init(C.uint32_t(workerThreads)) })
}
