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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NoShard is the "no shard id" of the C ABI (JINA_NET_NO_SHARD).
const NoShard = C.JINA_NET_NO_SHARD

// PoolOptions configures a Pool. The zero value (or a nil *PoolOptions) gives jina 3.1's retry
// behaviour with the library's connection safeguards (a connect timeout, TCP_USER_TIMEOUT, HTTP/2
// keepalive, liveness probes); ResilientPoolOptions gives the library's recommended settings for
// production. A field left at its zero value takes the library's default (that of
// jina_net_pool_options_init), whatever else is set; Disabled turns off a safeguard that is on by
// default (ConnectTimeout, TCPUserTimeout, KeepaliveInterval, ProbeAfter) and the re-resolving of
// dns: names (DNSRefresh).
type PoolOptions struct {
	// MaxAttempts is the number of attempts per send on UNAVAILABLE, the first included
	// (0 = the library default, 3; 1 = no retry). With FailOver, at least one per replica.
	MaxAttempts int
	// DefaultTimeout is the deadline of a send whose context has none (0 = none).
	DefaultTimeout time.Duration
	// TLS uses TLS for every address, also those without https:// or grpcs://.
	TLS bool
	// RootCertificatesPEM are the PEM root certificates to trust for TLS instead of the system roots.
	RootCertificatesPEM []byte

	// FailOver retries a send that failed with UNAVAILABLE on the next replica of its head or shard
	// instead of the same one, every replica being tried before the send fails (false: jina 3.1's
	// retries in place).
	FailOver bool
	// InitialBackoff (0 = none) caps the wait before a retry that goes back to a replica already
	// tried; the cap is multiplied by BackoffMultiplier (0 = the default, 1; at least 1) per attempt,
	// up to MaxBackoff (0 = InitialBackoff). Each wait is uniformly random in [0, cap] (gRFC A6).
	InitialBackoff    time.Duration
	BackoffMultiplier float64
	MaxBackoff        time.Duration
	// EjectAfterFailures (0 = never eject, as jina) consecutive UNAVAILABLE failures eject a
	// replica: it is skipped while healthy ones exist, for BaseEjection (0 = the default, 100ms)
	// doubling per consecutive ejection up to MaxEjection (0 = the default, 800ms), and at most
	// MaxEjectionPercent (0 = the default, 50; at most 100) of a replica list is ejected at once.
	// To keep the other settings of ResilientPoolOptions without ejection, set EjectAfterFailures
	// to 0.
	EjectAfterFailures int
	BaseEjection       time.Duration
	MaxEjection        time.Duration
	MaxEjectionPercent int

	// Balance picks a replica of a head or shard: BalanceRoundRobin (jina's order, the default) or
	// BalanceP2C. P2CDefaultRTT (0 = 30ms) is the latency estimate of a replica not heard from yet,
	// P2CDecay (0 = 10s) the decay time of the estimate.
	Balance       Balance
	P2CDefaultRTT time.Duration
	P2CDecay      time.Duration
	// MaxInFlightPerReplica limits the calls in flight per replica (0 = no limit). When every
	// replica of a head or shard is full a send waits for a slot, up to its deadline, in a queue of
	// MaxQueuedSends (0 = 1000; NoQueue = none); beyond it the send fails at once with
	// ErrResourceExhausted, naming the deployment and the shard.
	MaxInFlightPerReplica int
	MaxQueuedSends        int
	// MaxHedges (0 = never) hedged attempts are sent to other replicas for sends marked idempotent
	// (SendWithOptions), one each HedgeDelay without an answer; the first answer wins.
	HedgeDelay time.Duration
	MaxHedges  int
	// Metrics keeps per-replica metrics (Pool.MetricsText).
	Metrics bool
	// LibraryThreads runs the pool on the library's runtime threads (shared by all such pools), as
	// the C ABI does by default: completions reach Go through callbacks from threads Go did not
	// create. By default (false) a Pool is caller-driven: it starts no library thread, and the
	// goroutines waiting in Send run it themselves, one at a time, inside jina_net_pool_poll, so
	// completions reach Go on a Go thread inside a cgo call and a send with one request in flight
	// crosses no thread at all. While no Send waits, one goroutine of the pool polls it (after it
	// was left alone for 50 ms), so its connections are still served. A pool polls on at most one
	// OS thread at a time; the goroutine polling holds no P while it waits for the network.
	LibraryThreads bool
	// CallbacksInPoll, with LibraryThreads: the library threads run the pool, but completions reach
	// Go inside jina_net_pool_poll, run by the goroutines waiting in Send as for a caller-driven pool
	// (one at a time; an idle poller while none waits): on a Go thread inside a cgo call, several per
	// poll, instead of one callback from a thread Go did not create per completion. The library
	// wakes a waiting poll once per burst of completions. Sends still pending when the pool is
	// closed complete on a library thread. No effect without LibraryThreads. C ABI 0.2.4.
	CallbacksInPoll bool

	// Connections and gray failures (a replica that is up but does not answer: a frozen process, a
	// hung runtime, a dead node whose connections stay open). C ABI 0.2.1.

	// ConnectTimeout is the time allowed to establish a connection, TCP and TLS (0 = the default,
	// 5s; Disabled = no limit).
	ConnectTimeout time.Duration
	// TCPUserTimeout is the connections' TCP_USER_TIMEOUT: a connection whose sent data stays
	// unacknowledged this long is closed, failing its calls (0 = the default, 20s; Disabled = the
	// system's).
	TCPUserTimeout time.Duration
	// KeepaliveInterval is the HTTP/2 keepalive: a PING this often while calls are outstanding,
	// never on an idle connection (0 = the default, 5min, what gRPC servers accept without strikes;
	// Disabled = no keepalive; otherwise at least 10s, gRFC A8's minimum, else NewPool fails with
	// ErrInvalidArgument). A PING not acknowledged within KeepaliveTimeout (0 = the default, 20s)
	// closes the connection.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// ProbeAfter and ProbeTimeout are the liveness probes: a replica with calls outstanding that
	// has answered nothing for ProbeAfter (0 = the default, 2s; 500ms in ResilientPoolOptions;
	// Disabled = no probes) gets a STATUS control request on the same connection. A probe not
	// answered within ProbeTimeout (0 = the default, 5s; 1s in ResilientPoolOptions) marks the
	// replica unresponsive: the calls pending on it end with UNAVAILABLE (ErrRPC, GRPCCode 14, a
	// message saying the replica "stopped answering" and naming it), sends avoid it, and it is
	// probed again until it answers. A send marked idempotent (SendOptions.Idempotent) whose call
	// ends so goes on to another replica of its head or shard; others do with FailOverUnanswered.
	ProbeAfter   time.Duration
	ProbeTimeout time.Duration
	// FailOverUnanswered sends a send not marked idempotent on to another replica as well when its
	// replica stopped answering or its attempt timed out (PerAttemptTimeout). Off by default: that
	// replica may have received the request, so it may run twice.
	FailOverUnanswered bool
	// EjectOnDeadline counts attempts ending DEADLINE_EXCEEDED (an attempt timeout included) toward
	// ejection (EjectAfterFailures); on in ResilientPoolOptions.
	EjectOnDeadline bool
	// PerAttemptTimeout is the time one attempt may take (0 = none: only the send's deadline).
	// When it runs out, a send marked idempotent (or any send, with FailOverUnanswered) goes on to
	// another replica; another send fails with the attempt's DEADLINE_EXCEEDED (ErrDeadlineExceeded,
	// GRPCCode 4).
	PerAttemptTimeout time.Duration
	// RetryBudgetMaxTokens is the size of a retry budget per head or shard (gRFC A6's retry
	// throttling; 0 = no budget; 10 in ResilientPoolOptions; at most 1000). A send that fails for
	// good although its failure could have been retried takes a token, a send that succeeds (after a
	// fail-over too) gives RetryBudgetTokenRatio back (0 = the default, 0.1; otherwise a number > 0).
	// At or below half the tokens no retry, fail-over or hedge starts: a brown-out of every replica
	// is not multiplied by retries (sends fail after their first attempt), while a replica dying
	// among live ones costs no token.
	RetryBudgetMaxTokens  int
	RetryBudgetTokenRatio float64

	// Transport: mutual TLS, the TLS server name, compression, dns: names. C ABI 0.2.2.

	// TLSCertChainPEM and TLSPrivateKeyPEM are the pool's client identity for servers that require
	// mutual TLS: its certificate chain (leaf first) and private key, PEM, both or neither. NewPool
	// copies them; one without the other, or PEM that does not decode, fails NewPool with ErrTLS
	// (the message says what is wrong).
	TLSCertChainPEM  []byte
	TLSPrivateKeyPEM []byte
	// TLSServerName is the name every replica's TLS certificate must carry (and the SNI sent)
	// instead of the host of its address ("" = the host), as gRPC's grpc.ssl_target_name_override
	// or Go's tls.Config.ServerName: for replicas reached by IP (Kubernetes pods) whose certificates
	// name a service. AddConnectionWithOptions sets one per address. A name that is neither a DNS
	// name nor an IP address fails NewPool with ErrTLS.
	TLSServerName string
	// Compression is how requests are compressed (0 = CompressionNone, the default, as jina 3.1;
	// CompressionGzip, CompressionDeflate; ParseCompression takes jina's names). Responses are
	// decoded whatever their encoding. Another value fails NewPool with ErrInvalidArgument.
	Compression Compression
	// DNSRefresh is how often the names of dns:///host:port addresses are resolved again (0 = the
	// default, 30s; Disabled = never): each A/AAAA record of such a name is a replica, added and
	// removed as the name changes, and the name is resolved again within a second when one of its
	// replicas fails.
	DNSRefresh time.Duration
}

