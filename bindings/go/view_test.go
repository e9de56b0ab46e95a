package jinanet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// SendView hands large bodies to its function without a copy (they are the library's, lent and
// freed after it), small ones as copies; with ALL polling each shard's response is lent.
func TestSendViewLendsLargeBodies(t *testing.T) {
	s := servers(t, "echo=a", "echo=b")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep.Shard(0), s["a"])
	add(t, p, dep.Shard(1), s["b"])
	for _, size := range []int{100, 300 << 10} {
		for _, target := range []jinanet.Target{dep, dep.All()} {
			want := 1
			if target == dep.All() {
				want = 2
			}
			id := fmt.Sprintf("view-%d-%d", size, want)
			req := largeData(id, size)
			retained, materialized := jinanet.LargeBodies()
			lent := jinanet.LentBodies()
			var kept []*jinanet.Response
			calls := 0
			err := p.SendView(context.Background(), req, target, func(rs []*jinanet.Response, err error) error {
				calls++
				if err != nil || len(rs) != want {
					return fmt.Errorf("%d responses, %v", len(rs), err)
				}
				for _, r := range rs {
					if err := checkEcho(id, req, size, r.Body); err != nil {
						return err
					}
				}
				kept = rs
				return nil
			})
			if err != nil || calls != 1 {
				t.Fatalf("%s: SendView = %v, view called %d times", id, err, calls)
			}
			r, m := jinanet.LargeBodies()
			l := jinanet.LentBodies()
			large := size >= 64<<10
			if large && (r-retained != int64(want) || l-lent != int64(want) || m != materialized) {
				t.Fatalf("%s: %d retained, %d lent, %d copied; want %d lent, none copied", id, r-retained, l-lent,
					m-materialized, want)
			}
			if !large && (r != retained || l != lent) {
				t.Fatalf("%s: a small body was retained (%d) or lent (%d)", id, r-retained, l-lent)
			}
			for _, k := range kept {
				if large && k.Body != nil {
					t.Fatalf("%s: a lent body is still reachable after SendView", id)
				}
				if !large {
					if err := checkEcho(id, req, size, k.Body); err != nil {
						t.Fatalf("a copied body changed after SendView: %v", err)
					}
				}
			}
		}
	}
}

// Many goroutines view 1 MiB responses at once (the polling goroutine's own ones included), next to
// Send's copies: each arrives whole, every lent body is freed, no copy is made for SendView.
func TestSendViewConcurrent(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	retained, materialized := jinanet.LargeBodies()
	lent := jinanet.LentBodies()
	const goroutines, sends = 8, 4
	concurrently(t, goroutines, func(g int) error {
		for i := 0; i < sends; i++ {
			id := fmt.Sprintf("view-%d-%d", g, i)
			req := largeData(id, 1<<20)
			var err error
			if g%2 == 0 {
				err = p.SendView(context.Background(), req, dep, func(rs []*jinanet.Response, err error) error {
					if err != nil {
						return err
					}
					return checkEcho(id, req, 1<<20, rs[0].Body)
				})
			} else {
				var rs []*jinanet.Response
				if rs, err = p.Send(context.Background(), req, dep); err == nil {
					err = checkEcho(id, req, 1<<20, rs[0].Body)
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	r, m := jinanet.LargeBodies()
	l := jinanet.LentBodies()
	const viewed = goroutines / 2 * sends
	if l-lent != viewed || r-retained != (m-materialized)+(l-lent) {
		t.Fatalf("%d lent (want %d), %d retained, %d copied", l-lent, viewed, r-retained, m-materialized)
	}
}

// A send that cannot start reaches view as Send's error, once, with no responses; view's error is
// SendView's; a nil view is refused; a panicking view still frees the lent bodies.
func TestSendViewErrors(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	ctx := context.Background()

	var e *jinanet.Error
	if err := p.SendView(ctx, data("x"), dep, nil); !errors.As(err, &e) || e.Code != jinanet.CodeInvalidArgument {
		t.Fatalf("nil view: %v", err)
	}

	_, sendErr := p.Send(ctx, data("x"), jinanet.Deployment("unknown"))
	var want *jinanet.Error
	if !errors.As(sendErr, &want) {
		t.Fatalf("Send to an unknown deployment: %v", sendErr)
	}
	mine := errors.New("view's own error")
	calls := 0
	err := p.SendView(ctx, data("x"), jinanet.Deployment("unknown"), func(rs []*jinanet.Response, err error) error {
		calls++
		if !errors.As(err, &e) || e.Code != want.Code || len(rs) != 0 {
			t.Errorf("view got %d responses and %v; want none and code %v", len(rs), err, want.Code)
		}
		return mine
	})
	if err != mine || calls != 1 {
		t.Fatalf("SendView = %v after %d calls of view; want view's error after one", err, calls)
	}

	cctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	err = p.SendView(cctx, data("x"), dep, func(rs []*jinanet.Response, err error) error { return err })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an expired context: %v", err)
	}

	lent := jinanet.LentBodies()
	func() {
		defer func() {
			if r := recover(); r != "view panics" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_ = p.SendView(ctx, largeData("panic", 128<<10), dep, func([]*jinanet.Response, error) error {
			panic("view panics")
		})
	}()
	if l := jinanet.LentBodies(); l != lent+1 {
		t.Fatalf("a panicking view left %d lent bodies unfreed", lent+1-l)
	}
	if _, err := p.Send(ctx, data("after"), dep); err != nil {
		t.Fatalf("the pool after a panicking view: %v", err)
	}
}

// SendOwnedView: the request goes from C memory (freed once by the library), the large response is
// lent; a nil view and a refused send still free the buffers.
func TestSendOwnedView(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("d")
	add(t, p, dep, s["a"])
	ctx := context.Background()

	base := cbufferCounts()
	lent := jinanet.LentBodies()
	req := largeData("owned-view", 256<<10)
	calls := 0
	err := p.SendOwnedView(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(req.Messages[0])), dep,
		func(rs []*jinanet.Response, err error) error {
			calls++
			if err != nil || len(rs) != 1 {
				return fmt.Errorf("%d responses, %v", len(rs), err)
			}
			return checkEcho("owned-view", req, 256<<10, rs[0].Body)
		})
	if err != nil || calls != 1 {
		t.Fatalf("SendOwnedView = %v after %d calls of view", err, calls)
	}
	if l := jinanet.LentBodies(); l != lent+1 {
		t.Fatalf("%d bodies lent, want 1", l-lent)
	}
	expectFrees(t, "SendOwnedView", base, freeCounts{1, 0, 1})

	base = cbufferCounts()
	var e *jinanet.Error
	err = p.SendOwnedView(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(req.Messages[0])), dep, nil)
	if !errors.As(err, &e) || e.Code != jinanet.CodeInvalidArgument {
		t.Fatalf("nil view: %v", err)
	}
	expectFrees(t, "nil view", base, freeCounts{1, 1, 0})

	base = cbufferCounts()
	calls = 0
	err = p.SendOwnedView(ctx, jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(req.Messages[0])),
		jinanet.Deployment("unknown"), func(rs []*jinanet.Response, err error) error {
			calls++
			if len(rs) != 0 {
				t.Errorf("%d responses from an unknown deployment", len(rs))
			}
			return err
		})
	if !errors.As(err, &e) || e.Code != jinanet.CodeUnknownDeployment || calls != 1 {
		t.Fatalf("unknown deployment: %v after %d calls of view", err, calls)
	}
	expectFrees(t, "refused send", base, freeCounts{1, 0, 1})
}
