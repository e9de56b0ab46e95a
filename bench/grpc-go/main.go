// The grpc-go client of jina-net-bench: Debian's google.golang.org/grpc (golang-google-grpc-dev,
// 1.33) on one ClientConn per address, a raw-bytes codec forced on every call (grpc.ForceCodec), and
// `inflight` goroutines each calling conn.Invoke on "/jina.JinaSingleDataRequestRPC/process_single_data"
// in a loop (closed loop), against the same echo worker and payload file as every other client.
//
//	grpc-go-client mode=send addrs=A[,B...] polling=any|all payload=FILE inflight=N warmup_ms=W
//	               duration_ms=D max_requests=M [procs=N]
//
// The payload bytes go out as they are (the codec's Marshal returns the []byte it is given), the
// response stays bytes. polling=all: one ClientConn per address (shard); a send is one call per
// shard, made from one goroutine each, and completes when all of them did. Every response is checked
// (status OK, body size >= request size). procs=N: runtime.GOMAXPROCS(N) first thing in main (the
// Go runtime's thread knob; default: GOMAXPROCS as Go sets it, one per core). Prints the RESULT line
// of the other clients.
//
// Built in GOPATH mode (GO111MODULE=off, GOPATH=...:/usr/share/gocode) against Debian's Go sources:
// the module proxy is not used. `jina-net-bench run` builds it.
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

const method = "/jina.JinaSingleDataRequestRPC/process_single_data"

// rawCodec sends a []byte as the message and receives the message as a []byte. With ForceCodec the
// content-type stays "application/grpc" (what a generated stub sends).
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

// Unmarshal keeps data: grpc-go 1.33 allocates a new buffer for every received message
// (parser.recvMsg), so the reply may alias it.
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = data
	return nil
}

func (rawCodec) Name() string { return "proto" }

type measured struct {
	lat      []int64
	errors   int64
	firstErr string
	wall     time.Duration
}

// send makes one send: one call per conn (ALL: concurrently); the error of the first failed call.
func send(ctx context.Context, conns []*grpc.ClientConn, payload []byte) error {
	check := func(conn *grpc.ClientConn) error {
		var reply []byte
		if err := conn.Invoke(ctx, method, payload, &reply); err != nil {
			return err
		}
		if len(reply) < len(payload) {
			return fmt.Errorf("response of %d bytes, expected >= %d", len(reply), len(payload))
		}
		return nil
	}
	if len(conns) == 1 {
		return check(conns[0])
	}
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c *grpc.ClientConn) {
			defer wg.Done()
			errs[i] = check(c)
		}(i, c)
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func phase(conns []*grpc.ClientConn, payload []byte, inflight int, duration time.Duration, max int64) measured {
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
			for {
				if atomic.AddInt64(&started, 1) > max {
					break
				}
				t := time.Now()
				if !t.Before(deadline) {
					break
				}
				err := send(ctx, conns, payload)
				lat := time.Since(t)
				if err == nil {
					m.lat = append(m.lat, lat.Nanoseconds())
				} else {
					m.errors++
					if m.firstErr == "" {
						m.firstErr = err.Error()
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

func main() {
	args := map[string]string{}
	for _, a := range os.Args[1:] {
		if i := strings.IndexByte(a, '='); i > 0 {
			args[a[:i]] = a[i+1:]
		}
	}
	// procs=N before anything else: no goroutine, connection or payload read yet.
	if p, ok := args["procs"]; ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "grpc-go-client: procs must be a number >= 1")
			os.Exit(2)
		}
		runtime.GOMAXPROCS(n)
	}
	num := func(k string) int64 {
		v, err := strconv.ParseInt(args[k], 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "grpc-go-client: %s must be a number\n", k)
			os.Exit(2)
		}
		return v
	}
	payload, err := os.ReadFile(args["payload"])
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-go-client: cannot read the payload:", err)
		os.Exit(2)
	}
	addrs := strings.Split(args["addrs"], ",")
	if args["polling"] != "all" {
		addrs = addrs[:1] // ANY: the one replica of shard 0
	}
	var conns []*grpc.ClientConn
	for _, a := range addrs {
		conn, err := grpc.Dial(a, grpc.WithInsecure(), grpc.WithDefaultCallOptions(
			grpc.ForceCodec(rawCodec{}),
			// jina's options: unlimited message sizes
			grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpc-go-client: Dial:", err)
			os.Exit(1)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	inflight := int(num("inflight"))
	if inflight < 1 {
		inflight = 1
	}
	warm := phase(conns, payload, inflight, time.Duration(num("warmup_ms"))*time.Millisecond, math.MaxInt64)
	if warm.firstErr != "" {
		fmt.Fprintln(os.Stderr, "warm-up error:", warm.firstErr)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	m := phase(conns, payload, inflight, time.Duration(num("duration_ms"))*time.Millisecond, num("max_requests"))
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
	fmt.Printf("RESULT n=%d errors=%d wall_s=%.6f user_s=%.6f sys_s=%.6f maxrss_kib=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f mean_us=%.1f grpc=%s gomaxprocs=%d\n",
		len(m.lat), m.errors, m.wall.Seconds(), secs(after.Utime)-secs(before.Utime), secs(after.Stime)-secs(before.Stime),
		peakRSSKiB(), pct(m.lat, 0.50), pct(m.lat, 0.99), pct(m.lat, 0.999), mean, grpc.Version, runtime.GOMAXPROCS(0))
}
