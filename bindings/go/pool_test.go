package jinanet_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// libraryThreads: JINANET_TEST_LIBRARY_THREADS=1 runs the suite's pools on the library's threads
// (PoolOptions.LibraryThreads) instead of caller-driven (test.sh runs the suite both ways).
var libraryThreads = os.Getenv("JINANET_TEST_LIBRARY_THREADS") == "1"

// testOptions is opts (nil: the defaults) in the suite's mode.
func testOptions(opts *jinanet.PoolOptions) *jinanet.PoolOptions {
	o := jinanet.PoolOptions{}
	if opts != nil {
		o = *opts
	}
	if libraryThreads {
		o.LibraryThreads = true
	}
	return &o
}

func newPool(t testing.TB, opts *jinanet.PoolOptions) *jinanet.Pool {
	t.Helper()
	p, err := jinanet.NewPool(testOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func add(t testing.TB, p *jinanet.Pool, target jinanet.Target, address string) {
	t.Helper()
	added, err := p.AddConnection(target, address)
	if err != nil || !added {
		t.Fatalf("AddConnection(%v, %s) = %v, %v", target, address, added, err)
	}
}

func data(id string) jinanet.Request { return jinanet.NewDataRequest(jinanet.BuildDataRequest(id)) }

// one sends and expects exactly one successful response.
func one(t testing.TB, p *jinanet.Pool, req jinanet.Request, target jinanet.Target) *jinanet.Response {
	t.Helper()
	rs, err := p.Send(context.Background(), req, target)
	if err != nil {
		t.Fatalf("Send to %v: %v", target, err)
	}
	if len(rs) != 1 || rs[0].Err != nil || rs[0].Status != jinanet.CodeOK {
		t.Fatalf("Send to %v: want one OK response, got %+v", target, rs)
	}
	return rs[0]
}

func parse(t testing.TB, r *jinanet.Response) *jinanet.DataRequestInfo {
	t.Helper()
	info, err := jinanet.ParseDataRequest(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestRoundRobinOverReplicasAndShards(t *testing.T) {
	s := servers(t, "echo=a", "echo=b", "echo=c")
	p := newPool(t, nil)
	enc := jinanet.Deployment("enc")
	add(t, p, enc, s["a"]) // shard 0
	add(t, p, enc.Shard(0), s["b"])
	add(t, p, enc.Shard(1), s["c"])
	if added, err := p.AddConnection(enc, s["a"]); err != nil || added {
		t.Fatalf("adding a known address again: %v, %v", added, err)
	}

	// the replicas of shard 0 in turn
	var seen []string
	for i := 0; i < 4; i++ {
		id := "rr-" + strconv.Itoa(i)
		r := one(t, p, data(id), enc.Shard(0))
		info := parse(t, r)
		replica := r.Trailer.Get("replica")
		if info.RequestID != id || len(info.Routes) != 1 || info.Routes[0] != replica {
			t.Fatalf("response %+v to %s from %s", info, id, replica)
		}
		if r.Address != s[replica] || r.Shard != 0 || r.Head {
			t.Fatalf("response from %s at %s, shard %d head %v", replica, r.Address, r.Shard, r.Head)
		}
		seen = append(seen, replica)
	}
	if seen[0] == seen[1] || seen[0] != seen[2] || seen[1] != seen[3] {
		t.Fatalf("replicas not in turn: %v", seen)
	}

	// shard 1 only has c
	if r := one(t, p, data("to-c"), enc.Shard(1)); r.Trailer.Get("replica") != "c" || r.Shard != 1 {
		t.Fatalf("shard 1 answered by %q (shard %d)", r.Trailer.Get("replica"), r.Shard)
	}

	// no shard given: the shards in turn, so every replica answers within a few sends
	got := map[string]bool{}
	for i := 0; i < 8; i++ {
		got[one(t, p, data("any"), enc).Trailer.Get("replica")] = true
	}
	if !got["a"] || !got["b"] || !got["c"] {
		t.Fatalf("round robin over shards reached %v", got)
	}

	// endpoint metadata and several messages in one request (process_data)
	req := jinanet.NewDataRequest(jinanet.BuildDataRequest("m1"), jinanet.BuildDataRequest("m2")).WithEndpoint("/index")
	r := one(t, p, req, enc.Shard(1))
	if r.Trailer.Get("endpoint") != "/index" || r.Trailer.Get("request-count") != "2" || parse(t, r).RequestID != "m1" {
		t.Fatalf("endpoint %q, request-count %q", r.Trailer.Get("endpoint"), r.Trailer.Get("request-count"))
	}
}

func TestAllShards(t *testing.T) {
	s := servers(t, "echo=a", "echo=b", "echo=c")
	p := newPool(t, nil)
	dep := jinanet.Deployment("indexer")
	add(t, p, dep.Shard(2), s["c"])
	add(t, p, dep.Shard(0), s["a"])
	add(t, p, dep.Shard(1), s["b"])
	rs, err := p.Send(context.Background(), data("all").WithEndpoint("/search"), dep.All())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d responses, want one per shard", len(rs))
	}
	for i, name := range []string{"a", "b", "c"} {
		r := rs[i]
		if r.Err != nil || r.Shard != i || r.Address != s[name] || r.Trailer.Get("replica") != name ||
			r.Trailer.Get("endpoint") != "/search" || parse(t, r).RequestID != "all" {
			t.Fatalf("shard %d: %+v", i, r)
		}
	}

	routes, err := p.Routes()
	if err != nil || len(routes) != 3 {
		t.Fatalf("Routes() = %+v, %v", routes, err)
	}
	for i, r := range routes {
		if r.Deployment != "indexer" || r.Head || r.Shard != i || len(r.Addresses) != 1 {
			t.Fatalf("route %d: %+v", i, r)
		}
	}
}

func TestAllShardsWithAFailingShard(t *testing.T) {
	s := servers(t, "echo=a", "unavailable=u")
	p := newPool(t, &jinanet.PoolOptions{MaxAttempts: 1})
	dep := jinanet.Deployment("mixed")
	add(t, p, dep.Shard(0), s["a"])
	add(t, p, dep.Shard(1), s["u"])
	rs, err := p.Send(context.Background(), data("x"), dep.All())
	var e *jinanet.Error
	if !errors.As(err, &e) || !errors.Is(err, jinanet.ErrRPC) {
		t.Fatalf("err = %v", err)
	}
	if e.Address != s["u"] || e.GRPCCode != 14 || e.Shard != 1 || !strings.Contains(e.Message, "mixed") {
		t.Fatalf("error %+v", e)
	}
	if len(rs) != 2 || rs[0].Err != nil || rs[0].Trailer.Get("replica") != "a" || rs[1].Status != jinanet.CodeRPCError {
		t.Fatalf("responses %+v", rs)
	}
	var te *jinanet.Error
	if !errors.As(rs[1].Err, &te) || te.GRPCCode != 14 || te.GRPCMessage != "u is unavailable" {
		t.Fatalf("target error %+v", rs[1].Err)
	}
}

func TestHeadAndControlPlane(t *testing.T) {
	s := servers(t, "head:worker=h", "echo=w")
	ctx := context.Background()
	wport, _ := strconv.Atoi(s["w"][strings.LastIndexByte(s["w"], ':')+1:])

	r, err := jinanet.ActivateWorker(ctx, "127.0.0.1", wport, s["h"], 0)
	if err != nil {
		t.Fatal(err)
	}
	echo, err := jinanet.ParseControlRequest(r.Body)
	if err != nil || echo.Command != jinanet.CommandActivate || len(echo.Entities) != 1 ||
		echo.Entities[0].Port != wport || echo.Entities[0].Shard != 0 || r.Address != s["h"] {
		t.Fatalf("ACTIVATE echo %+v (%v) from %s", echo, err, r.Address)
	}

	p := newPool(t, nil)
	gw := jinanet.Deployment("gateway")
	add(t, p, gw.Head(), s["h"])
	r = one(t, p, data("via-head").WithEndpoint("/index"), gw.Head())
	info := parse(t, r)
	if !r.Head || r.Shard != -1 || r.Address != s["h"] || r.Trailer.Get("replica") != "w" ||
		r.Trailer.Get("head") != "h" || info.RequestID != "via-head" || strings.Join(info.Routes, ",") != "w,h" {
		t.Fatalf("through the head: %+v %+v", r, info)
	}

	// the blocking one-shot helper, straight to the head's address
	r, err = jinanet.SendRequestSync(data("sync").WithEndpoint("/index"), s["h"], nil)
	if err != nil || r.Address != s["h"] || r.Trailer.Get("replica") != "w" || parse(t, r).RequestID != "sync" {
		t.Fatalf("SendRequestSync: %+v, %v", r, err)
	}

	// a control request through the pool: STATUS to the head
	r = one(t, p, jinanet.NewControlRequest(jinanet.BuildControlRequest(jinanet.CommandStatus)), gw.Head())
	if c, err := jinanet.ParseControlRequest(r.Body); err != nil || c.Command != jinanet.CommandStatus {
		t.Fatalf("STATUS echo %+v, %v", c, err)
	}

	r, err = jinanet.DeactivateWorker(ctx, "127.0.0.1", wport, s["h"], 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := jinanet.ParseControlRequest(r.Body); c == nil || c.Command != jinanet.CommandDeactivate {
		t.Fatalf("DEACTIVATE echo %+v", c)
	}
	// the head has no worker left: it answers UNKNOWN
	rs, err := p.Send(ctx, data("refused"), gw.Head())
	var e *jinanet.Error
	if !errors.As(err, &e) || e.Code != jinanet.CodeRPCError || e.GRPCCode != 2 || e.Address != s["h"] || !e.Head {
		t.Fatalf("after DEACTIVATE: %v (%+v)", err, e)
	}
	if len(rs) != 1 || rs[0].Err == nil {
		t.Fatalf("responses %+v", rs)
	}

	if _, err := jinanet.ActivateWorker(ctx, "127.0.0.1", wport, "bad address", 0); !errors.Is(err, jinanet.ErrInvalidAddress) {
		t.Fatalf("bad head address: %v", err)
	}
	if _, err := jinanet.ActivateWorker(ctx, "127.0.0.1", 70000, s["h"], 0); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("bad port: %v", err)
	}
}

func TestErrors(t *testing.T) {
	s := servers(t, "unavailable=u")
	p := newPool(t, nil)
	add(t, p, jinanet.Deployment("dep-u"), s["u"])
	ctx := context.Background()

	_, err := p.Send(ctx, data("x"), jinanet.Deployment("nope"))
	var e *jinanet.Error
	if !errors.Is(err, jinanet.ErrUnknownDeployment) || !errors.As(err, &e) ||
		e.Code != jinanet.CodeUnknownDeployment || !strings.Contains(e.Message, "nope") ||
		!strings.HasPrefix(e.Error(), "jinanet: unknown deployment: jina_net_pool_send: ") {
		t.Fatalf("unknown deployment: %v", err)
	}
	if errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatal("an unknown deployment is not a closed pool")
	}
	if _, err := p.Send(ctx, data("x"), jinanet.Deployment("dep-u").Head()); !errors.Is(err, jinanet.ErrNoReplicas) {
		t.Fatalf("no head: %v", err)
	}
	if _, err := p.Send(ctx, jinanet.NewDataRequest([]byte{0xff, 0xff, 0xff}), jinanet.Deployment("dep-u")); !errors.Is(err, jinanet.ErrInvalidRequest) {
		t.Fatalf("garbage bytes: %v", err)
	}
	if _, err := p.Send(ctx, jinanet.NewDataRequest(), jinanet.Deployment("dep-u")); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("no message: %v", err)
	}
	if _, err := p.Send(ctx, data("x"), jinanet.Deployment("dep\x00u")); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("NUL in a name: %v", err)
	}
	if _, err := p.AddConnection(jinanet.Deployment("d"), "no-port"); !errors.Is(err, jinanet.ErrInvalidAddress) ||
		!strings.Contains(err.Error(), "no-port") {
		t.Fatalf("bad address: %v", err)
	}
	if _, err := p.AddConnection(jinanet.Deployment("d").All(), "127.0.0.1:1"); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("connection to all shards: %v", err)
	}

	// an RPC failure, after the retries: the target's address and gRPC status
	rs, err := p.Send(ctx, data("x"), jinanet.Deployment("dep-u"))
	if !errors.As(err, &e) || !errors.Is(err, jinanet.ErrRPC) || e.GRPCCode != 14 || e.Address != s["u"] ||
		e.Shard != 0 || !strings.Contains(e.Message, "dep-u") || !strings.Contains(e.Message, s["u"]) {
		t.Fatalf("unavailable: %v (%+v)", err, e)
	}
	if len(rs) != 1 || rs[0].Status != jinanet.CodeRPCError || rs[0].Address != s["u"] || rs[0].Body != nil {
		t.Fatalf("responses %+v", rs)
	}

	if removed, err := p.RemoveConnection(jinanet.Deployment("dep-u"), s["u"]); err != nil || !removed {
		t.Fatalf("RemoveConnection: %v, %v", removed, err)
	}
	if removed, err := p.RemoveConnection(jinanet.Deployment("dep-u"), s["u"]); err != nil || removed {
		t.Fatalf("RemoveConnection again: %v, %v", removed, err)
	}
	if _, err := p.Send(ctx, data("x"), jinanet.Deployment("dep-u")); err == nil {
		t.Fatal("send to a deployment without replicas succeeded")
	}

	if _, err := jinanet.SendRequestSync(data("x"), s["u"], &jinanet.OneShotOptions{Timeout: 2 * time.Second}); !errors.Is(err, jinanet.ErrRPC) {
		t.Fatalf("SendRequestSync to an unavailable server: %v", err)
	}
	if _, err := jinanet.NewPool(&jinanet.PoolOptions{MaxAttempts: -1}); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("bad options: %v", err)
	}
}

