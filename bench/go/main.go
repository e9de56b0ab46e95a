// The Go client of jina-net-bench: Pool.Send of the Go binding (bindings/go) from `inflight`
// goroutines, each sending its next request when the previous one returned (closed loop).
//
//	go-client mode=send addrs=A[,B...] polling=any|all payload=FILE inflight=N warmup_ms=W
//	          duration_ms=D max_requests=M [pool=driven|threads|polled] [send=copy|view] [cpuprofile=FILE]
//
// pool=driven (the default, as the binding's): a caller-driven Pool, run by the goroutines waiting in
// Send; pool=threads: PoolOptions.LibraryThreads, the library's runtime threads; pool=polled: the
// library's threads with PoolOptions.CallbacksInPoll (the goroutines waiting in Send poll for the
// callbacks). send=view: Pool.SendView
// (a large response body is lent to the check as a view of the library's buffer, not copied into Go
// memory) instead of Pool.Send (send=copy, the default). cpuprofile writes a
// Go CPU profile of the measured phase (time inside C shows as runtime.cgocall).
//
// Prints the same RESULT line as the other clients, plus lib=<the libjina_net.so it loaded>.
// Built by `jina-net-bench run` (go build, CGO_LDFLAGS=-L<profile dir>) and run with
// LD_LIBRARY_PATH=<profile dir>, so it uses the same library build as the C client.
package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

type measured struct {
	lat      []int64
	errors   int64
	firstErr string
	wall     time.Duration
}

func phase(pool *jinanet.Pool, req jinanet.Request, target jinanet.Target, view bool, inflight int,
	duration time.Duration, max int64, minLen, expected int) measured {
	var started int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	var total measured
	t0 := time.Now()
	deadline := t0.Add(duration)
	ctx := context.Background()
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m measured
			// check reads a send's outcome (inside SendView's function: the bodies are lent); made
			// once per goroutine, so a send allocates no closure.
			var ok bool
			var nresps int
			check := func(resps []*jinanet.Response, err error) error {
				nresps = len(resps)
				ok = err == nil && len(resps) == expected
				for _, r := range resps {
					ok = ok && r.Err == nil && len(r.Body) >= minLen
				}
				return err
			}
			for {
				if atomic.AddInt64(&started, 1) > max {
					break
				}
				t := time.Now()
				if !t.Before(deadline) {
					break
				}
				var err error
				if view {
					err = pool.SendView(ctx, req, target, check)
				} else {
					err = check(pool.Send(ctx, req, target))
				}
				lat := time.Since(t)
				if ok {
					m.lat = append(m.lat, lat.Nanoseconds())
				} else {
					m.errors++
					if m.firstErr == "" {
						m.firstErr = fmt.Sprint(err, " (", nresps, " responses)")
					}
				}
			}
			mu.Lock()
			total.lat = append(total.lat, m.lat...)
			total.errors += m.errors
			if total.firstErr == "" {
				total.firstErr = m.firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.wall = time.Since(t0)
	return total
}

func pct(sorted []int64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return float64(sorted[rank-1]) / 1e3
}

func secs(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// peakRSSKiB is VmHWM of /proc/self/status (not ru_maxrss: Linux carries the parent's peak over
// fork + exec into it).
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

// loadedLib is the path of the libjina_net.so mapped into this process.
func loadedLib() string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "?"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 6 && strings.HasSuffix(fields[5], "/libjina_net.so") {
			return fields[5]
		}
	}
	return "static-or-unknown"
}

func main() {
	args := map[string]string{}
	for _, a := range os.Args[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		}
	}
	num := func(k string) int64 {
		v, err := strconv.ParseInt(args[k], 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-client: %s must be a number\n", k)
			os.Exit(2)
		}
		return v
	}
	payload, err := os.ReadFile(args["payload"])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-client: cannot read the payload:", err)
		os.Exit(2)
	}
	all := args["polling"] == "all"
	var opts *jinanet.PoolOptions // pool=driven (default): caller-driven
	switch args["pool"] {
	case "", "driven":
	case "threads":
		opts = &jinanet.PoolOptions{LibraryThreads: true}
	case "polled":
		opts = &jinanet.PoolOptions{LibraryThreads: true, CallbacksInPoll: true}
	default:
		fmt.Fprintln(os.Stderr, "go-client: pool must be driven, threads or polled")
		os.Exit(2)
	}
	pool, err := jinanet.NewPool(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-client: NewPool:", err)
		os.Exit(1)
	}
	defer pool.Close()
	addrs := strings.Split(args["addrs"], ",")
	target := jinanet.Deployment("bench")
	expected := 1
	if all {
		for i, a := range addrs {
			if _, err := pool.AddConnection(jinanet.Deployment("bench").Shard(i), a); err != nil {
				fmt.Fprintln(os.Stderr, "go-client: AddConnection:", err)
				os.Exit(1)
			}
		}
		target = target.All()
		expected = len(addrs)
	} else if _, err := pool.AddConnection(target, addrs[0]); err != nil {
		fmt.Fprintln(os.Stderr, "go-client: AddConnection:", err)
		os.Exit(1)
	}
	var view bool
	switch args["send"] {
	case "", "copy":
	case "view":
		view = true
	default:
		fmt.Fprintln(os.Stderr, "go-client: send must be copy or view")
		os.Exit(2)
	}
	req := jinanet.NewDataRequest(payload)
	inflight := int(num("inflight"))
	if inflight < 1 {
		inflight = 1
	}
	warm := phase(pool, req, target, view, inflight, time.Duration(num("warmup_ms"))*time.Millisecond, math.MaxInt64,
		len(payload), expected)
	if warm.firstErr != "" {
		fmt.Fprintln(os.Stderr, "warm-up error:", warm.firstErr)
	}
	if f := args["cpuprofile"]; f != "" {
		out, err := os.Create(f)
		if err == nil && pprof.StartCPUProfile(out) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	m := phase(pool, req, target, view, inflight, time.Duration(num("duration_ms"))*time.Millisecond, num("max_requests"),
		len(payload), expected)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	if m.firstErr != "" {
		fmt.Fprintln(os.Stderr, "error:", m.firstErr)
	}
	sort.Slice(m.lat, func(i, j int) bool { return m.lat[i] < m.lat[j] })
	var sum float64
	for _, l := range m.lat {
		sum += float64(l)
	}
	mean := 0.0
	if len(m.lat) > 0 {
		mean = sum / float64(len(m.lat)) / 1e3
	}
	fmt.Printf("RESULT n=%d errors=%d wall_s=%.6f user_s=%.6f sys_s=%.6f maxrss_kib=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f mean_us=%.1f lib=%s\n",
		len(m.lat), m.errors, m.wall.Seconds(), secs(after.Utime)-secs(before.Utime), secs(after.Stime)-secs(before.Stime),
		peakRSSKiB(), pct(m.lat, 0.50), pct(m.lat, 0.99), pct(m.lat, 0.999), mean, loadedLib())
}
