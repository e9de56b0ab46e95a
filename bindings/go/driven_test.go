package jinanet_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// The behaviour of caller-driven pools (the default): the goroutines waiting in Send run the pool,
// one at a time; an idle poller runs it while none waits; Close stops them and completes what is
// pending. These tests run in both modes of the suite unless they are about the driving itself.

// settled waits (bounded) until f() holds; the goroutines of a test take a moment to return.
func settled(f func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if f() {
			return true
		}
	}
	return f()
}

// Many goroutines, each sending many requests with every kind of context: every send completes
// exactly once with its own response, and no waiter is left behind.
func TestDrivenManyGoroutinesEachSendCompletesOnce(t *testing.T) {
	manyGoroutinesEachSendCompletesOnce(t, nil)
}

// The same with CallbacksInPoll: library threads run the pool, the goroutines waiting in Send poll
// it for the callbacks.
func TestCallbacksInPollManyGoroutinesEachSendCompletesOnce(t *testing.T) {
	manyGoroutinesEachSendCompletesOnce(t, &jinanet.PoolOptions{LibraryThreads: true, CallbacksInPoll: true})
}

// A pool with CallbacksInPoll: close completes a send pending on a slow replica (ErrPoolClosed)
// and the idle poller stops.
func TestCallbacksInPollClose(t *testing.T) {
	s := servers(t, "slow:30000=s")
	pollers := jinanet.IdlePollers()
	p, err := jinanet.NewPool(&jinanet.PoolOptions{LibraryThreads: true, CallbacksInPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	dep := jinanet.Deployment("enc")
	add(t, p, dep, s["s"])
	done := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), data("pending"), dep)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, jinanet.ErrPoolClosed) {
			t.Fatalf("pending send after Close: %v, want ErrPoolClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a send pending at Close did not complete")
	}
	if !settled(func() bool { return jinanet.IdlePollers() == pollers }) {
		t.Fatalf("%d idle pollers, want %d", jinanet.IdlePollers(), pollers)
	}
}

func manyGoroutinesEachSendCompletesOnce(t *testing.T, opts *jinanet.PoolOptions) {
	s := servers(t, "echo=a", "echo=b")
	p := newPool(t, opts)
	dep := jinanet.Deployment("enc")
	add(t, p, dep, s["a"])
	add(t, p, dep, s["b"])
	base := jinanet.PendingWaiters()
	const goroutines, sends = 64, 40
	var ok int64
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < sends; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				switch i % 3 {
				case 1:
					ctx, cancel = context.WithCancel(ctx)
				case 2:
					ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
				}
				rs, err := p.Send(ctx, data(id), dep)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("send %s: %v", id, err)
					return
				}
				if info, err := jinanet.ParseDataRequest(rs[0].Body); err != nil || info.RequestID != id || len(rs) != 1 {
					errs <- fmt.Errorf("send %s got %d responses, the first for %+v (%v)", id, len(rs), info, err)
					return
				}
				atomic.AddInt64(&ok, 1)
			}
		}(g)
	}
	within(t, 60*time.Second, "every send", wg.Wait)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ok != goroutines*sends {
		t.Fatalf("%d sends succeeded, want %d", ok, goroutines*sends)
	}
	if n := jinanet.PendingWaiters(); n != base {
		t.Fatalf("%d waiters registered after every send returned, want %d", n, base)
	}
	if n := jinanet.PollFailures(); n != 0 {
		t.Fatalf("%d polls failed", n)
	}
}

// A send whose goroutine is a follower (another goroutine leads: it waits for a slow server) is
// cancelled by its context, and one that leads is too; so are deadlines; the slow send goes on.
func TestDrivenCancelWhileLeadingAndFollowing(t *testing.T) {
	s := servers(t, "slow:1500=s")
	p := newPool(t, nil)
	slow := jinanet.Deployment("slow")
	add(t, p, slow, s["s"])
	one(t, p, data("connect"), slow) // the connection is up: the timings below are the sends'

	leader := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), data("long"), slow)
		leader <- err
	}()
	time.Sleep(100 * time.Millisecond) // the long send's goroutine leads

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := p.Send(ctx, data("cancelled"), slow)
	if elapsed := time.Since(start); elapsed > time.Second || !errors.Is(err, jinanet.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("follower's send cancelled after 100 ms: %v after %v", err, elapsed)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer dcancel()
	start = time.Now()
	_, err = p.Send(dctx, data("deadline"), slow)
	if elapsed := time.Since(start); elapsed > time.Second || !errors.Is(err, jinanet.ErrDeadlineExceeded) {
		t.Fatalf("follower's send with a 150 ms deadline: %v after %v", err, elapsed)
	}
	if err := <-leader; err != nil {
		t.Fatalf("the slow send: %v", err)
	}

	// alone, the cancellable send leads (polls in slices and cancels in between)
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = p.Send(ctx, data("leading"), slow)
	if elapsed := time.Since(start); elapsed > time.Second || !errors.Is(err, jinanet.ErrCancelled) {
		t.Fatalf("leader's send cancelled after 100 ms: %v after %v", err, elapsed)
	}
}

