package jinanet_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// deadAddress is a local address nobody listens on (connections are refused: UNAVAILABLE).
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestResilientPoolOptionsPreset(t *testing.T) {
	want := jinanet.PoolOptions{
		MaxAttempts: 3, FailOver: true,
		InitialBackoff: 10 * time.Millisecond, BackoffMultiplier: 2, MaxBackoff: time.Second,
		EjectAfterFailures: 1, BaseEjection: 100 * time.Millisecond, MaxEjection: 800 * time.Millisecond,
		MaxEjectionPercent: 50, ConnectTimeout: 5 * time.Second, TCPUserTimeout: 20 * time.Second,
		KeepaliveInterval: 5 * time.Minute, KeepaliveTimeout: 20 * time.Second,
		ProbeAfter: 500 * time.Millisecond, ProbeTimeout: time.Second, EjectOnDeadline: true,
		RetryBudgetMaxTokens: 10, RetryBudgetTokenRatio: 0.1,
	}
	got := jinanet.ResilientPoolOptions()
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("ResilientPoolOptions() = %+v\nwant %+v", *got, want)
	}
	got.MaxHedges = 9 // a fresh struct each time
	if jinanet.ResilientPoolOptions().MaxHedges != 0 {
		t.Fatal("ResilientPoolOptions returned a shared struct")
	}

	// what NewPool hands to the library: the zero value is jina's behaviour...
	c, err := jinanet.PoolOptionsAsC(&jinanet.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defaults := jinanet.CPoolOptions{
		StructSize: jinanet.CPoolOptionsSize, MaxAttempts: 3, BackoffMultiplier: 1,
		BaseEjection: 100 * time.Millisecond, MaxEjection: 800 * time.Millisecond, MaxEjectionPercent: 50,
		MaxQueue: 1000, CallerDriven: true,
		P2CDefaultRTT: 30 * time.Millisecond, P2CDecay: 10 * time.Second,
		ConnectTimeout: 5 * time.Second, TCPUserTimeout: 20 * time.Second,
		KeepaliveInterval: 5 * time.Minute, KeepaliveTimeout: 20 * time.Second,
		ProbeAfter: 2 * time.Second, ProbeTimeout: 5 * time.Second, RetryBudgetTokenRatio: 0.1,
		DNSRefresh: 30 * time.Second,
	}
	if c != defaults {
		t.Fatalf("zero PoolOptions as C:\n%+v\nwant\n%+v", c, defaults)
	}
	if nilOpts, err := jinanet.PoolOptionsAsC(nil); err != nil || nilOpts != defaults {
		t.Fatalf("nil PoolOptions as C: %+v, %v", nilOpts, err)
	}
	// ...the preset is the library's resilient settings...
	c, err = jinanet.PoolOptionsAsC(jinanet.ResilientPoolOptions())
	if err != nil {
		t.Fatal(err)
	}
	resilient := defaults
	resilient.FailOver, resilient.InitialBackoff, resilient.BackoffMultiplier, resilient.MaxBackoff = true, 10*time.Millisecond, 2, time.Second
	resilient.EjectAfterFailures = 1
	resilient.ProbeAfter, resilient.ProbeTimeout, resilient.EjectOnDeadline = 500*time.Millisecond, time.Second, true
	resilient.RetryBudgetMaxTokens = 10
	if c != resilient {
		t.Fatalf("ResilientPoolOptions as C:\n%+v\nwant\n%+v", c, resilient)
	}
	// ...a field of the preset set to 0 is the plain default: EjectAfterFailures 0 = no ejection
	noEjection := jinanet.ResilientPoolOptions()
	noEjection.EjectAfterFailures = 0
	c, _ = jinanet.PoolOptionsAsC(noEjection)
	want2 := resilient
	want2.EjectAfterFailures = 0
	if c != want2 {
		t.Fatalf("preset without ejection as C:\n%+v\nwant\n%+v", c, want2)
	}
	// every field reaches its C field
	c, err = jinanet.PoolOptionsAsC(&jinanet.PoolOptions{
		MaxAttempts: 7, DefaultTimeout: 1500 * time.Microsecond, FailOver: true,
		InitialBackoff: 11 * time.Millisecond, BackoffMultiplier: 1.5, MaxBackoff: 222 * time.Millisecond,
		EjectAfterFailures: 4, BaseEjection: 33 * time.Millisecond, MaxEjection: 444 * time.Millisecond,
		MaxEjectionPercent: 100, MaxInFlightPerReplica: 5, MaxQueuedSends: jinanet.NoQueue, MaxHedges: 2,
		LibraryThreads: true, TLS: true, RootCertificatesPEM: []byte("pem"), Metrics: true,
		Balance: jinanet.BalanceP2C, P2CDefaultRTT: 7 * time.Millisecond, P2CDecay: 8 * time.Second,
		HedgeDelay: 9 * time.Millisecond, ConnectTimeout: 1234 * time.Millisecond, TCPUserTimeout: 2345 * time.Millisecond,
		KeepaliveInterval: 11 * time.Second, KeepaliveTimeout: 3456 * time.Millisecond,
		ProbeAfter: 150 * time.Millisecond, ProbeTimeout: 250 * time.Millisecond,
		FailOverUnanswered: true, EjectOnDeadline: true, PerAttemptTimeout: 450 * time.Millisecond,
		RetryBudgetMaxTokens: 1000, RetryBudgetTokenRatio: 0.25,
	})
	every := jinanet.CPoolOptions{
		StructSize: jinanet.CPoolOptionsSize, MaxAttempts: 7, DefaultTimeout: 2 * time.Millisecond, FailOver: true,
		InitialBackoff: 11 * time.Millisecond, BackoffMultiplier: 1.5, MaxBackoff: 222 * time.Millisecond,
		EjectAfterFailures: 4, BaseEjection: 33 * time.Millisecond, MaxEjection: 444 * time.Millisecond,
		MaxEjectionPercent: 100, MaxInFlightPerReplica: 5, MaxQueue: 0, MaxHedges: 2,
		TLS: true, RootCertificatesLen: 3, Metrics: true,
		Balance: uint32(jinanet.BalanceP2C), P2CDefaultRTT: 7 * time.Millisecond, P2CDecay: 8 * time.Second,
		HedgeDelay: 9 * time.Millisecond, ConnectTimeout: 1234 * time.Millisecond, TCPUserTimeout: 2345 * time.Millisecond,
		KeepaliveInterval: 11 * time.Second, KeepaliveTimeout: 3456 * time.Millisecond,
		ProbeAfter: 150 * time.Millisecond, ProbeTimeout: 250 * time.Millisecond,
		FailOverUnanswered: true, EjectOnDeadline: true, PerAttemptTimeout: 450 * time.Millisecond,
		RetryBudgetMaxTokens: 1000, RetryBudgetTokenRatio: 0.25, DNSRefresh: 30 * time.Second,
	}
	if err != nil || c != every {
		t.Fatalf("every field as C:\n%+v (%v)\nwant\n%+v", c, err, every)
	}

	for name, o := range map[string]jinanet.PoolOptions{
		"negative InitialBackoff":        {InitialBackoff: -time.Millisecond},
		"negative MaxBackoff":            {MaxBackoff: -time.Millisecond},
		"negative BaseEjection":          {BaseEjection: -time.Millisecond},
		"negative MaxEjection":           {MaxEjection: -time.Millisecond},
		"BackoffMultiplier below 1":      {BackoffMultiplier: 0.5},
		"negative BackoffMultiplier":     {BackoffMultiplier: -2},
		"NaN BackoffMultiplier":          {BackoffMultiplier: math.NaN()},
		"infinite BackoffMultiplier":     {BackoffMultiplier: math.Inf(1)},
		"negative EjectAfterFailures":    {EjectAfterFailures: -1},
		"MaxEjectionPercent above 100":   {MaxEjectionPercent: 101},
		"negative MaxEjectionPercent":    {MaxEjectionPercent: -1},
		"EjectAfterFailures over 2^32-1": {EjectAfterFailures: int(^uint32(0)) + 1},
	} {
		o := o
		if _, err := jinanet.NewPool(&o); !errors.Is(err, jinanet.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// ejections is the number of ejections of address in deployment d, shard 0.
func ejections(t *testing.T, p *jinanet.Pool, address string) int64 {
	t.Helper()
	text, err := p.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	return metricValue(t, text, fmt.Sprintf(`jina_net_ejections_total{deployment="d",shard="0",address=%q}`, address))
}

// sendAll makes n sends to d (pause between them) and returns how many failed and the replicas that
// answered the others.
func sendAll(t *testing.T, p *jinanet.Pool, n int, pause time.Duration) (failed int, answered map[string]int, last error) {
	t.Helper()
	answered = map[string]int{}
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rs, err := p.Send(ctx, data(fmt.Sprintf("r%d", i)), jinanet.Deployment("d"))
		cancel()
		if err != nil {
			failed++
			last = err
		} else {
			answered[rs[0].Trailer.Get("replica")]++
		}
		time.Sleep(pause)
	}
	return failed, answered, last
}

// With ResilientPoolOptions a dead replica among live ones costs no failed send (fail-over), and it
// is ejected; with jina's defaults the same replicas fail the sends round robin gives the dead one.
func TestResilientPoolDeadReplicaCostsNoFailedSend(t *testing.T) {
	s := servers(t, "echo=a", "echo=b")
	dead := deadAddress(t)
	setup := func(opts *jinanet.PoolOptions) *jinanet.Pool {
		p := newPool(t, opts)
		add(t, p, jinanet.Deployment("d"), s["a"])
		add(t, p, jinanet.Deployment("d"), dead)
		add(t, p, jinanet.Deployment("d"), s["b"])
		return p
	}

	plain := setup(&jinanet.PoolOptions{Metrics: true})
	failed, _, last := sendAll(t, plain, 9, 0)
	var e *jinanet.Error
	if failed != 3 || !errors.Is(last, jinanet.ErrRPC) || !errors.As(last, &e) || e.Address != dead || e.GRPCCode != 14 {
		t.Fatalf("default options: %d of 9 sends failed (want the 3 the dead replica got), last %v", failed, last)
	}
	if n := ejections(t, plain, dead); n != 0 {
		t.Fatalf("the default options ejected %d times", n)
	}

	opts := jinanet.ResilientPoolOptions()
	opts.Metrics = true
	p := setup(opts)
	failed, answered, last := sendAll(t, p, 30, 5*time.Millisecond)
	if failed != 0 || answered["a"]+answered["b"] != 30 || answered["a"] == 0 || answered["b"] == 0 {
		t.Fatalf("resilient: %d sends failed (last %v), answered by %v", failed, last, answered)
	}
	if n := ejections(t, p, dead); n < 1 {
		t.Fatalf("the dead replica was not ejected (%d)", n)
	}
	// ejected, it is tried only when its ejection ran out (100 ms, then 200, 400, 800): fewer times
	// than the 10 turns round robin gives it in 30 sends
	if n := requestsTo(t, p, "d", "0", dead); n < 1 || n >= 10 {
		t.Fatalf("the dead replica was called %d times in 30 sends", n)
	}
}

// The ejection settings: EjectAfterFailures 0 (the preset without ejection), BaseEjection and
// MaxEjection (how long the dead replica is skipped), MaxEjectionPercent (how many may be ejected).
func TestEjectionSettings(t *testing.T) {
	s := servers(t, "echo=a")
	dead := deadAddress(t)
	run := func(name string, change func(*jinanet.PoolOptions), sends int, pause time.Duration) (calls, ejected int64) {
		t.Helper()
		opts := jinanet.ResilientPoolOptions()
		opts.Metrics = true
		change(opts)
		p := newPool(t, opts)
		add(t, p, jinanet.Deployment("d"), dead)
		add(t, p, jinanet.Deployment("d"), s["a"])
		if failed, answered, last := sendAll(t, p, sends, pause); failed != 0 || answered["a"] != sends {
			t.Fatalf("%s: %d sends failed (last %v), answered by %v", name, failed, last, answered)
		}
		return requestsTo(t, p, "d", "0", dead), ejections(t, p, dead)
	}

	// no ejection: fail-over alone; round robin gives the dead replica every other send
	if calls, ejected := run("no ejection", func(o *jinanet.PoolOptions) { o.EjectAfterFailures = 0 }, 10, 0); ejected != 0 || calls < 5 {
		t.Fatalf("without ejection: %d ejections, %d calls to the dead replica", ejected, calls)
	}
	// a long ejection: the dead replica is called once
	long := func(o *jinanet.PoolOptions) { o.BaseEjection, o.MaxEjection = 20*time.Second, 20*time.Second }
	if calls, ejected := run("long ejection", long, 10, 0); ejected != 1 || calls != 1 {
		t.Fatalf("with a 20 s ejection: %d ejections, %d calls to the dead replica", ejected, calls)
	}
	// a short one: it is probed again (and ejected again) after each
	short := func(o *jinanet.PoolOptions) { o.BaseEjection, o.MaxEjection = 5*time.Millisecond, 5*time.Millisecond }
	if calls, ejected := run("short ejection", short, 10, 30*time.Millisecond); ejected < 3 || calls < 3 {
		t.Fatalf("with a 5 ms ejection: %d ejections, %d calls to the dead replica", ejected, calls)
	}
	// at most 49 % of two replicas: none may be ejected
	if calls, ejected := run("49 %", func(o *jinanet.PoolOptions) { o.MaxEjectionPercent = 49 }, 10, 0); ejected != 0 || calls < 5 {
		t.Fatalf("with MaxEjectionPercent 49: %d ejections, %d calls to the dead replica", ejected, calls)
	}
}

// Backoff spaces the retries to a replica tried again: full jitter, each wait in [0, cap], the cap
// growing by BackoffMultiplier up to MaxBackoff.
func TestBackoff(t *testing.T) {
	s := servers(t, "unavailable=u")
	p := newPool(t, &jinanet.PoolOptions{
		MaxAttempts: 6, FailOver: true, Metrics: true,
		InitialBackoff: 250 * time.Millisecond, BackoffMultiplier: 2, MaxBackoff: 500 * time.Millisecond,
	})
	add(t, p, jinanet.Deployment("d"), s["u"])
	start := time.Now()
	_, err := p.Send(context.Background(), data("backoff"), jinanet.Deployment("d"))
	took := time.Since(start)
	if !errors.Is(err, jinanet.ErrRPC) {
		t.Fatalf("send to an unavailable replica: %v", err)
	}
	if n := requestsTo(t, p, "d", "0", s["u"]); n != 6 {
		t.Fatalf("%d attempts, want 6", n)
	}
	// five waits with caps 250, 500, 500, 500, 500 ms: at most 2.25 s; under 100 ms with odds of
	// about 5e-6 (the five attempts alone take a few ms)
	if took < 100*time.Millisecond || took > 2250*time.Millisecond+1500*time.Millisecond {
		t.Fatalf("six attempts with backoff took %v", took)
	}
}
