package jinanet_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// The library may point an empty buffer at address 1 (Rust's empty slices). The conversion must not
// keep such a pointer in a Go pointer-typed variable: the runtime aborts the process ("invalid
// pointer found on stack") when it copies a stack holding one. Stacks are copied when they grow
// and when the garbage collector shrinks them, so this converts such a result over and over on
// goroutines whose stacks are both grown and shrunk (deep recursions between the conversions, a
// collection running all the time).
func TestDanglingEmptyBuffersAreNeverGoPointers(t *testing.T) {
	var stop int32
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for atomic.LoadInt32(&stop) == 0 {
			runtime.GC()
		}
	}()
	var wg sync.WaitGroup
	end := time.Now().Add(time.Second)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				atDepth((i*7+g*13)%1500, func() {}) // grow the stack; the GC shrinks it again
				atDepth(i%97, func() {
					rs, err := jinanet.ConvertDanglingResult(i%2 == 0)
					if err != nil || len(rs) != 1 {
						t.Errorf("converted %+v, %v", rs, err)
						return
					}
					r := rs[0]
					if r.Body == nil || len(r.Body) != 0 || r.Trailer.Get("replica") != "w" ||
						len(r.Trailer["empty"]) != 1 || r.Trailer["empty"][0] != "" || len(r.Trailer["empty-too"]) != 1 {
						t.Errorf("response %+v", r)
					}
				})
			}
		}(g)
	}
	wg.Wait()
	atomic.StoreInt32(&stop, 1)
	<-gcDone
}

// atDepth calls f below depth small frames.
//
//go:noinline
func atDepth(depth int, f func()) int {
	if depth > 0 {
		return atDepth(depth-1, f) + 1
	}
	f()
	return 0
}