func TestHostChecks(t *testing.T) {
	for _, c := range []struct {
		host  string
		local bool
		err   error
	}{{"localhost", true, nil}, {"127.0.0.1", true, nil}, {"0.0.0.0", true, nil}, {"8.8.8.8", false, nil}, {"jina.ai", false, jinanet.ErrInvalidHost}} {
		local, err := jinanet.HostIsLocal(c.host)
		if local != c.local || !errors.Is(err, c.err) {
			t.Errorf("HostIsLocal(%q) = %v, %v", c.host, local, err)
		}
	}
	if r, err := jinanet.IsRemoteLocalConnection("1.2.3.4", "localhost"); err != nil || !r {
		t.Errorf("IsRemoteLocalConnection(global, local) = %v, %v", r, err)
	}
	if r, err := jinanet.IsRemoteLocalConnection("192.168.0.1", "10.0.0.1"); err != nil || r {
		t.Errorf("IsRemoteLocalConnection(private, private) = %v, %v", r, err)
	}
	if v := jinanet.Version(); v != "0.2.4" {
		t.Errorf("Version() = %q", v)
	}
	if o := jinanet.DefaultGRPCOptions(); len(o) != 2 || o[0].Name != "grpc.max_send_message_length" || o[1].Value != -1 {
		t.Errorf("DefaultGRPCOptions() = %+v", o)
	}
	newPool(t, nil) // the runtime runs from here on
	if err := jinanet.InitRuntime(2); !errors.Is(err, jinanet.ErrAlreadyStarted) {
		t.Errorf("InitRuntime after start: %v", err)
	}
}

