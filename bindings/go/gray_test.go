package jinanet_test

// Gray failures (C ABI 0.2.1): replicas that are up but do not answer, and the options that deal
// with them (ConnectTimeout, TCPUserTimeout, keepalive, liveness probes, FailOverUnanswered,
// EjectOnDeadline, PerAttemptTimeout, the retry budget), against the real test server. Every test
// runs in the suite's pool mode (test.sh runs the suite caller-driven and with LibraryThreads).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// The C options NewPool builds: Disabled turns the default-on safeguards off, the resilient preset
// is exactly what jina_net_pool_options_init_resilient writes, and values are validated as the C
// side does.
func TestLivenessOptionsAsC(t *testing.T) {
	asC := func(o *jinanet.PoolOptions) jinanet.CPoolOptions {
		t.Helper()
		c, err := jinanet.PoolOptionsAsC(o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		return c
	}
	// the zero value and the preset are the library's own settings (NewPool's pools are caller-driven)
	defaults := jinanet.InitPoolOptionsAsC(false)
	defaults.CallerDriven = true
	if c := asC(&jinanet.PoolOptions{}); c != defaults {
		t.Fatalf("zero PoolOptions as C:\n%+v\nwant what jina_net_pool_options_init writes:\n%+v", c, defaults)
	}
	resilient := jinanet.InitPoolOptionsAsC(true)
	resilient.CallerDriven = true
	if c := asC(jinanet.ResilientPoolOptions()); c != resilient {
		t.Fatalf("ResilientPoolOptions as C:\n%+v\nwant what jina_net_pool_options_init_resilient writes:\n%+v", c, resilient)
	}
	if resilient.ProbeAfter != 500*time.Millisecond || resilient.ProbeTimeout != time.Second ||
		!resilient.EjectOnDeadline || resilient.RetryBudgetMaxTokens != 10 || resilient.RetryBudgetTokenRatio != 0.1 {
		t.Fatalf("the library's resilient settings changed: %+v", resilient)
	}

	// Disabled: no connect timeout, the system's TCP_USER_TIMEOUT, no keepalive, no probes
	off := defaults
	off.ConnectTimeout, off.TCPUserTimeout, off.KeepaliveInterval, off.ProbeAfter = 0, 0, 0, 0
	if c := asC(&jinanet.PoolOptions{ConnectTimeout: jinanet.Disabled, TCPUserTimeout: jinanet.Disabled,
		KeepaliveInterval: jinanet.Disabled, ProbeAfter: jinanet.Disabled}); c != off {
		t.Fatalf("Disabled as C:\n%+v\nwant\n%+v", c, off)
	}
	noProbes := jinanet.ResilientPoolOptions()
	noProbes.ProbeAfter = jinanet.Disabled
	want := resilient
	want.ProbeAfter = 0
	if c := asC(noProbes); c != want {
		t.Fatalf("the preset without probes as C:\n%+v\nwant\n%+v", c, want)
	}
	// a field of the preset set to 0 is the plain default: RetryBudgetMaxTokens 0 = no budget,
	// ProbeAfter/ProbeTimeout 0 = the default probes
	plain := jinanet.ResilientPoolOptions()
	plain.RetryBudgetMaxTokens, plain.ProbeAfter, plain.ProbeTimeout, plain.EjectOnDeadline = 0, 0, 0, false
	want = resilient
	want.RetryBudgetMaxTokens, want.ProbeAfter, want.ProbeTimeout, want.EjectOnDeadline = 0, 2*time.Second, 5*time.Second, false
	if c := asC(plain); c != want {
		t.Fatalf("the preset with plain liveness settings as C:\n%+v\nwant\n%+v", c, want)
	}
	// durations are rounded up to whole milliseconds (1ns is 1ms, not "off"); 10s is the smallest
	// keepalive interval
	c := asC(&jinanet.PoolOptions{ConnectTimeout: time.Nanosecond, ProbeAfter: 1500 * time.Microsecond,
		ProbeTimeout: time.Microsecond, PerAttemptTimeout: time.Nanosecond, KeepaliveInterval: 10 * time.Second,
		KeepaliveTimeout: time.Nanosecond, TCPUserTimeout: 999 * time.Microsecond})
	if c.ConnectTimeout != time.Millisecond || c.ProbeAfter != 2*time.Millisecond || c.ProbeTimeout != time.Millisecond ||
		c.PerAttemptTimeout != time.Millisecond || c.KeepaliveInterval != 10*time.Second ||
		c.KeepaliveTimeout != time.Millisecond || c.TCPUserTimeout != time.Millisecond {
		t.Fatalf("rounding: %+v", c)
	}
	// the library takes what NewPool builds
	for _, o := range []jinanet.PoolOptions{
		{KeepaliveInterval: 10 * time.Second, KeepaliveTimeout: time.Nanosecond, RetryBudgetMaxTokens: 1000,
			RetryBudgetTokenRatio: 1e-9, ProbeAfter: time.Nanosecond, ProbeTimeout: time.Nanosecond},
		{ConnectTimeout: jinanet.Disabled, TCPUserTimeout: jinanet.Disabled, KeepaliveInterval: jinanet.Disabled,
			ProbeAfter: jinanet.Disabled, FailOverUnanswered: true, EjectOnDeadline: true, PerAttemptTimeout: time.Hour},
	} {
		o := o
		p, err := jinanet.NewPool(testOptions(&o))
		if err != nil {
			t.Fatalf("NewPool(%+v): %v", o, err)
		}
		_ = p.Close()
	}

	for name, o := range map[string]jinanet.PoolOptions{
		"KeepaliveInterval below 10s":       {KeepaliveInterval: 9999 * time.Millisecond},
		"KeepaliveInterval of 1ns":          {KeepaliveInterval: time.Nanosecond},
		"negative KeepaliveInterval":        {KeepaliveInterval: -time.Second},
		"negative ConnectTimeout":           {ConnectTimeout: -time.Second},
		"negative TCPUserTimeout":           {TCPUserTimeout: -2},
		"negative ProbeAfter":               {ProbeAfter: -time.Millisecond},
		"negative ProbeTimeout":             {ProbeTimeout: -time.Millisecond},
		"Disabled ProbeTimeout":             {ProbeTimeout: jinanet.Disabled},
		"Disabled KeepaliveTimeout":         {KeepaliveTimeout: jinanet.Disabled},
		"Disabled PerAttemptTimeout":        {PerAttemptTimeout: jinanet.Disabled},
		"negative RetryBudgetMaxTokens":     {RetryBudgetMaxTokens: -1},
		"RetryBudgetMaxTokens above 1000":   {RetryBudgetMaxTokens: 1001},
		"negative RetryBudgetTokenRatio":    {RetryBudgetMaxTokens: 10, RetryBudgetTokenRatio: -0.1},
		"NaN RetryBudgetTokenRatio":         {RetryBudgetMaxTokens: 10, RetryBudgetTokenRatio: math.NaN()},
		"infinite RetryBudgetTokenRatio":    {RetryBudgetMaxTokens: 10, RetryBudgetTokenRatio: math.Inf(1)},
		"ratio without a budget, negative":  {RetryBudgetTokenRatio: -1},
		"preset with a negative ProbeAfter": func() jinanet.PoolOptions { o := *jinanet.ResilientPoolOptions(); o.ProbeAfter = -2; return o }(),
	} {
		o := o
		if p, err := jinanet.NewPool(&o); !errors.Is(err, jinanet.ErrInvalidArgument) {
			if p != nil {
				_ = p.Close()
			}
			t.Errorf("%s: %v", name, err)
		}
	}
	// the message names the field
	_, err := jinanet.NewPool(&jinanet.PoolOptions{KeepaliveInterval: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "KeepaliveInterval") || !strings.Contains(err.Error(), "10s") {
		t.Fatalf("a 5s keepalive interval: %v", err)
	}
}

// rpcError is err as an *Error of a failed target (ErrRPC) with the gRPC code given.
func rpcError(t *testing.T, what string, err error, grpcCode int) *jinanet.Error {
	t.Helper()
	var e *jinanet.Error
	if !errors.Is(err, jinanet.ErrRPC) || !errors.As(err, &e) || e.GRPCCode != grpcCode {
		t.Fatalf("%s: %v, want ErrRPC with gRPC code %d", what, err, grpcCode)
	}
	return e
}

// replicaOf is the name of the test server that answered a send (its "replica" trailer).
func replicaOf(rs []*jinanet.Response) string {
	if len(rs) != 1 {
		return fmt.Sprintf("%d responses", len(rs))
	}
	return rs[0].Trailer.Get("replica")
}

// sendTo sends one data request to deployment d (idempotent or not) with a deadline.
func sendTo(p *jinanet.Pool, id string, idempotent bool, timeout time.Duration) ([]*jinanet.Response, error, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	rs, err := p.SendWithOptions(ctx, data(id), jinanet.Deployment("d"), jinanet.SendOptions{Idempotent: idempotent})
	return rs, err, time.Since(start)
}

// Liveness probes end a call pending on a replica that never answers (hostile:silent: its HTTP/2
// connection lives and acknowledges PINGs, as a hung runtime's does) with UNAVAILABLE naming it;
// sends avoid it from then on. A send not marked idempotent fails (it may have run there), unless
// FailOverUnanswered; an idempotent one goes on to the live replica.
func TestProbesEndCallsPendingOnASilentReplica(t *testing.T) {
	s := servers(t, "hostile:silent=q", "echo=a")
	probes := func(change func(*jinanet.PoolOptions)) *jinanet.Pool {
		o := &jinanet.PoolOptions{ProbeAfter: 100 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond, Metrics: true}
		if change != nil {
			change(o)
		}
		p := newPool(t, o)
		add(t, p, jinanet.Deployment("d"), s["q"]) // round robin starts here
		add(t, p, jinanet.Deployment("d"), s["a"])
		return p
	}

	p := probes(nil)
	_, err, took := sendTo(p, "stuck", false, 20*time.Second)
	e := rpcError(t, "a send pending on the silent replica", err, 14)
	if e.Address != s["q"] || !strings.Contains(err.Error(), "stopped answering") || !strings.Contains(err.Error(), s["q"]) {
		t.Fatalf("the error does not name the replica that stopped answering (%s): %v (address %q)", s["q"], err, e.Address)
	}
	// 100ms without an answer, then a probe unanswered for 200ms: far below the default 2s + 5s
	if took > 3*time.Second {
		t.Fatalf("the silent replica was given up on after %v", took)
	}
	if n := requestsTo(t, p, "d", "0", s["q"]); n != 1 {
		t.Fatalf("%d calls to the silent replica, want 1 (a send not marked idempotent is not run again)", n)
	}
	// sends avoid it now: every one goes to the live replica, at once
	for i := 0; i < 4; i++ {
		rs, err, took := sendTo(p, fmt.Sprintf("after%d", i), false, 10*time.Second)
		if err != nil || replicaOf(rs) != "a" || took > 2*time.Second {
			t.Fatalf("send %d after the replica stopped answering: %v, answered by %s after %v", i, err, replicaOf(rs), took)
		}
	}

	// an idempotent send goes on to the live replica
	p = probes(nil)
	rs, err, took := sendTo(p, "idempotent", true, 20*time.Second)
	if err != nil || replicaOf(rs) != "a" || took > 3*time.Second {
		t.Fatalf("idempotent send: %v, answered by %s after %v", err, replicaOf(rs), took)
	}
	if n := requestsTo(t, p, "d", "0", s["q"]); n != 1 {
		t.Fatalf("%d calls to the silent replica, want 1", n)
	}

	// FailOverUnanswered: so does a send not marked idempotent
	p = probes(func(o *jinanet.PoolOptions) { o.FailOverUnanswered = true })
	rs, err, took = sendTo(p, "fail-over", false, 20*time.Second)
	if err != nil || replicaOf(rs) != "a" || took > 3*time.Second {
		t.Fatalf("FailOverUnanswered: %v, answered by %s after %v", err, replicaOf(rs), took)
	}
	if n := requestsTo(t, p, "d", "0", s["q"]); n != 1 {
		t.Fatalf("FailOverUnanswered: %d calls to the silent replica, want 1", n)
	}
}

// A per-attempt timeout moves an idempotent send from a slow replica (slow:3000 answers after 3s)
// to an echo one well within the send's deadline; a send not marked idempotent fails with the
// attempt's DEADLINE_EXCEEDED instead (it may have run there), unless FailOverUnanswered.
func TestPerAttemptTimeout(t *testing.T) {
	s := servers(t, "slow:3000=s", "echo=a")
	pool := func(o jinanet.PoolOptions) *jinanet.Pool {
		o.Metrics = true
		p := newPool(t, &o)
		add(t, p, jinanet.Deployment("d"), s["s"]) // round robin starts here
		add(t, p, jinanet.Deployment("d"), s["a"])
		return p
	}
	attempt := jinanet.PoolOptions{PerAttemptTimeout: 200 * time.Millisecond}

	// without it an idempotent send waits on the slow replica until its deadline
	_, err, _ := sendTo(pool(jinanet.PoolOptions{}), "no-attempt-timeout", true, time.Second)
	if !errors.Is(err, jinanet.ErrDeadlineExceeded) {
		t.Fatalf("idempotent send without an attempt timeout: %v", err)
	}

	p := pool(attempt)
	rs, err, took := sendTo(p, "idempotent", true, 2500*time.Millisecond)
	if err != nil || replicaOf(rs) != "a" || took > 1500*time.Millisecond {
		t.Fatalf("idempotent send with a 200ms attempt timeout: %v, answered by %s after %v", err, replicaOf(rs), took)
	}
	if n := requestsTo(t, p, "d", "0", s["s"]); n != 1 {
		t.Fatalf("%d calls to the slow replica, want 1", n)
	}

	_, err, took = sendTo(pool(attempt), "plain", false, 2500*time.Millisecond)
	var e *jinanet.Error
	if !errors.Is(err, jinanet.ErrDeadlineExceeded) || !errors.As(err, &e) || e.GRPCCode != 4 || e.Address != s["s"] ||
		!strings.Contains(e.Message, "attempt timeout") {
		t.Fatalf("a send not marked idempotent: %v, want the attempt's DEADLINE_EXCEEDED from %s", err, s["s"])
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("the attempt timeout ended the send after %v", took)
	}

	withFailOver := attempt
	withFailOver.FailOverUnanswered = true
	rs, err, took = sendTo(pool(withFailOver), "fail-over", false, 2500*time.Millisecond)
	if err != nil || replicaOf(rs) != "a" || took > 1500*time.Millisecond {
		t.Fatalf("FailOverUnanswered with an attempt timeout: %v, answered by %s after %v", err, replicaOf(rs), took)
	}
}

// EjectOnDeadline counts an attempt that timed out toward ejection: the slow replica is skipped
// afterwards. Without it only UNAVAILABLE counts, and round robin sends to it again.
func TestEjectOnDeadline(t *testing.T) {
	s := servers(t, "slow:3000=s", "echo=a")
	run := func(ejectOnDeadline bool) (ejected int64, answered map[string]int, failed int) {
		p := newPool(t, &jinanet.PoolOptions{
			PerAttemptTimeout: 200 * time.Millisecond, EjectAfterFailures: 1, EjectOnDeadline: ejectOnDeadline,
			BaseEjection: 20 * time.Second, MaxEjection: 20 * time.Second, Metrics: true,
		})
		add(t, p, jinanet.Deployment("d"), s["s"])
		add(t, p, jinanet.Deployment("d"), s["a"])
		if rs, err, _ := sendTo(p, "idempotent", true, 2500*time.Millisecond); err != nil || replicaOf(rs) != "a" {
			t.Fatalf("idempotent send: %v, answered by %s", err, replicaOf(rs))
		}
		answered = map[string]int{}
		for i := 0; i < 4; i++ {
			rs, err, _ := sendTo(p, fmt.Sprintf("after%d", i), false, 2500*time.Millisecond)
			if err != nil {
				rpcErr := errors.Is(err, jinanet.ErrDeadlineExceeded)
				if !rpcErr {
					t.Fatalf("send %d: %v", i, err)
				}
				failed++
				continue
			}
			answered[replicaOf(rs)]++
		}
		return ejections(t, p, s["s"]), answered, failed
	}
	if ejected, answered, failed := run(true); ejected != 1 || failed != 0 || answered["a"] != 4 {
		t.Fatalf("EjectOnDeadline: %d ejections of the slow replica, %d sends failed, answered by %v", ejected, failed, answered)
	}
	if ejected, answered, failed := run(false); ejected != 0 || failed < 1 || answered["a"] < 1 {
		t.Fatalf("without EjectOnDeadline: %d ejections of the slow replica, %d sends failed, answered by %v", ejected, failed, answered)
	}
}

// attemptsOf is the number of attempts an error message reports ("(after N attempts)"; 1 without).
func attemptsOf(t *testing.T, err error) int {
	t.Helper()
	msg := err.Error()
	i := strings.Index(msg, "(after ")
	if i < 0 {
		return 1
	}
	var n int
	if _, err := fmt.Sscanf(msg[i:], "(after %d attempts)", &n); err != nil {
		t.Fatalf("attempts in %q: %v", msg, err)
	}
	return n
}

// The retry budget stops a brown-out of every replica (three `unavailable` ones) from being
// multiplied by fail-over: once half the budget's tokens are spent, sends make one attempt each.
func TestRetryBudgetStopsRetrying(t *testing.T) {
	s := servers(t, "unavailable=u1", "unavailable=u2", "unavailable=u3")
	storm := func(budget int) (calls int64, attempts []int) {
		opts := jinanet.ResilientPoolOptions() // fail-over to every replica, a budget of 10 tokens
		opts.Metrics = true
		opts.RetryBudgetMaxTokens = budget
		p := newPool(t, opts)
		for _, u := range []string{"u1", "u2", "u3"} {
			add(t, p, jinanet.Deployment("d"), s[u])
		}
		for i := 0; i < 40; i++ {
			_, err, _ := sendTo(p, fmt.Sprintf("b%d", i), false, 10*time.Second)
			rpcError(t, fmt.Sprintf("send %d", i), err, 14)
			attempts = append(attempts, attemptsOf(t, err))
		}
		for _, u := range []string{"u1", "u2", "u3"} {
			calls += requestsTo(t, p, "d", "0", s[u])
		}
		return calls, attempts
	}
	sum := func(a []int) (n int64) {
		for _, v := range a {
			n += int64(v)
		}
		return n
	}

	// without a budget every send tries every replica
	calls, attempts := storm(0)
	for i, n := range attempts {
		if n != 3 {
			t.Fatalf("without a budget send %d made %d attempts, want 3 (%v)", i, n, attempts)
		}
	}
	if calls != 120 {
		t.Fatalf("without a budget: %d calls, want 120", calls)
	}
	// the preset's budget (10 tokens): 5 failed attempts leave half of it, then no retry starts
	calls, attempts = storm(jinanet.ResilientPoolOptions().RetryBudgetMaxTokens)
	if calls != sum(attempts) || calls > 5*3+35 {
		t.Fatalf("with a budget: %d calls (attempts per send %v)", calls, attempts)
	}
	for i, n := range attempts[10:] {
		if n != 1 {
			t.Fatalf("with a budget send %d made %d attempts, want 1 (%v)", 10+i, n, attempts)
		}
	}
}

// RetryBudgetTokenRatio is what a successful send gives back to the budget. One replica
// unavailable, one answering, retries in place (jina's policy): round robin starts every other send
// at the unavailable replica, where it fails for good after 3 attempts and takes a token; the other
// sends succeed. With the default ratio (0.1) the successes do not make up for the failures: the
// budget falls to half and the failing sends stop retrying (1 attempt). With a ratio of 1 every
// token is given back and they keep their 3 attempts.
func TestRetryBudgetTokenRatio(t *testing.T) {
	s := servers(t, "unavailable=u", "echo=a")
	run := func(ratio float64) (attempts []int) {
		p := newPool(t, &jinanet.PoolOptions{RetryBudgetMaxTokens: 10, RetryBudgetTokenRatio: ratio})
		add(t, p, jinanet.Deployment("d"), s["u"])
		add(t, p, jinanet.Deployment("d"), s["a"])
		for i := 0; i < 30; i++ {
			rs, err, _ := sendTo(p, fmt.Sprintf("r%d", i), false, 10*time.Second)
			if err != nil {
				rpcError(t, fmt.Sprintf("send %d", i), err, 14)
				attempts = append(attempts, attemptsOf(t, err))
			} else if replicaOf(rs) != "a" {
				t.Fatalf("send %d answered by %s", i, replicaOf(rs))
			}
		}
		return attempts
	}
	count := func(a []int, n int) (c int) {
		for _, v := range a {
			if v == n {
				c++
			}
		}
		return c
	}
	if a := run(0); len(a) != 15 || a[0] != 3 || count(a, 1) == 0 || count(a, 1)+count(a, 3) != 15 {
		t.Fatalf("default token ratio: attempts of the failed sends %v, want 3 until the budget is half spent, then 1", a)
	}
	if a := run(1); len(a) != 15 || count(a, 3) != 15 {
		t.Fatalf("token ratio 1: attempts of the failed sends %v, want 3 each", a)
	}
}

// fullBacklog is a local address whose listener never accepts and whose accept queue is full: the
// kernel drops further SYNs, so a connection attempt hangs (a host that does not answer).
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			break // the queue is full
		}
		t.Cleanup(func() { _ = c.Close() })
		if i == 8 {
			t.Skip("the kernel does not drop connections to a full accept queue")
		}
	}
	return addr
}