// Pool is a libjina_net connection pool: deployments, their heads and shards, and the replicas
// (addresses) of each. A Pool is safe for concurrent use. Close it when done; a Pool that becomes
// unreachable is closed by a finalizer.
type Pool struct {
	mu  sync.RWMutex // read: a C call on ptr is running; write: Close
	ptr *C.jina_net_pool
	// driver runs a caller-driven pool, or polls one with CallbacksInPoll (nil with LibraryThreads
	// alone).
	driver *driver
}

// livePools counts the pools created and not yet closed (for the tests).
var livePools int64

// NewPool creates a pool (opts nil = defaults). It starts the library runtime if it is not running.
func NewPool(opts *PoolOptions) (*Pool, error) {
	guardSIGPIPE()
	var o C.jina_net_pool_options
	release, err := cPoolOptions(opts, &o)
	defer release()
	if err != nil {
		return nil, err
	}
	var ptr *C.jina_net_pool
	if err := call(func() C.jina_net_result { return C.jina_net_pool_new(&o, &ptr) }); err != nil {
		return nil, err
	}
	p := &Pool{ptr: ptr}
	if o.caller_driven || o.callbacks_in_poll {
		p.driver = newDriver(ptr)
	}
	atomic.AddInt64(&livePools, 1)
	runtime.SetFinalizer(p, (*Pool).Close)
	return p, nil
}

