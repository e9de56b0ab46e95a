package jinanet

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// LivePools is the number of pools created and not yet closed (explicitly or by the finalizer).
func LivePools() int64 { return atomic.LoadInt64(&livePools) }

// RegisteredSends is the number of sends registered for cancellation so far (only sends whose
// context can be cancelled are).
func RegisteredSends() int64 { return atomic.LoadInt64(&registeredSends) }

// CBufferCounts: CBuffers allocated, freed by Go (Free, or SendOwned before the library took them)
// and freed by the library (through the owned send's free function).
func CBufferCounts() (allocated, freedInGo, freedByLibrary int64) {
	return atomic.LoadInt64(&cBuffersAllocated), atomic.LoadInt64(&cBuffersFreedInGo), int64(ownedFreedByLibrary())
}

// ConvertDanglingResult converts a send result whose empty buffers have dangling pointers.
func ConvertDanglingResult(cached bool) ([]*Response, error) { return convertDanglingResult(cached) }

// PendingWaiters is the number of sends (of every pool and helper) waiting for their callback.
func PendingWaiters() int { return pending.size() }

// IdlePollers is the number of running idle pollers (one per open caller-driven pool).
func IdlePollers() int64 { return atomic.LoadInt64(&idlePollers) }

// IdlePolls is the number of times an idle poller took a pool's polling over.
func IdlePolls() int64 { return atomic.LoadInt64(&idlePolls) }

// PollFailures is the number of jina_net_pool_poll calls of the binding that failed.
func PollFailures() int64 { return atomic.LoadInt64(&pollFailures) }

// LargeBodies: the large response bodies retained by callbacks, and those copied and freed since.
func LargeBodies() (retained, materialized int64) {
	return atomic.LoadInt64(&retainedBodies), atomic.LoadInt64(&materializedBodies)
}

// LentBodies: the large response bodies lent to SendView's function and freed since.
func LentBodies() int64 { return atomic.LoadInt64(&lentBodies) }

// CPoolOptions is what NewPool passes to jina_net_pool_new for some PoolOptions.
type CPoolOptions = cPoolOptionsView

// PoolOptionsAsC builds the C options NewPool would pass for opts.
func PoolOptionsAsC(opts *PoolOptions) (CPoolOptions, error) { return viewPoolOptions(opts) }

// InitPoolOptionsAsC is what jina_net_pool_options_init (resilient: _init_resilient) writes.
func InitPoolOptionsAsC(resilient bool) CPoolOptions { return viewInitOptions(resilient) }

// CPoolOptionsSize is sizeof(jina_net_pool_options) in the header the package was built with.
const CPoolOptionsSize = cPoolOptionsSize

// MetadataAllocs is the number of allocations requestMetadata makes for a send with ctx and opts
// (and its release), averaged over runs.
func MetadataAllocs(ctx context.Context, opts Metadata) float64 {
	return testing.AllocsPerRun(200, func() {
		md, err := requestMetadata(ctx, opts, "test")
		if err != nil {
			panic(err)
		}
		md.release()
	})
}

// ParseRoutes parses the text of jina_net_pool_routes as Routes does.
func ParseRoutes(text string) []Route { return parseRoutes(text) }

// DirectCompletions is the number of completions of caller-driven pools' sends that ran on a
// WaitReady's thread (signalled at once, not batched by the poller).
func DirectCompletions() int64 { return atomic.LoadInt64(&directCompletions) }

// NotReadyMessage is WaitReady's rewrite of the library's "not ready" message.
func NotReadyMessage(fn, msg string, waited time.Duration) string {
	return notReadyMessage(fn, msg, waited)
}