// SetBusyPoll takes 0 (off) to 10000 microseconds at any time, also while the runtime runs; sends go
// on at each setting.
func TestSetBusyPoll(t *testing.T) {
	if err := jinanet.SetBusyPoll(10001); !errors.Is(err, jinanet.ErrInvalidArgument) || !strings.Contains(err.Error(), "10001") {
		t.Errorf("SetBusyPoll(10001) = %v", err)
	}
	s := servers(t, "echo=e")
	p := newPool(t, nil)
	dep := jinanet.Deployment("busy")
	add(t, p, dep, s["e"])
	for _, us := range []uint32{0, 10000, 100} {
		if err := jinanet.SetBusyPoll(us); err != nil {
			t.Fatalf("SetBusyPoll(%d) = %v", us, err)
		}
		for i := 0; i < 3; i++ {
			id := fmt.Sprintf("busy-%d-%d", us, i)
			if got := parse(t, one(t, p, data(id), dep)); got.RequestID != id {
				t.Errorf("SetBusyPoll(%d): response of %q, want %q", us, got.RequestID, id)
			}
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s := servers(t, "slow:3000=s")
	p := newPool(t, nil)
	slow := jinanet.Deployment("slow")
	add(t, p, slow, s["s"])

	// cancelled while pending: jina_net_pool_cancel, and the send completes at once
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	rs, err := p.Send(ctx, data("x"), slow)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("cancelled send took %v", elapsed)
	}
	if !errors.Is(err, jinanet.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled send: %v", err)
	}
	if len(rs) != 1 || rs[0].Status != jinanet.CodeCancelled || rs[0].Address != s["s"] {
		t.Fatalf("responses %+v", rs)
	}

	// already cancelled: nothing is sent
	if _, err := p.Send(ctx, data("y"), slow); !errors.Is(err, jinanet.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("send with a cancelled context: %v", err)
	}

	// a deadline: passed to the library as the timeout
	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	start = time.Now()
	_, err = p.Send(dctx, data("z"), slow)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("send with a deadline took %v", elapsed)
	}
	if !errors.Is(err, jinanet.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send past its deadline: %v", err)
	}

	// the library enforces the deadline itself (a context whose Done never fires)
	start = time.Now()
	_, err = p.Send(deadlineOnly{context.Background(), time.Now().Add(300 * time.Millisecond)}, data("l"), slow)
	if elapsed := time.Since(start); !errors.Is(err, jinanet.ErrDeadlineExceeded) || elapsed > 2*time.Second {
		t.Fatalf("deadline passed as timeout_ms: %v after %v", err, elapsed)
	}

	// the pool's default timeout applies without a context deadline
	p2 := newPool(t, &jinanet.PoolOptions{DefaultTimeout: 200 * time.Millisecond})
	add(t, p2, slow, s["s"])
	if _, err := p2.Send(context.Background(), data("d"), slow); !errors.Is(err, jinanet.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pool default timeout: %v", err)
	}
}