// cPoolOptions fills o for opts (nil = defaults): the library's defaults (jina_net_pool_options_init,
// with the struct's sizeof), then every field of opts that is not zero. release frees the C memory
// o points to (certificates, key, server name); call it after jina_net_pool_new, also on error.
func cPoolOptions(opts *PoolOptions, o *C.jina_net_pool_options) (release func(), err error) {
	var c cMemory
	release = c.free
	if err := call(func() C.jina_net_result { return initPoolOptions(o, false) }); err != nil {
		return release, err
	}
	o.caller_driven = C.bool(opts == nil || !opts.LibraryThreads)
	if opts == nil {
		return release, nil
	}
	o.callbacks_in_poll = C.bool(opts.LibraryThreads && opts.CallbacksInPoll)
	switch {
	case opts.MaxAttempts < 0 || int64(opts.MaxAttempts) > int64(^uint32(0)):
		return release, newError(CodeInvalidArgument, "NewPool: MaxAttempts out of range")
	case opts.MaxAttempts > 0:
		o.max_attempts = C.uint32_t(opts.MaxAttempts)
	}
	if opts.DefaultTimeout < 0 {
		return release, newError(CodeInvalidArgument, "NewPool: negative DefaultTimeout")
	}
	o.default_timeout_ms = C.uint64_t(millisCeil(opts.DefaultTimeout))
	o.tls = C.bool(opts.TLS)
	if err := applyResilience(opts, o); err != nil {
		return release, err
	}
	if err := applyTuning(opts, o); err != nil {
		return release, err
	}
	if err := applyLiveness(opts, o); err != nil {
		return release, err
	}
	if len(opts.RootCertificatesPEM) > 0 {
		// C memory: the options struct may not hold a Go pointer. The library copies it.
		o.root_certificates_pem = c.bytes(opts.RootCertificatesPEM)
		o.root_certificates_pem_len = C.size_t(len(opts.RootCertificatesPEM))
	}
	if err := applyTransport(opts, o, &c); err != nil {
		return release, err
	}
	return release, nil
}

