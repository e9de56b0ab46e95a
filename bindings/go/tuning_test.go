package jinanet_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

func TestP2CHedgingAndMetrics(t *testing.T) {
	s := servers(t, "slow:3000=s", "echo=a")
	p := newPool(t, &jinanet.PoolOptions{
		Balance:    jinanet.BalanceP2C,
		HedgeDelay: 20 * time.Millisecond,
		MaxHedges:  1,
		Metrics:    true,
	})
	d := jinanet.Deployment("d")
	add(t, p, d, s["s"])
	add(t, p, d, s["a"])
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		rs, err := p.SendWithOptions(ctx, data("hedged"), d, jinanet.SendOptions{Idempotent: true})
		cancel()
		if err != nil || len(rs) != 1 || rs[0].Trailer.Get("replica") != "a" {
			t.Fatalf("idempotent send %d: %v, %+v", i, err, rs)
		}
	}
	text, err := p.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	want := `jina_sending_request_seconds_count{deployment="d",shard="0",address="` + s["a"] + `"} `
	if !strings.Contains(text, want) || !strings.Contains(text, "# TYPE jina_net_hedges_total counter") {
		t.Fatalf("metrics text lacks %q:\n%s", want, text)
	}
	if _, err := newPool(t, nil).MetricsText(); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("metrics of a pool without them: %v", err)
	}
}

func TestSendsNotMarkedIdempotentAreNotHedged(t *testing.T) {
	s := servers(t, "slow:300=s", "echo=a")
	p := newPool(t, &jinanet.PoolOptions{HedgeDelay: 10 * time.Millisecond, MaxHedges: 1})
	d := jinanet.Deployment("d")
	add(t, p, d, s["s"])
	add(t, p, d, s["a"])
	// round robin: the slow replica first; without Idempotent it answers itself
	rs, err := p.SendWithOptions(context.Background(), data("plain"), d, jinanet.SendOptions{})
	if err != nil || rs[0].Trailer.Get("replica") != "s" {
		t.Fatalf("not hedged: %v %+v", err, rs)
	}
	rs, err = p.Send(context.Background(), data("plain2"), d)
	if err != nil || rs[0].Trailer.Get("replica") != "a" {
		t.Fatalf("round robin: %v %+v", err, rs)
	}
	rs, err = p.Send(context.Background(), data("plain3"), d)
	if err != nil || rs[0].Trailer.Get("replica") != "s" {
		t.Fatalf("Send is never hedged: %v %+v", err, rs)
	}
}

func TestInFlightLimitRefusesWithResourceExhausted(t *testing.T) {
	s := servers(t, "slow:3000=s")
	p := newPool(t, &jinanet.PoolOptions{MaxInFlightPerReplica: 1, MaxQueuedSends: jinanet.NoQueue})
	busy := jinanet.Deployment("busy").Shard(4)
	add(t, p, busy, s["s"])
	first := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), data("first"), busy)
		first <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	_, err := p.Send(context.Background(), data("second"), busy)
	var e *jinanet.Error
	if !errors.Is(err, jinanet.ErrResourceExhausted) || !errors.As(err, &e) ||
		!strings.Contains(e.Message, `deployment "busy" shard 4`) || e.Shard != 4 {
		t.Fatalf("second send: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("refused after %v, not at once", time.Since(start))
	}
	_ = p.Close()
	if err := <-first; !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("first send after close: %v", err)
	}
	if _, err := jinanet.NewPool(&jinanet.PoolOptions{MaxHedges: -1}); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("negative MaxHedges: %v", err)
	}
	if _, err := jinanet.NewPool(&jinanet.PoolOptions{Balance: 7}); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("unknown Balance: %v", err)
	}
}

func TestLogCallback(t *testing.T) {
	s := servers(t, "unavailable=u")
	var mu sync.Mutex
	retries, events := 0, 0
	err := jinanet.SetLogCallback(func(level jinanet.LogLevel, target, message string) {
		mu.Lock()
		defer mu.Unlock()
		events++
		if level == jinanet.LogDebug && target == "jina_net::send" && strings.Contains(message, "retrying") {
			retries++
		}
	}, jinanet.LogDebug)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = jinanet.SetLogCallback(nil, jinanet.LogOff) }()
	p := newPool(t, nil)
	d := jinanet.Deployment("down")
	add(t, p, d, s["u"])
	if _, err := p.Send(context.Background(), data("logged"), d); !errors.Is(err, jinanet.ErrRPC) {
		t.Fatalf("send to an unavailable replica: %v", err)
	}
	if err := jinanet.SetLogCallback(nil, jinanet.LogOff); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got, seen := retries, events
	mu.Unlock()
	if got != 2 {
		t.Fatalf("retries logged: %d (events %d)", got, seen)
	}
	_, _ = p.Send(context.Background(), data("quiet"), d)
	mu.Lock()
	defer mu.Unlock()
	if events != seen {
		t.Fatalf("events after removing the callback: %d -> %d", seen, events)
	}
}

// An owned send marked idempotent is hedged (jina_net_pool_send_owned_ex); its buffer is freed once.
// Round robin picks the slow replica first: unhedged, the send would outlive its deadline.
func TestSendOwnedWithOptionsIsHedged(t *testing.T) {
	s := servers(t, "slow:3000=s", "echo=a")
	p := newPool(t, &jinanet.PoolOptions{HedgeDelay: 20 * time.Millisecond, MaxHedges: 1})
	d := jinanet.Deployment("d")
	add(t, p, d, s["s"])
	add(t, p, d, s["a"])
	base := cbufferCounts()
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	req := jinanet.NewOwnedDataRequest(jinanet.CBufferFrom(jinanet.BuildDataRequest("owned-hedged")))
	rs, err := p.SendOwnedWithOptions(ctx, req, d, jinanet.SendOptions{Idempotent: true})
	if err != nil || len(rs) != 1 || rs[0].Trailer.Get("replica") != "a" {
		t.Fatalf("idempotent owned send: %v, %+v", err, rs)
	}
	expectFrees(t, "hedged owned send", base, freeCounts{1, 0, 1})
}
