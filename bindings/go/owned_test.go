package jinanet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// freeCounts tracks the CBuffer counters from a starting point.
type freeCounts struct{ allocated, inGo, byLibrary int64 }

func cbufferCounts() freeCounts {
	a, g, l := jinanet.CBufferCounts()
	return freeCounts{a, g, l}
}

// expectFrees waits (bounded: the library frees on its own threads, after the send completed) until
// the counters moved by exactly want from base, and fails if they do not or move further.
func expectFrees(t *testing.T, what string, base, want freeCounts) {
	t.Helper()
	var got freeCounts
	for deadline := time.Now().Add(3 * time.Second); ; {
		now := cbufferCounts()
		got = freeCounts{now.allocated - base.allocated, now.inGo - base.inGo, now.byLibrary - base.byLibrary}
		if got == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("%s: CBuffers allocated/freed in Go/freed by the library moved by %+v, want %+v", what, got, want)
	}
	time.Sleep(20 * time.Millisecond) // nothing more may follow (a second free)
	now := cbufferCounts()
	if later := (freeCounts{now.allocated - base.allocated, now.inGo - base.inGo, now.byLibrary - base.byLibrary}); later != want {
		t.Fatalf("%s: the counters moved on to %+v after reaching %+v", what, later, want)
	}
}

func TestCBuffer(t *testing.T) {
	base := cbufferCounts()
	b := jinanet.NewCBuffer(5)
	if b.Len() != 5 || len(b.Bytes()) != 5 {
		t.Fatalf("NewCBuffer(5): Len %d, Bytes %d", b.Len(), len(b.Bytes()))
	}
	copy(b.Bytes(), "hello")
	if string(b.Bytes()) != "hello" {
		t.Fatalf("Bytes() = %q", b.Bytes())
	}
	b.Free()
	if b.Bytes() != nil || b.Len() != 0 {
		t.Fatal("a freed CBuffer still shows its bytes")
	}
	b.Free() // twice: no-op
	var nilBuf *jinanet.CBuffer
	nilBuf.Free()
	if nilBuf.Bytes() != nil || nilBuf.Len() != 0 {
		t.Fatal("nil CBuffer")
	}
	c := jinanet.CBufferFrom([]byte("abc"))
	if string(c.Bytes()) != "abc" {
		t.Fatalf("CBufferFrom: %q", c.Bytes())
	}
	c.Free()
	z := jinanet.NewCBuffer(0)
	if z.Len() != 0 || z.Bytes() != nil {
		t.Fatal("empty CBuffer")
	}
	z.Free()
	expectFrees(t, "Free", base, freeCounts{3, 3, 0})

	// a buffer dropped without Free or a send is freed by its finalizer
	base = cbufferCounts()
	func() { _ = jinanet.NewCBuffer(64) }()
	for i := 0; i < 50; i++ {
		runtime.GC()
		if a, g, _ := jinanet.CBufferCounts(); g-base.inGo == 1 && a-base.allocated == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	expectFrees(t, "finalizer", base, freeCounts{1, 1, 0})
}

func TestSendOwned(t *testing.T) {
	s := servers(t, "echo=a", "unavailable=u", "slow:3000=s")
	p := newPool(t, &jinanet.PoolOptions{MaxAttempts: 1})
	echo, down, slow := jinanet.Deployment("echo"), jinanet.Deployment("down"), jinanet.Deployment("slow")
	add(t, p, echo, s["a"])
	add(t, p, down, s["u"])
	add(t, p, slow, s["s"])
	ctx := context.Background()

	// success: the bytes arrive as built in C memory; the library frees the buffer once
	base := cbufferCounts()
	msg := jinanet.BuildDataRequest("owned-1")
	b := jinanet.NewCBuffer(len(msg))
	copy(b.Bytes(), msg)
	rs, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(b).WithEndpoint("/index"), echo)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("SendOwned: %+v, %v", rs, err)
	}
	if info := parse(t, rs[0]); info.RequestID != "owned-1" || rs[0].Trailer.Get("endpoint") != "/index" {
		t.Fatalf("response %+v, trailers %v", info, rs[0].Trailer)
	}
	if b.Bytes() != nil || b.Len() != 0 {
		t.Fatal("a sent CBuffer still shows its bytes")
	}
	b.Free() // no-op: the library owns it
	expectFrees(t, "success", base, freeCounts{1, 0, 1})

	// several messages: one process_data call; every buffer freed once by the library
	base = cbufferCounts()
	rs, err = p.SendOwned(ctx, jinanet.NewOwnedDataRequest(
		jinanet.CBufferFrom(jinanet.BuildDataRequest("m1")), jinanet.CBufferFrom(jinanet.BuildDataRequest("m2"))), echo)
	if err != nil || len(rs) != 1 || rs[0].Trailer.Get("request-count") != "2" {
		t.Fatalf("two messages: %+v, %v", rs, err)
	}
	expectFrees(t, "two messages", base, freeCounts{2, 0, 2})

	// the library refuses the send (unknown deployment, bytes that are not protobuf): it frees the
	// buffers before SendOwned returns
	for _, c := range []struct {
		what   string
		msg    []byte
		target jinanet.Target
		want   error
	}{
		{"unknown deployment", msg, jinanet.Deployment("nope"), jinanet.ErrUnknownDeployment},
		{"not protobuf", []byte{0xff, 0xff, 0xff}, echo, jinanet.ErrInvalidRequest},
		{"no head", msg, echo.Head(), jinanet.ErrNoReplicas},
	} {
		base = cbufferCounts()
		if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(c.msg)), c.target); !errors.Is(err, c.want) {
			t.Fatalf("%s: %v", c.what, err)
		}
		now := cbufferCounts()
		if now.byLibrary-base.byLibrary != 1 {
			t.Fatalf("%s: the library had freed %d buffers when SendOwned returned", c.what, now.byLibrary-base.byLibrary)
		}
		expectFrees(t, c.what, base, freeCounts{1, 0, 1})
	}

	// the send fails at the server (UNAVAILABLE) or is cancelled while pending: freed after it completed
	base = cbufferCounts()
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg)), down); !errors.Is(err, jinanet.ErrRPC) {
		t.Fatalf("unavailable: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := p.SendOwned(cctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg)), slow); !errors.Is(err, jinanet.ErrCancelled) {
		t.Fatalf("cancelled: %v", err)
	}
	expectFrees(t, "RPC error and cancel", base, freeCounts{2, 0, 2})

	// failures before the library sees the buffers: SendOwned frees them itself
	base = cbufferCounts()
	if _, err := p.SendOwned(cctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg)), echo); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg)), jinanet.Deployment("a\x00b")); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("NUL in deployment: %v", err)
	}
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg), nil), echo); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("nil buffer: %v", err)
	}
	twice := jinanet.CBufferFrom(msg)
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(twice, twice), echo); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("one buffer twice: %v", err)
	}
	expectFrees(t, "before the library", base, freeCounts{4, 4, 0})

	// a buffer already sent cannot be sent again (and is not freed again)
	base = cbufferCounts()
	again := jinanet.CBufferFrom(msg)
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(again), echo); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(again), echo); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("resending a sent buffer: %v", err)
	}
	expectFrees(t, "sent twice", base, freeCounts{1, 0, 1})

	// a closed pool: freed by SendOwned
	p2, err := jinanet.NewPool(testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	add(t, p2, echo, s["a"])
	_ = p2.Close()
	base = cbufferCounts()
	if _, err := p2.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg)), echo); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("closed pool: %v", err)
	}
	expectFrees(t, "closed pool", base, freeCounts{1, 1, 0})
}