// Close closes and frees the pool: connections are dropped, sends still pending complete with
// ErrPoolClosed, and later calls fail with ErrPoolClosed. Closing again is a no-op. It always
// returns nil (it is an io.Closer). A caller-driven pool's pending sends have completed (with
// ErrPoolClosed) and its goroutines have stopped polling when Close returns; with LibraryThreads
// the pending sends complete on a library thread shortly after.
func (p *Pool) Close() error {
	p.mu.Lock() // no C call on ptr runs from here on, and none starts (the poll does not take mu)
	defer p.mu.Unlock()
	if p.ptr == nil {
		return nil
	}
	if p.driver != nil {
		// jina_net_pool_free must not run while a poll does: stop the polling first. Neither the
		// goroutine polling nor the callbacks inside its poll take a lock that Close holds (only
		// the waiter registry's), so this returns promptly.
		p.driver.close()
	}
	// With library threads, pending callbacks fire later with POOL_CLOSED (their waiters stay
	// registered until then, so nothing needs to wait here). A caller-driven pool is drained by this
	// call: the callbacks of its pending sends run on this goroutine, before it returns.
	C.jina_net_pool_free(p.ptr)
	p.ptr = nil
	atomic.AddInt64(&livePools, -1)
	runtime.SetFinalizer(p, nil)
	return nil
}

// use runs f with the live C pool, or fails with ErrPoolClosed. Close waits for f to return.
func (p *Pool) use(fn string, f func(*C.jina_net_pool) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.ptr == nil {
		return errPoolClosed(fn)
	}
	err := f(p.ptr)
	runtime.KeepAlive(p) // the finalizer must not free the pool while C uses it
	return err
}

// Target says where a send goes, or which replica set a connection belongs to. Build one with
// Deployment, then narrow it with Head, Shard or All.
type Target struct {
	deployment string
	head       bool
	shard      int64
	all        bool
}

// Deployment targets a deployment: a send goes to its shards in turn (round robin over shards,
// and over the replicas of each); a connection goes to shard 0.
func Deployment(name string) Target { return Target{deployment: name, shard: NoShard} }

// Head targets the deployment's head.
func (t Target) Head() Target { t.head, t.all = true, false; return t }

// Shard targets shard id of the deployment.
func (t Target) Shard(id int) Target { t.shard, t.head, t.all = int64(id), false, false; return t }

// All sends to every shard of the deployment (polling ALL): one response per shard.
func (t Target) All() Target { t.all, t.head = true, false; return t }

// Name is the deployment's name.
func (t Target) Name() string { return t.deployment }

func (t Target) String() string {
	switch {
	case t.all:
		return t.deployment + " (all shards)"
	case t.head:
		return t.deployment + " (head)"
	case t.shard == NoShard:
		return t.deployment
	default:
		return t.deployment + " (shard " + strconv.FormatInt(t.shard, 10) + ")"
	}
}

// RequestKind is the kind of the messages of a Request.
type RequestKind uint32

const (
	// KindData: serialized jina.DataRequestProto messages.
	KindData RequestKind = C.JINA_NET_REQUEST_DATA
	// KindControl: one serialized jina.ControlRequestProto.
	KindControl RequestKind = C.JINA_NET_REQUEST_CONTROL
)

