package jinanet

// Transport options of C ABI 0.2.2: mutual TLS (a client identity), the TLS server name (pool-wide
// and per address), compression, dns: and unix: addresses, WaitReady and the replicas' states.

/*
#include <stdint.h>
#include <stdlib.h>
#include "jina_net.h"
*/
import "C"

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Compression is how requests are compressed (PoolOptions.Compression, OneShotOptions.Compression),
// the C enum jina_net_compression.
type Compression uint32

const (
	// CompressionNone sends requests uncompressed (jina's NoCompression), the default.
	CompressionNone Compression = C.JINA_NET_COMPRESSION_NONE
	// CompressionGzip compresses requests with gzip (jina's Gzip).
	CompressionGzip Compression = C.JINA_NET_COMPRESSION_GZIP
	// CompressionDeflate compresses requests with deflate (jina's Deflate).
	CompressionDeflate Compression = C.JINA_NET_COMPRESSION_DEFLATE
)

// String is "none", "gzip" or "deflate" (ParseCompression takes them back), or "Compression(N)"
// for a value that is none of them.
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionDeflate:
		return "deflate"
	}
	return "Compression(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// ParseCompression is the Compression of a name: "none", "gzip", "deflate", or jina's names
// "NoCompression", "Gzip", "Deflate" (as in a Flow's compression setting), in any case
// (jina_net_compression_from_name). Another name, "" included, fails with ErrInvalidArgument.
func ParseCompression(name string) (Compression, error) {
	if name == "" {
		// The library takes "" for none, which its documentation does not say: refused here, as
		// a setting that was meant to be given and was not.
		return CompressionNone, newError(CodeInvalidArgument, "ParseCompression: empty compression name "+
			"(none, gzip, deflate; jina's NoCompression, Gzip, Deflate)")
	}
	n, err := cString(name, "name", "ParseCompression")
	if err != nil {
		return CompressionNone, err
	}
	defer freeString(n)
	var out C.uint32_t
	err = call(func() C.jina_net_result { return C.jina_net_compression_from_name(n, &out) })
	if err != nil {
		return CompressionNone, err
	}
	return Compression(out), nil
}

// ReplicaState is the state of a replica in the routing table (Route.States): one of the State
// constants, or a state a later library adds, as the library names it.
type ReplicaState string

const (
	// StateIdle: not connected yet (no send or WaitReady has needed it).
	StateIdle ReplicaState = "idle"
	// StateReady: it answered (a call, or a STATUS probe).
	StateReady ReplicaState = "ready"
	// StateFailing: its connection fails.
	StateFailing ReplicaState = "failing"
	// StateUnresponsive: it stopped answering (a liveness probe went unanswered).
	StateUnresponsive ReplicaState = "unresponsive"
)

// cMemory is the C memory an options struct points to (the struct may not hold Go pointers); free
// releases all of it.
type cMemory []unsafe.Pointer

// bytes copies b into C memory (b not empty).
func (m *cMemory) bytes(b []byte) *C.uint8_t {
	p := C.CBytes(b)
	*m = append(*m, p)
	return (*C.uint8_t)(p)
}

// string copies s into C memory as a C string.
func (m *cMemory) string(s string) *C.char {
	p := C.CString(s)
	*m = append(*m, unsafe.Pointer(p))
	return p
}

func (m *cMemory) free() {
	for _, p := range *m {
		C.free(p)
	}
	*m = nil
}

// applyTransport copies the TLS identity, server name, compression and DNS refresh (C ABI 0.2.2)
// into o, their C memory into c. A zero field keeps the default jina_net_pool_options_init wrote
// and is not written, so a library that predates these fields gets none of them set.
func applyTransport(opts *PoolOptions, o *C.jina_net_pool_options, c *cMemory) error {
	const fn = "NewPool"
	if len(opts.TLSCertChainPEM) > 0 {
		o.tls_cert_chain_pem = c.bytes(opts.TLSCertChainPEM)
		o.tls_cert_chain_pem_len = C.size_t(len(opts.TLSCertChainPEM))
	}
	if len(opts.TLSPrivateKeyPEM) > 0 {
		o.tls_private_key_pem = c.bytes(opts.TLSPrivateKeyPEM)
		o.tls_private_key_pem_len = C.size_t(len(opts.TLSPrivateKeyPEM))
	}
	if opts.TLSServerName != "" {
		if _, err := cString(opts.TLSServerName, "TLSServerName", fn); err != nil {
			return err
		}
		o.tls_server_name = c.string(opts.TLSServerName)
	}
	if opts.Compression != CompressionNone {
		o.compression = C.uint32_t(opts.Compression) // the library refuses an unknown one, naming it
	}
	switch d := opts.DNSRefresh; {
	case d == Disabled:
		o.dns_refresh_ms = 0
	case d < 0:
		return newError(CodeInvalidArgument, fn+": negative DNSRefresh (Disabled = never resolve again)")
	case d > 0:
		o.dns_refresh_ms = C.uint64_t(millisCeil(d))
	}
	return nil
}

// transportPreset fills the transport fields of p from the options o an _init function wrote: all
// zero (the default) but a DNS refresh other than the default's.
func transportPreset(o *C.jina_net_pool_options, p *PoolOptions) {
	var defaults C.jina_net_pool_options
	if initPoolOptions(&defaults, false) != C.JINA_NET_OK || o.dns_refresh_ms == defaults.dns_refresh_ms {
		return
	}
	if o.dns_refresh_ms == 0 {
		p.DNSRefresh = Disabled
	} else {
		p.DNSRefresh = time.Duration(o.dns_refresh_ms) * time.Millisecond
	}
}