// tcpUserTimeouts is the TCP_USER_TIMEOUT (ms) of each of this process's TCP sockets connected
// to addr (the library's connections: they are file descriptors of this process).
func tcpUserTimeouts(t *testing.T, addr string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := syscall.Getpeername(fd)
		in4, ok := sa.(*syscall.SockaddrInet4)
		if err != nil || !ok || net.JoinHostPort(net.IP(in4.Addr[:]).String(), strconv.Itoa(in4.Port)) != addr {
			continue
		}
		const tcpUserTimeout = 18 // TCP_USER_TIMEOUT, <netinet/tcp.h>
		v, err := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, tcpUserTimeout)
		if err != nil {
			t.Fatalf("getsockopt(TCP_USER_TIMEOUT) of fd %d: %v", fd, err)
		}
		out = append(out, v)
	}
	return out
}

// freeze stops process pid with SIGSTOP and waits until every thread of it is stopped (the signal
// is delivered asynchronously: a thread running on another CPU may still answer a request).
func freeze(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	tasks := fmt.Sprintf("/proc/%d/task", pid)
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		entries, err := os.ReadDir(tasks)
		if err != nil {
			t.Fatalf("threads of the frozen process: %v", err)
		}
		stopped := 0
		for _, e := range entries {
			stat, err := os.ReadFile(tasks + "/" + e.Name() + "/stat")
			// the state follows the command name in parentheses: "pid (comm) T ..."
			if i := strings.LastIndexByte(string(stat), ')'); err == nil && i >= 0 && i+2 < len(stat) &&
				(stat[i+2] == 'T' || stat[i+2] == 't') {
				stopped++
			}
		}
		if stopped == len(entries) {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d of %d threads of process %d stopped 5s after SIGSTOP", stopped, len(entries), pid)
		}
	}
}