// Request is what a send carries: serialized protobuf messages, copied by the library before the
// send function returns (so they may be reused as soon as Send has started the send).
type Request struct {
	// Kind of the messages (the zero value is KindData).
	Kind RequestKind
	// Messages: one data request goes as process_single_data, several as one process_data call
	// (a DataRequestListProto); a control request goes as process_control.
	Messages [][]byte
	// Endpoint is the "endpoint" metadata of data requests ("" = none).
	Endpoint string
}

// NewDataRequest makes a data Request from serialized DataRequestProto messages.
func NewDataRequest(messages ...[]byte) Request {
	return Request{Kind: KindData, Messages: messages}
}

// NewControlRequest makes a control Request from one serialized ControlRequestProto.
func NewControlRequest(message []byte) Request {
	return Request{Kind: KindControl, Messages: [][]byte{message}}
}

// WithEndpoint returns a copy of r with the endpoint metadata set.
func (r Request) WithEndpoint(endpoint string) Request { r.Endpoint = endpoint; return r }

// AddConnection adds the replica at address ("host:port", "[v6]:port", or grpc://, https://,
// grpcs:// host:port) to the target's head (t.Head()) or shard (t.Shard(n); Deployment(name) alone
// means shard 0). It reports whether the address was added (false: it was already there).
//
// C ABI 0.2.2: "unix:/abs/path" or "unix:///abs/path" is a Unix domain socket (plaintext; shown as
// given); "dns:///host:port" (or "dns:host:port") adds one replica per A/AAAA record of the name,
// shown as ip:port, and follows the name (PoolOptions.DNSRefresh); a name that does not resolve
// fails with ErrInvalidAddress naming it. Over TLS the replicas of a dns: name check the name's
// certificate (its host) unless a server name is given. For a server name of this address alone,
// see AddConnectionWithOptions.
func (p *Pool) AddConnection(t Target, address string) (bool, error) {
	return p.connection("AddConnection", true, t, address)
}

// RemoveConnection removes the replica at address from the target's head or shard (as
// AddConnection). It reports whether there was one. A head or shard left empty is dropped.
func (p *Pool) RemoveConnection(t Target, address string) (bool, error) {
	return p.connection("RemoveConnection", false, t, address)
}

// connectionArgs checks the target and address of adding or removing a connection and returns the
// deployment and address as C strings, which the caller frees (freeString) when err is nil.
func connectionArgs(fn string, t Target, address string) (dep, addr *C.char, err error) {
	if t.all {
		return nil, nil, newError(CodeInvalidArgument, fn+": a connection belongs to the head or one shard, not to all shards")
	}
	if dep, err = cString(t.deployment, "deployment", fn); err != nil {
		return nil, nil, err
	}
	if addr, err = cString(address, "address", fn); err != nil {
		freeString(dep)
		return nil, nil, err
	}
	return dep, addr, nil
}

func (p *Pool) connection(fn string, add bool, t Target, address string) (bool, error) {
	dep, addr, err := connectionArgs(fn, t, address)
	if err != nil {
		return false, err
	}
	defer freeString(dep)
	defer freeString(addr)
	var changed C.bool
	err = p.use(fn, func(pool *C.jina_net_pool) error {
		return call(func() C.jina_net_result {
			if add {
				return C.jina_net_pool_add_connection(pool, dep, addr, C.bool(t.head), C.int64_t(t.shard), &changed)
			}
			return C.jina_net_pool_remove_connection(pool, dep, addr, C.bool(t.head), C.int64_t(t.shard), &changed)
		})
	})
	return bool(changed), err
}