// AddOptions are per-address settings of AddConnectionWithOptions (the head or shard is the
// Target's).
type AddOptions struct {
	// TLSServerName is the name this replica's TLS certificate must carry (and the SNI sent) instead
	// of the host of its address ("" = PoolOptions.TLSServerName, else the host). A name that is
	// neither a DNS name nor an IP address fails with ErrTLS.
	TLSServerName string
}

// AddConnectionWithOptions is AddConnection with settings of this address alone
// (jina_net_pool_add_connection_ex): the replica goes to the target's head (t.Head()) or shard
// (t.Shard(n); Deployment(name) alone means shard 0), reached as opts says. It reports whether
// anything was added (false: the address was already there; for a dns: name, whether any of its
// addresses was new). C ABI 0.2.2.
func (p *Pool) AddConnectionWithOptions(t Target, address string, opts AddOptions) (bool, error) {
	const fn = "AddConnectionWithOptions"
	dep, addr, err := connectionArgs(fn, t, address)
	if err != nil {
		return false, err
	}
	defer freeString(dep)
	defer freeString(addr)
	name, err := cOptionalString(opts.TLSServerName, "TLSServerName", fn)
	if err != nil {
		return false, err
	}
	defer freeString(name)
	var added C.bool
	err = p.use(fn, func(pool *C.jina_net_pool) error {
		return call(func() C.jina_net_result {
			return addConnectionEx(pool, dep, addr, C.bool(t.head), C.int64_t(t.shard), name, &added)
		})
	})
	return bool(added), err
}

// waitReadySlice bounds each jina_net_pool_wait_ready call of WaitReady: the C call cannot be
// interrupted, so WaitReady notices a cancelled context (and lets Close proceed) between calls.
const waitReadySlice = time.Second

// WaitReady connects every replica of deployment ("" = of every deployment) and waits until each
// has answered a STATUS control request on its connection (jina_net_pool_wait_ready): what a
// gateway checks before it declares itself ready. It returns nil when all answered.
//
// The wait ends at ctx's deadline, or when ctx is cancelled; a context without a deadline waits
// until every replica is ready (or ctx is cancelled). If some replica had not answered by then,
// the error is ErrDeadlineExceeded with the library's list of the replicas not ready (deployment,
// head or shard, address, state: "WaitReady: not ready after 10s: deployment \"enc\" shard 0 at
// 10.0.0.7:8080 (failing)"), and it unwraps to ctx.Err() (ErrCancelled for a cancelled context). An unknown deployment fails with ErrUnknownDeployment, a closed pool with
// ErrPoolClosed. Routes shows each replica's state afterwards.
//
// WaitReady blocks its goroutine and, inside the library, an OS thread; on a caller-driven pool that
// thread runs the pool meanwhile (the sends of other goroutines complete as usual). The library call
// cannot be interrupted, so WaitReady makes it in slices of at most a second and checks ctx in
// between: a cancellation is noticed, and a Close may proceed, within a second. (A replica counts as
// ready when it answers its probe within the slice.)
func (p *Pool) WaitReady(ctx context.Context, deployment string) error {
	const fn = "WaitReady"
	dep, err := cOptionalString(deployment, "deployment", fn)
	if err != nil {
		return err
	}
	defer freeString(dep)
	var last *Error // the last slice's "not ready" failure
	start := time.Now()
	for {
		if ctx.Err() != nil {
			return waitReadyContextError(ctx, fn, last)
		}
		slice := waitReadySlice
		if deadline, ok := ctx.Deadline(); ok {
			left := time.Until(deadline)
			if left <= 0 {
				return waitReadyContextError(ctx, fn, last)
			}
			if left < slice {
				slice = left
			}
		}
		err := p.use(fn, func(pool *C.jina_net_pool) error {
			return call(func() C.jina_net_result { return poolWaitReady(pool, dep, C.uint64_t(millisCeil(slice))) })
		})
		if err == nil {
			return nil
		}
		e, ok := err.(*Error)
		if !ok || e.Code != CodeDeadlineExceeded {
			return err // unknown deployment, closed pool, ...: at once
		}
		e.Message = notReadyMessage(fn, e.Message, time.Since(start))
		last = e
	}
}

// notReadyMessage is the library's "not ready after <slice>: <replicas>" message of a slice,
// saying how long WaitReady has waited in all instead (unchanged when it has another form).
func notReadyMessage(fn, msg string, waited time.Duration) string {
	const marker = "not ready after "
	i := strings.Index(msg, marker)
	if i < 0 {
		return msg
	}
	j := strings.Index(msg[i+len(marker):], ": ")
	if j < 0 {
		return msg
	}
	return fn + ": " + marker + waited.Round(time.Millisecond).String() + ": " + msg[i+len(marker)+j+2:]
}

// waitReadyContextError is WaitReady's error once ctx is done (or its deadline passed): the last
// slice's failure (naming the replicas not ready) with ctx's error as its cause; a cancelled context
// makes it ErrCancelled.
func waitReadyContextError(ctx context.Context, fn string, last *Error) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded // the deadline passed; ctx.Done is about to fire
	}
	code := CodeDeadlineExceeded
	if cause == context.Canceled {
		code = CodeCancelled
	}
	if last == nil {
		e := newError(code, fn+": "+cause.Error()+" before the wait started")
		e.cause = cause
		return e
	}
	if code == CodeCancelled {
		last.Code = code
		last.Message = fn + ": " + cause.Error() + " (" + last.Message + ")"
	}
	last.cause = cause
	return last
}
