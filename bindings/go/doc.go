// Package jinanet is the Go binding of libjina_net, the networking of a Jina 3.1 serving system
// (gRPC connection pool, routing to heads and shards, the worker control plane), over its C ABI.
//
// # Building
//
// The package links the library built in this repository (cargo build at the repository root):
// by default the shared target/debug/libjina_net.so, found at run time through an rpath; with the
// build tag jinanet_static the static target/debug/libjina_net.a is linked into the binary instead:
//
//	go test ./...                       // shared
//	go test -tags jinanet_static ./...  // static
//
// # Use
//
//	pool, err := jinanet.NewPool(nil)
//	defer pool.Close()
//	pool.AddConnection(jinanet.Deployment("encoder"), "127.0.0.1:12345")
//	responses, err := pool.Send(ctx, jinanet.NewDataRequest(requestBytes), jinanet.Deployment("encoder"))
//
// Requests and responses are serialized protobuf messages (jina.DataRequestProto,
// jina.ControlRequestProto); BuildDataRequest and ParseDataRequest are a minimal helper for them.
//
// # Request metadata
//
// A send carries gRPC request metadata (an authorization header, a request id, a W3C traceparent)
// from its context, as with grpc-go, and from SendOptions.Metadata; both are merged:
//
//	ctx = jinanet.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
//	responses, err := pool.SendWithOptions(ctx, req, target,
//		jinanet.SendOptions{Metadata: jinanet.Pairs("x-request-id", id)})
//
// Keys are lower-cased as grpc-go does; a key ending in "-bin" takes any bytes. Metadata the library
// refuses (other characters in a key, non-printable values, reserved names such as "grpc-*" or
// "content-type") fails the send with ErrInvalidArgument before anything is sent. A send without
// metadata costs nothing for it.
//
// # Resilience
//
// The zero PoolOptions are jina 3.1's behaviour: 3 attempts on UNAVAILABLE, on the same replica.
// ResilientPoolOptions gives the library's recommended settings for production (fail-over to the
// next replica, jittered backoff, outlier ejection): a dead replica among live ones then costs no
// failed send.
//
//	pool, err := jinanet.NewPool(jinanet.ResilientPoolOptions())
//
// # Gray failures
//
// A replica can be up and still not answer: a frozen process, a hung runtime, a node gone dead
// behind connections that stay open. The library's safeguards are on by default (C ABI 0.2.1): a
// connect timeout (PoolOptions.ConnectTimeout, 5s), TCP_USER_TIMEOUT (TCPUserTimeout, 20s), HTTP/2
// keepalive PINGs while calls are outstanding (KeepaliveInterval, 5min, at least 10s;
// KeepaliveTimeout, 20s) and liveness probes (ProbeAfter, 2s; ProbeTimeout, 5s): a replica with
// calls outstanding that answered nothing for ProbeAfter gets a STATUS control request, and if that
// goes unanswered for ProbeTimeout the calls pending on it end with UNAVAILABLE (ErrRPC, GRPCCode
// 14, "the replica stopped answering", naming it) and sends avoid it until it answers a probe again.
// ResilientPoolOptions probes sooner (500ms, 1s). As for every field, 0 means the default; Disabled
// turns one of these four safeguards off:
//
//	opts := jinanet.ResilientPoolOptions()
//	opts.ProbeAfter = jinanet.Disabled // no liveness probes
//
// A send marked idempotent (SendOptions.Idempotent) whose replica stopped answering, or whose
// attempt ran out of PerAttemptTimeout, goes on to another replica; other sends fail (their request
// may have run), unless FailOverUnanswered. EjectOnDeadline counts attempts ending
// DEADLINE_EXCEEDED toward ejection, and a retry budget per head or shard (RetryBudgetMaxTokens,
// RetryBudgetTokenRatio; 10 tokens in ResilientPoolOptions) stops retries, fail-overs and hedges
// while most sends fail, so a brown-out of every replica is not multiplied by retries.
//
// # Transport
//
// C ABI 0.2.2 adds mutual TLS, the TLS server name, compression, dns: and unix: addresses and a
// readiness check. A zero field keeps the library's default, as everywhere:
//
//	pool, err := jinanet.NewPool(&jinanet.PoolOptions{
//		TLS:                 true,
//		RootCertificatesPEM: caPEM,
//		TLSCertChainPEM:     clientPEM, // client identity for servers that require mTLS
//		TLSPrivateKeyPEM:    clientKey,
//		TLSServerName:       "executor.jina.svc", // the name the certificates carry (pods reached by IP)
//		Compression:         jinanet.CompressionGzip, // or jinanet.ParseCompression("Gzip")
//	})
//	pool.AddConnection(jinanet.Deployment("enc"), "dns:///executor.jina.svc:8080") // a replica per record
//	pool.AddConnectionWithOptions(jinanet.Deployment("enc").Head(), "10.0.0.7:8080",
//		jinanet.AddOptions{TLSServerName: "head.jina.svc"}) // a server name for this address alone
//	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
//	err = pool.WaitReady(ctx, "") // every replica of every deployment answered a STATUS probe
//
// A failed TLS handshake fails the send with ErrTLS, naming the address and saying why (a server
// that requires a client certificate and got none, an untrusted certificate, one not valid for the
// name). WaitReady's error names each replica not ready; Routes gives each replica's state
// (Route.States: StateIdle, StateReady, StateFailing, StateUnresponsive). "unix:/path" addresses
// are Unix domain sockets. DNSRefresh sets how often dns: names are resolved again (Disabled:
// never).
//
// WaitReady blocks in the library: on a caller-driven pool its thread runs the pool meanwhile (the
// sends of other goroutines complete there, their senders signalled at once), and it calls the
// library in slices of at most a second so that a cancelled context or a Close takes effect.
//
// # Errors
//
// Failures are *Error values carrying the library's result Code and message (and, for the failure
// of one target of a send, its address and gRPC status). Every Code is also a sentinel:
//
//	if errors.Is(err, jinanet.ErrUnknownDeployment) { ... }
//	var e *jinanet.Error
//	if errors.As(err, &e) && e.GRPCCode == 14 { ... }
//
// # Threads and memory
//
// A Pool is caller-driven by default: its network work runs inside jina_net_pool_poll, called by
// the goroutines waiting in Send (one at a time) or, while none waits, by an idle goroutine of the
// pool; PoolOptions.LibraryThreads runs it on the library's runtime threads instead, and with
// PoolOptions.CallbacksInPoll too its completions still reach Go inside jina_net_pool_poll, polled
// by the goroutines waiting in Send as for a caller-driven pool (several per poll). The one-shot
// helpers always use the library's threads. Completions reach Go through an exported callback that
// receives an index into a table of waiting sends (never a Go pointer) and copies the result into
// Go memory; the sending goroutine waits on a channel, so Send blocks only its goroutine. Request
// bytes are copied by the library before Send has started the send (SendOwned: not copied, C
// memory handed over). Response bodies returned by Send are the caller's; SendView instead lends a
// body of 64 KiB or more to the caller's function as a view of the library's buffer, valid until the
// function returns (no copy, no Go allocation).
package jinanet