// Send sends req to target and waits for the responses: one for a head, a shard or a round-robin
// send, one per shard (in shard order) for t.All(). The error is nil when every target answered;
// otherwise it is an *Error (the first failed target's, with its Address and GRPCCode), and the
// responses of the targets reached are still returned, each with its own Err.
//
// A request that cannot be sent (unknown deployment, no replicas, bad bytes, closed pool) fails at
// once with no responses. The context's deadline is passed to the library as the send's timeout
// (retries included; without one the pool's DefaultTimeout applies); cancelling the context cancels
// the send (jina_net_pool_cancel), and the error then satisfies errors.Is(err, ErrCancelled) (or
// ErrDeadlineExceeded) and errors.Is(err, ctx.Err()). A context that cannot be cancelled
// (context.Background(), context.TODO()) costs nothing: the send is not registered for cancellation.
// The request metadata the context carries (NewOutgoingContext, AppendToOutgoingContext) goes with
// every attempt of the send; invalid metadata fails it with ErrInvalidArgument before anything is
// sent (see Metadata). A context without metadata costs nothing.
func (p *Pool) Send(ctx context.Context, req Request, target Target) ([]*Response, error) {
	return p.send(ctx, "Send", req, target, SendOptions{}, false).result()
}

// send is Send, SendWithOptions, SendView and SendViewWithOptions: its outcome, the error of a send that did not start
// included. view: large bodies are left in the library (the outcome must be lent and released);
// otherwise they are in Go memory.
func (p *Pool) send(ctx context.Context, fn string, req Request, target Target, opts SendOptions, view bool) sendOutcome {
	if err := ctx.Err(); err != nil {
		return sendOutcome{err: contextError(ctx, fn)}
	}
	timeoutMS, expired := remainingMillis(ctx)
	if expired {
		return sendOutcome{err: contextDeadlineError(fn)}
	}
	dep, err := sendString(target.deployment, "deployment", fn)
	if err != nil {
		return sendOutcome{err: err}
	}
	endpoint, err := sendString(req.Endpoint, "endpoint", fn)
	if err != nil {
		return sendOutcome{err: err}
	}
	md, err := requestMetadata(ctx, opts.Metadata, fn)
	if err != nil {
		return sendOutcome{err: err}
	}
	shards := C.uint32_t(C.JINA_NET_SHARDS_ANY)
	if target.all {
		shards = C.JINA_NET_SHARDS_ALL
	}
	data, lens, single, buf := cMessages(req.Messages)
	out, _, err := p.start(ctx, fn, view, func(pool *C.jina_net_pool, handle C.uintptr_t, id *C.uint64_t) C.jina_net_result {
		return poolSend(pool, C.uint32_t(req.Kind), data, lensPtr(lens), C.size_t(len(req.Messages)), single,
			dep, C.bool(target.head), C.int64_t(target.shard), shards, endpoint, C.uint64_t(timeoutMS),
			C.bool(opts.Idempotent), md, handle, id)
	})
	runtime.KeepAlive(buf)
	runtime.KeepAlive(lens)
	runtime.KeepAlive(target.deployment)
	runtime.KeepAlive(req.Endpoint)
	md.release() // the library copied the entries before the send call returned
	if err != nil {
		return sendOutcome{err: err}
	}
	return out
}

// registeredSends counts the sends registered for cancellation (for the tests).
var registeredSends int64

// start starts one send with send (a C send function given the completion handle and, only when
// ctx can be cancelled, an out_send_id for jina_net_pool_cancel) and waits for its completion,
// cancelling it if ctx is done first. A context that can never be cancelled (ctx.Done() == nil, as
// context.Background()) skips the cancellation registry and its plumbing entirely. called tells
// whether the C function was called (false: the pool was closed, nothing was handed over). err is
// the error of a send that did not start; out is the outcome of one that did (its error annotated
// with ctx), with large bodies in Go memory, or, with view, left in the library for lend.
func (p *Pool) start(ctx context.Context, fn string, view bool,
	send func(pool *C.jina_net_pool, handle C.uintptr_t, id *C.uint64_t) C.jina_net_result) (out sendOutcome, called bool, err error) {
	w := getWaiter()
	if p.driver != nil {
		w.batch = &p.driver.batch
	}
	w.retain = view
	handle := pending.add(w)
	cancelled := ctx.Done()
	var id C.uint64_t
	var idp *C.uint64_t
	if cancelled != nil {
		idp = &id
		atomic.AddInt64(&registeredSends, 1)
	}
	err = p.use(fn, func(pool *C.jina_net_pool) error {
		called = true
		return call(func() C.jina_net_result { return send(pool, C.uintptr_t(handle), idp) })
	})
	if err != nil {
		pending.take(handle) // nothing was sent: the callback will not fire
		putWaiter(w)
		return sendOutcome{}, called, err
	}

	if p.driver != nil {
		p.driver.wait(w, cancelled, id, func() { p.cancel(uint64(id)) })
	} else if cancelled == nil {
		<-w.done
	} else {
		select {
		case <-w.done:
		case <-cancelled:
			p.cancel(uint64(id))
			<-w.done // the callback fires exactly once, promptly after a cancel (or a close)
		}
	}
	out = w.out
	putWaiter(w) // its completion was received: no callback holds it any more
	if !view {
		out.materialize()
	}
	runtime.KeepAlive(p)
	if out.err != nil {
		out.err = withContext(out.err, ctx)
	}
	return out, true, nil
}

