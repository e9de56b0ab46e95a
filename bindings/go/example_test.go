package jinanet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// A deployment with two shards: one request to a shard, one to all shards, and a typed error.
func ExamplePool_Send() {
	// Two echo workers of the project's test server stand in for the shards of an Executor.
	srv, err := startTestServers("echo=a", "echo=b")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.stop()

	pool, err := jinanet.NewPool(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	encoder := jinanet.Deployment("encoder")
	if _, err := pool.AddConnection(encoder.Shard(0), srv.addr["a"]); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := pool.AddConnection(encoder.Shard(1), srv.addr["b"]); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// One data request to shard 1, with the endpoint metadata.
	req := jinanet.NewDataRequest(jinanet.BuildDataRequest("req-1")).WithEndpoint("/index")
	responses, err := pool.Send(ctx, req, encoder.Shard(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	info, _ := jinanet.ParseDataRequest(responses[0].Body)
	fmt.Printf("%s answered %s on %s, routes %v\n",
		responses[0].Trailer.Get("replica"), info.RequestID, responses[0].Trailer.Get("endpoint"), info.Routes)

	// Polling ALL: one response per shard, in shard order.
	responses, err = pool.Send(ctx, jinanet.NewDataRequest(jinanet.BuildDataRequest("req-2")), encoder.All())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range responses {
		fmt.Printf("shard %d: %s\n", r.Shard, r.Trailer.Get("replica"))
	}

	// Failures are *jinanet.Error values; every result code is a sentinel for errors.Is.
	_, err = pool.Send(ctx, req, jinanet.Deployment("ranker"))
	var e *jinanet.Error
	fmt.Println(errors.Is(err, jinanet.ErrUnknownDeployment), errors.As(err, &e) && e.Code == jinanet.CodeUnknownDeployment)

	// Output:
	// b answered req-1 on /index, routes [b]
	// shard 0: a
	// shard 1: b
	// true true
}

// A worker registers with its deployment's head; data sent to the head then reaches the worker.
func ExampleActivateWorker() {
	srv, err := startTestServers("head:worker=head", "echo=worker")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.stop()
	host, portText, _ := net.SplitHostPort(srv.addr["worker"])
	port, _ := strconv.Atoi(portText)

	ctx := context.Background()
	if _, err := jinanet.ActivateWorker(ctx, host, port, srv.addr["head"], 0); err != nil {
		fmt.Println(err)
		return
	}
	r, err := jinanet.SendRequestSync(jinanet.NewDataRequest(jinanet.BuildDataRequest("hello")), srv.addr["head"], nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	info, _ := jinanet.ParseDataRequest(r.Body)
	fmt.Println(info.RequestID, info.Routes)

	if _, err := jinanet.DeactivateWorker(ctx, host, port, srv.addr["head"], 0); err != nil {
		fmt.Println(err)
		return
	}
	_, err = jinanet.SendRequestSync(jinanet.NewDataRequest(jinanet.BuildDataRequest("again")), srv.addr["head"], nil)
	var e *jinanet.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code) // the head has no worker left and answers gRPC UNKNOWN
	}

	// Output:
	// hello [worker head]
	// JINA_NET_RPC_ERROR
}

// A gateway that only reads each response (here: its request id and size) lets SendView lend the
// bodies instead of copying them into Go memory.
func ExamplePool_SendView() {
	srv, err := startTestServers("echo=a")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.stop()
	pool, err := jinanet.NewPool(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	encoder := jinanet.Deployment("encoder")
	if _, err := pool.AddConnection(encoder, srv.addr["a"]); err != nil {
		fmt.Println(err)
		return
	}

	req := largeData("big-1", 1<<20) // a request whose echo is over 1 MiB
	err = pool.SendView(context.Background(), req, encoder, func(responses []*jinanet.Response, err error) error {
		if err != nil {
			return err
		}
		// responses[0].Body is the library's buffer: read it here, copy what must outlive this call.
		info, err := jinanet.ParseDataRequest(responses[0].Body)
		if err != nil {
			return err
		}
		fmt.Println(info.RequestID, len(responses[0].Body) > 1<<20)
		return nil
	})
	fmt.Println(err)

	// Output:
	// big-1 true
	// <nil>
}

// Request metadata from the context (as with grpc-go) and from the send's options, merged; the test
// server's echo worker answers each entry k: v with a trailer seen-k: v.
func ExampleAppendToOutgoingContext() {
	srv, err := startTestServers("echo=a")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.stop()
	pool, err := jinanet.NewPool(jinanet.ResilientPoolOptions())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	encoder := jinanet.Deployment("encoder")
	if _, err := pool.AddConnection(encoder, srv.addr["a"]); err != nil {
		fmt.Println(err)
		return
	}

	ctx := jinanet.AppendToOutgoingContext(context.Background(), "Authorization", "Bearer t0ken")
	responses, err := pool.SendWithOptions(ctx, jinanet.NewDataRequest(jinanet.BuildDataRequest("req-1")), encoder,
		jinanet.SendOptions{Metadata: jinanet.Pairs("x-request-id", "req-1", "trace-bin", "\x00\x01\x02\xff")})
	if err != nil {
		fmt.Println(err)
		return
	}
	t := responses[0].Trailer
	fmt.Println(t.Get("seen-authorization"), t.Get("seen-x-request-id"), t.Get("seen-trace-bin"))

	// Metadata the library refuses fails the send before anything is sent.
	_, err = pool.Send(jinanet.AppendToOutgoingContext(ctx, "content-type", "text/plain"),
		jinanet.NewDataRequest(jinanet.BuildDataRequest("req-2")), encoder)
	fmt.Println(errors.Is(err, jinanet.ErrInvalidArgument))

	// Output:
	// Bearer t0ken req-1 AAEC/w
	// true
}

// A replica that hangs (it keeps its connection but never answers, like a frozen runtime) among a
// live one: the liveness probes of the resilient settings give up on it within about 1.5s; an
// idempotent send pending there goes on to the live replica, a send not marked idempotent fails
// with UNAVAILABLE (it may have run there). Disabled turns a default-on safeguard off.
func ExampleResilientPoolOptions() {
	srv, err := startTestServers("hostile:silent=hung", "echo=live", "hostile:silent=hung2")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.stop()
	opts := jinanet.ResilientPoolOptions() // probes after 500ms, 1s to answer
	opts.PerAttemptTimeout = 5 * time.Second
	opts.KeepaliveInterval = 30 * time.Second // or jinanet.Disabled
	pool, err := jinanet.NewPool(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	encoder := jinanet.Deployment("encoder")
	for _, r := range []string{"hung", "live"} { // round robin starts at the hung replica
		if _, err := pool.AddConnection(encoder, srv.addr[r]); err != nil {
			fmt.Println(err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	responses, err := pool.SendWithOptions(ctx, jinanet.NewDataRequest(jinanet.BuildDataRequest("req-1")), encoder,
		jinanet.SendOptions{Idempotent: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("answered by", responses[0].Trailer.Get("replica"))

	// A send not marked idempotent to a replica that hangs fails.
	other := jinanet.Deployment("other")
	if _, err := pool.AddConnection(other, srv.addr["hung2"]); err != nil {
		fmt.Println(err)
		return
	}
	_, err = pool.Send(ctx, jinanet.NewDataRequest(jinanet.BuildDataRequest("req-2")), other)
	var e *jinanet.Error
	fmt.Println(errors.As(err, &e) && e.GRPCCode == 14 && strings.Contains(e.Message, "stopped answering"))

	// Output:
	// answered by live
	// true
}

func ExamplePool_WaitReady() {
	srv, err := startTestServers("echo=a", "echo=b")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.stop()
	pool, err := jinanet.NewPool(&jinanet.PoolOptions{Compression: jinanet.CompressionGzip})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	enc := jinanet.Deployment("encoder")
	pool.AddConnection(enc, srv.addr["a"])
	pool.AddConnection(enc.Shard(1), srv.addr["b"])

	// A gateway declares itself ready once every replica answered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pool.WaitReady(ctx, ""); err != nil {
		fmt.Println("not ready:", err)
		return
	}
	routes, _ := pool.Routes()
	for _, r := range routes {
		fmt.Println(r.Deployment, r.Shard, r.States)
	}
	// Output:
	// encoder 0 [ready]
	// encoder 1 [ready]
}