func TestSendOwnedConcurrently(t *testing.T) {
	s := servers(t, "echo=a", "echo=b")
	p := newPool(t, nil)
	dep := jinanet.Deployment("enc")
	add(t, p, dep, s["a"])
	add(t, p, dep, s["b"])
	base := cbufferCounts()
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("owned-%d", i)
			msg := jinanet.BuildDataRequest(id)
			ctx := context.Background()
			if i%2 == 1 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
			}
			rs, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(msg)), dep)
			if err != nil {
				errs <- err
				return
			}
			if info, err := jinanet.ParseDataRequest(rs[0].Body); err != nil || info.RequestID != id ||
				!bytes.HasPrefix(rs[0].Body, msg[:2]) {
				errs <- fmt.Errorf("request %s got %+v (%v)", id, info, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	expectFrees(t, "concurrent sends", base, freeCounts{n, 0, n})
}

// Only sends whose context can be cancelled are registered for jina_net_pool_cancel.
func TestCancellationRegistryOnlyForCancellableContexts(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	before := jinanet.RegisteredSends()
	one(t, p, data("background"), dep)
	if _, err := p.Send(context.TODO(), data("todo"), dep); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendOwned(context.Background(), jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(jinanet.BuildDataRequest("o"))), dep); err != nil {
		t.Fatal(err)
	}
	if got := jinanet.RegisteredSends() - before; got != 0 {
		t.Fatalf("%d sends with uncancellable contexts were registered", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := p.Send(ctx, data("cancellable"), dep); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendOwned(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(jinanet.BuildDataRequest("o2"))), dep); err != nil {
		t.Fatal(err)
	}
	if got := jinanet.RegisteredSends() - before; got != 2 {
		t.Fatalf("%d sends with cancellable contexts were registered, want 2", got)
	}
}