// The connection safeguards that are on by default, each with its effect, and Disabled. The
// subtests run in parallel (the keepalive one takes about 11s).
func TestConnectionSafeguards(t *testing.T) {
	t.Run("connect timeout", func(t *testing.T) {
		t.Parallel()
		addr := fullBacklog(t)
		type outcome struct {
			err  error
			took time.Duration
		}
		try := func(connectTimeout, deadline time.Duration) chan outcome {
			p := newPool(t, &jinanet.PoolOptions{ConnectTimeout: connectTimeout, MaxAttempts: 1})
			add(t, p, jinanet.Deployment("d"), addr)
			done := make(chan outcome, 1)
			go func() {
				_, err, took := sendTo(p, "connect", false, deadline)
				done <- outcome{err, took}
			}()
			return done
		}
		short, off := try(300*time.Millisecond, 10*time.Second), try(jinanet.Disabled, 1500*time.Millisecond)
		o := <-short
		e := rpcError(t, "a send to a host that does not answer, with a 300ms connect timeout", o.err, 14)
		if !strings.Contains(e.Message, "connect") || o.took > 3*time.Second {
			t.Fatalf("connect timeout: %v after %v", o.err, o.took)
		}
		// no connect timeout: the send waits for the connection until its own deadline
		if o := <-off; !errors.Is(o.err, jinanet.ErrDeadlineExceeded) || o.took < 1400*time.Millisecond {
			t.Fatalf("ConnectTimeout Disabled: %v after %v, want the send's deadline (1.5s)", o.err, o.took)
		}
	})

	t.Run("TCP_USER_TIMEOUT", func(t *testing.T) {
		t.Parallel()
		s := servers(t, "echo=a", "echo=b", "echo=c")
		for _, c := range []struct {
			server  string
			timeout time.Duration
			want    int
		}{{"a", 2345 * time.Millisecond, 2345}, {"b", jinanet.Disabled, 0}, {"c", 0, 20000}} {
			p := newPool(t, &jinanet.PoolOptions{TCPUserTimeout: c.timeout})
			add(t, p, jinanet.Deployment("d"), s[c.server])
			if _, err, _ := sendTo(p, "connected", false, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			got := tcpUserTimeouts(t, s[c.server])
			if len(got) == 0 {
				t.Fatalf("no connection to %s found among this process's sockets", s[c.server])
			}
			for _, v := range got {
				if v != c.want {
					t.Fatalf("TCPUserTimeout %v: the connection's TCP_USER_TIMEOUT is %d ms, want %d (all: %v)", c.timeout, v, c.want, got)
				}
			}
		}
	})

	t.Run("keepalive", func(t *testing.T) {
		t.Parallel()
		// A frozen process (SIGSTOP): its kernel still accepts and acknowledges TCP, but nothing
		// answers the HTTP/2 PINGs. Probes are off, so only the keepalive can notice.
		srv, err := startTestServers("echo=f")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.stop)
		t.Cleanup(func() { _ = srv.cmd.Process.Signal(syscall.SIGCONT) }) // runs first
		p := newPool(t, &jinanet.PoolOptions{
			KeepaliveInterval: 10 * time.Second, KeepaliveTimeout: 500 * time.Millisecond,
			ProbeAfter: jinanet.Disabled, MaxAttempts: 1,
		})
		add(t, p, jinanet.Deployment("d"), srv.addr["f"])
		if _, err, _ := sendTo(p, "warm", false, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		freeze(t, srv.cmd.Process.Pid)
		_, err, took := sendTo(p, "frozen", false, 30*time.Second)
		e := rpcError(t, "a send pending on a frozen replica, with keepalive", err, 14)
		if !strings.Contains(e.Message, "keep-alive") || took > 20*time.Second {
			t.Fatalf("keepalive: %v after %v", err, took)
		}
	})

	t.Run("default probes and Disabled", func(t *testing.T) {
		t.Parallel()
		s := servers(t, "hostile:silent=q")
		type outcome struct {
			err  error
			took time.Duration
		}
		try := func(probeAfter time.Duration) chan outcome {
			p := newPool(t, &jinanet.PoolOptions{ProbeAfter: probeAfter, ProbeTimeout: 200 * time.Millisecond})
			add(t, p, jinanet.Deployment("d"), s["q"])
			done := make(chan outcome, 1)
			go func() {
				_, err, took := sendTo(p, "stuck", false, 4*time.Second)
				done <- outcome{err, took}
			}()
			return done
		}
		byDefault, off := try(0), try(jinanet.Disabled)
		// the default ProbeAfter, 2s: given up on after about 2.2s, before the 4s deadline
		o := <-byDefault
		rpcError(t, "a send pending on a silent replica, default probes", o.err, 14)
		if !strings.Contains(o.err.Error(), "stopped answering") || o.took < 2*time.Second {
			t.Fatalf("default probes: %v after %v", o.err, o.took)
		}
		// no probes: the call waits until the send's deadline
		if o := <-off; !errors.Is(o.err, jinanet.ErrDeadlineExceeded) || o.took < 3900*time.Millisecond {
			t.Fatalf("ProbeAfter Disabled: %v after %v, want the send's deadline (4s)", o.err, o.took)
		}
	})
}