// deadlineOnly has a deadline but is never done: only the library's timeout can end a send.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (d deadlineOnly) Deadline() (time.Time, bool) { return d.deadline, true }

func TestClosedPool(t *testing.T) {
	s := servers(t, "slow:3000=s", "echo=a")
	p, err := jinanet.NewPool(testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	add(t, p, jinanet.Deployment("slow"), s["s"])
	add(t, p, jinanet.Deployment("echo"), s["a"])
	one(t, p, data("before"), jinanet.Deployment("echo"))

	// sends pending at Close complete with ErrPoolClosed
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			_, err := p.Send(context.Background(), data("pending"), jinanet.Deployment("slow"))
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, jinanet.ErrPoolClosed) {
				t.Fatalf("pending send at Close: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("pending send did not complete after Close")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := p.Send(context.Background(), data("after"), jinanet.Deployment("echo")); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, err := p.AddConnection(jinanet.Deployment("echo"), s["a"]); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("AddConnection after Close: %v", err)
	}
	if _, err := p.RemoveConnection(jinanet.Deployment("echo"), s["a"]); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("RemoveConnection after Close: %v", err)
	}
	if _, err := p.Routes(); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("Routes after Close: %v", err)
	}
}

func TestCloseRacesWithSends(t *testing.T) {
	s := servers(t, "echo=a")
	for round := 0; round < 5; round++ {
		p, err := jinanet.NewPool(testOptions(nil))
		if err != nil {
			t.Fatal(err)
		}
		add(t, p, jinanet.Deployment("d"), s["a"])
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := p.Send(context.Background(), data("r"), jinanet.Deployment("d"))
				if err != nil && !errors.Is(err, jinanet.ErrPoolClosed) {
					t.Errorf("send racing Close: %v", err)
				}
			}()
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		_ = p.Close()
		wg.Wait()
	}
}