// Close with sends pending: each completes with ErrPoolClosed. A caller-driven pool completes them
// during Close (their callbacks run on the closing goroutine), so none is left registered when Close
// returns, its idle poller has stopped, and no goroutine of the pool is left.
func TestDrivenCloseCompletesPendingSendsAndStopsPolling(t *testing.T) {
	s := servers(t, "slow:3000=s", "echo=a")
	goroutines := runtime.NumGoroutine()
	pollers := jinanet.IdlePollers()
	base := jinanet.PendingWaiters()
	p, err := jinanet.NewPool(testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	add(t, p, jinanet.Deployment("slow"), s["s"])
	add(t, p, jinanet.Deployment("echo"), s["a"])
	one(t, p, data("up"), jinanet.Deployment("echo"))
	if !libraryThreads && jinanet.IdlePollers() != pollers+1 {
		t.Fatalf("%d idle pollers with the pool open, want %d", jinanet.IdlePollers(), pollers+1)
	}
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		ctx := context.Background()
		if i%2 == 1 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		go func(ctx context.Context) {
			_, err := p.Send(ctx, data("pending"), jinanet.Deployment("slow"))
			errs <- err
		}(ctx)
	}
	if !settled(func() bool { return jinanet.PendingWaiters() == base+n }) {
		t.Fatalf("%d sends pending, want %d", jinanet.PendingWaiters()-base, n)
	}
	within(t, 2*time.Second, "Close with sends pending", func() { _ = p.Close() })
	if !libraryThreads {
		if left := jinanet.PendingWaiters() - base; left != 0 {
			t.Fatalf("%d sends still pending when Close returned", left)
		}
		if jinanet.IdlePollers() != pollers {
			t.Fatalf("%d idle pollers after Close, want %d", jinanet.IdlePollers(), pollers)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, jinanet.ErrPoolClosed) {
				t.Fatalf("pending send at Close: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a pending send did not return after Close")
		}
	}
	if !settled(func() bool { return runtime.NumGoroutine() <= goroutines }) {
		t.Fatalf("%d goroutines after Close, %d before the pool", runtime.NumGoroutine(), goroutines)
	}
	if _, err := p.Send(context.Background(), data("after"), jinanet.Deployment("echo")); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not done after %v", what, d)
	}
}

// After the pool was left alone long enough for its idle poller to take the polling over, sends
// still complete, one and many at once: the idle poller serves them and hands the polling back.
func TestDrivenSendsAfterIdle(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	for round := 0; round < 3; round++ {
		one(t, p, data("before"), dep)
		idle := jinanet.IdlePolls()
		time.Sleep(150 * time.Millisecond) // > 2 × the idle poller's 50 ms
		if !libraryThreads && jinanet.IdlePolls() == idle {
			t.Fatalf("round %d: the idle poller did not take the pool over", round)
		}
		within(t, 5*time.Second, "one send after idle", func() {
			if _, err := p.Send(context.Background(), data("alone"), dep); err != nil {
				t.Errorf("send: %v", err)
			}
		})
		time.Sleep(150 * time.Millisecond)
		within(t, 5*time.Second, "20 sends at once after idle", func() {
			var wg sync.WaitGroup
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := p.Send(context.Background(), data("together"), dep); err != nil {
						t.Errorf("send: %v", err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// With a single P, the goroutine polling (inside C, holding no P) and the goroutines it wakes share
// it: sends still complete.
func TestDrivenWithOneP(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var ok int64
	within(t, 20*time.Second, "32 goroutines × 20 sends with GOMAXPROCS=1", func() {
		var wg sync.WaitGroup
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					if _, err := p.Send(context.Background(), data("p1"), dep); err != nil {
						t.Errorf("send: %v", err)
						return
					}
					atomic.AddInt64(&ok, 1)
				}
			}()
		}
		wg.Wait()
	})
	if ok != 32*20 {
		t.Fatalf("%d sends succeeded, want %d", ok, 32*20)
	}
}

// A caller-driven pool that becomes unreachable is closed by its finalizer: its idle poller (which
// does not keep the Pool reachable) stops.
func TestDrivenFinalizerStopsIdlePoller(t *testing.T) {
	if libraryThreads {
		t.Skip("no idle poller with library threads")
	}
	s := servers(t, "echo=a")
	pollers, live := jinanet.IdlePollers(), jinanet.LivePools()
	// The pools stay reachable until their idle pollers were counted (a garbage collection that the
	// runtime starts on its own before then would otherwise finalize some of them early).
	pools := make([]*jinanet.Pool, 0, 5)
	for i := 0; i < 5; i++ {
		p, err := jinanet.NewPool(nil)
		if err != nil {
			t.Fatal(err)
		}
		add(t, p, jinanet.Deployment("d"), s["a"])
		one(t, p, data("f"), jinanet.Deployment("d"))
		pools = append(pools, p)
	}
	if !settled(func() bool { return jinanet.IdlePollers() == pollers+5 }) { // the idle pollers poll now
		t.Fatalf("%d idle pollers, want %d", jinanet.IdlePollers(), pollers+5)
	}
	runtime.KeepAlive(pools) // unreachable from here on
	if !settled(func() bool { runtime.GC(); return jinanet.IdlePollers() == pollers && jinanet.LivePools() == live }) {
		t.Fatalf("after GC: %d idle pollers (want %d), %d live pools (want %d)", jinanet.IdlePollers(), pollers,
			jinanet.LivePools(), live)
	}
}