// result is the outcome as Send returns it.
func (out sendOutcome) result() ([]*Response, error) { return out.responses, out.err }

// cancel cancels a pending send; a send that already completed (or a closed pool) is left alone.
func (p *Pool) cancel(id uint64) {
	_ = p.use("Send", func(pool *C.jina_net_pool) error {
		C.jina_net_pool_cancel(pool, C.uint64_t(id)) // JINA_NET_NOT_FOUND: it already completed
		return nil
	})
}

// Route is one line of a pool's routing table: a deployment's head or one of its shards.
type Route struct {
	Deployment string
	Head       bool
	Shard      int // -1 for the head
	Addresses  []string
	// States are the states of the replicas, States[i] that of Addresses[i] (C ABI 0.2.2; nil from
	// a library that does not report them).
	States []ReplicaState
}

// StateOf is the state of the replica at address ("" when the route has no such address, or no
// states).
func (r Route) StateOf(address string) ReplicaState {
	for i, a := range r.Addresses {
		if a == address && i < len(r.States) {
			return r.States[i]
		}
	}
	return ""
}

// Routes returns the routing table, deployments sorted, with the state of each replica: StateIdle
// (not connected yet), StateReady (it answered), StateFailing (its connection fails) or
// StateUnresponsive (it stopped answering). A dns: address shows as the addresses it resolved to.
func (p *Pool) Routes() ([]Route, error) {
	var table *C.char
	err := p.use("Routes", func(pool *C.jina_net_pool) error {
		return call(func() C.jina_net_result { return C.jina_net_pool_routes(pool, &table) })
	})
	if err != nil {
		return nil, err
	}
	text := C.GoString(table)
	C.jina_net_string_free(table)
	return parseRoutes(text), nil
}

// parseRoutes parses the text of jina_net_pool_routes: one line per head or shard,
// "<deployment>\t<head|shard N>\t<address>,...", and since C ABI 0.2.2 "\t<state>,..." (one state per
// address). Columns a later library may append are ignored; a line of fewer columns is skipped.
func parseRoutes(text string) []Route {
	var routes []Route
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		r := Route{Deployment: f[0], Shard: -1}
		if f[1] == "head" {
			r.Head = true
		} else if n, err := strconv.Atoi(strings.TrimPrefix(f[1], "shard ")); err == nil {
			r.Shard = n
		}
		if f[2] != "" {
			r.Addresses = strings.Split(f[2], ",")
		}
		if len(f) >= 4 && len(r.Addresses) > 0 {
			r.States = make([]ReplicaState, len(r.Addresses))
			for i, st := range strings.Split(f[3], ",") {
				if i < len(r.States) {
					r.States[i] = ReplicaState(st)
				}
			}
		}
		routes = append(routes, r)
	}
	return routes
}

// millisCeil converts d to whole milliseconds, rounding up (so 1ns is 1ms, not "no deadline").
func millisCeil(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// remainingMillis is the time left before ctx's deadline (0 = no deadline); expired when it passed.
func remainingMillis(ctx context.Context) (ms uint64, expired bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	left := time.Until(deadline)
	if left <= 0 {
		return 0, true
	}
	return millisCeil(left), false
}

func contextDeadlineError(fn string) error {
	e := newError(CodeDeadlineExceeded, fn+": the context's deadline passed before the send started")
	e.cause = context.DeadlineExceeded
	return e
}