func TestFinalizerClosesUnreachablePools(t *testing.T) {
	s := servers(t, "echo=a")
	before := jinanet.LivePools()
	func() {
		for i := 0; i < 20; i++ {
			p, err := jinanet.NewPool(testOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			add(t, p, jinanet.Deployment("d"), s["a"])
			one(t, p, data("f"), jinanet.Deployment("d"))
		}
	}()
	if n := jinanet.LivePools(); n < before+20 {
		t.Fatalf("%d live pools, want at least %d", n, before+20)
	}
	for i := 0; i < 50 && jinanet.LivePools() > before; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := jinanet.LivePools(); n > before {
		t.Fatalf("%d pools still open after GC, want %d", n, before)
	}
}

func TestThousandConcurrentSends(t *testing.T) {
	s := servers(t, "echo=a", "echo=b")
	p := newPool(t, nil)
	dep := jinanet.Deployment("enc")
	add(t, p, dep, s["a"])
	add(t, p, dep, s["b"])
	const n = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	replicas := map[string]int{}
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("req-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rs, err := p.Send(ctx, data(id), dep)
			if err != nil {
				errs <- err
				return
			}
			info, err := jinanet.ParseDataRequest(rs[0].Body)
			if err != nil || info.RequestID != id {
				errs <- fmt.Errorf("request %s got %+v (%v)", id, info, err)
				return
			}
			mu.Lock()
			replicas[rs[0].Trailer.Get("replica")]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if replicas["a"]+replicas["b"] != n || replicas["a"] < n/4 || replicas["b"] < n/4 {
		t.Fatalf("replicas %v", replicas)
	}
}

func TestProtoHelpers(t *testing.T) {
	info, err := jinanet.ParseDataRequest(jinanet.BuildDataRequest("abc"))
	if err != nil || info.RequestID != "abc" || len(info.Routes) != 0 {
		t.Fatalf("%+v, %v", info, err)
	}
	c, err := jinanet.ParseControlRequest(jinanet.BuildControlRequest(jinanet.CommandActivate,
		jinanet.RelatedEntity{ID: "w", Address: "127.0.0.1", Port: 8080, Shard: 3},
		jinanet.RelatedEntity{Address: "::1", Port: 1, Shard: -1}))
	if err != nil || c.Command != jinanet.CommandActivate || len(c.Entities) != 2 ||
		c.Entities[0] != (jinanet.RelatedEntity{ID: "w", Address: "127.0.0.1", Port: 8080, Shard: 3}) ||
		c.Entities[1].Shard != -1 {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := jinanet.ParseDataRequest([]byte{0x0a, 0x05, 0x01}); !errors.Is(err, jinanet.ErrMalformedProto) {
		t.Fatalf("truncated message: %v", err)
	}
}

// largeData is a data request of about size bytes: its docs_bytes (DataRequestProto.data, field 4;
// DataContentProto.docs_bytes, field 2) hold size bytes of a pattern the echo sends back.
func largeData(id string, size int) jinanet.Request {
	docs := make([]byte, size)
	for i := range docs {
		docs[i] = byte(i*7 + i>>8)
	}
	inner := append(binary.AppendUvarint([]byte{0x12}, uint64(len(docs))), docs...)
	msg := append(binary.AppendUvarint(append(jinanet.BuildDataRequest(id), 0x22), uint64(len(inner))), inner...)
	return jinanet.NewDataRequest(msg)
}

// checkEcho fails unless body is the echo of req (a largeData request of size document bytes).
func checkEcho(id string, req jinanet.Request, size int, body []byte) error {
	if info, err := jinanet.ParseDataRequest(body); err != nil || info.RequestID != id ||
		!bytes.Contains(body, req.Messages[0][len(req.Messages[0])-size:]) {
		return fmt.Errorf("%s: a %d-byte response for a %d-byte document (%v)", id, len(body), size, err)
	}
	return nil
}

// concurrently runs f(0) ... f(n-1) on n goroutines and fails the test with the first error.
func concurrently(t *testing.T, n int, f func(g int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			if err := f(g); err != nil {
				errs <- err
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Large responses (which a caller-driven pool's polling goroutine retains in the library and the
// sender copies) arrive whole, from many goroutines at once, next to small ones.
func TestLargeResponses(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	retained, materialized := jinanet.LargeBodies()
	concurrently(t, 16, func(g int) error {
		for i := 0; i < 4; i++ {
			size := []int{100, 64 << 10, 300 << 10, 1 << 20}[(g+i)%4]
			id := fmt.Sprintf("large-%d-%d", g, i)
			req := largeData(id, size)
			rs, err := p.Send(context.Background(), req, dep)
			if err != nil {
				return err
			}
			if err := checkEcho(id, req, size, rs[0].Body); err != nil {
				return err
			}
		}
		return nil
	})
	r, m := jinanet.LargeBodies()
	if r-retained != m-materialized {
		t.Fatalf("%d large bodies retained, %d copied and freed", r-retained, m-materialized)
	}
	if !libraryThreads && r-retained < 16 { // 48 of the 64 responses are >= 64 KiB
		t.Fatalf("only %d large bodies retained by the polling goroutine", r-retained)
	}
}
