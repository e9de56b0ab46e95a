package jinanet

/*
#include "jina_net.h"
*/
import "C"

import (
	"math"
	"time"
)

// ResilientPoolOptions returns the library's recommended settings for production
// (jina_net_pool_options_init_resilient), every other field at its zero value: fail-over to the next
// replica of the shard (every replica tried before a send fails), jittered exponential backoff when
// a replica is tried again (10ms doubling up to 1s), passive outlier ejection (after 1 failure,
// 100ms doubling up to 800ms, at most half of a replica list; attempts ending DEADLINE_EXCEEDED
// count, EjectOnDeadline), quick liveness probes (ProbeAfter 500ms, ProbeTimeout 1s: a replica that
// stopped answering is given up on within about 1.5s) and a retry budget of 10 tokens per head or
// shard (RetryBudgetMaxTokens; RetryBudgetTokenRatio 0.1). A dead replica among live ones then
// costs no failed send, and a brown-out of all of them is not multiplied by retries. The connection
// safeguards carry the library's values (ConnectTimeout 5s, TCPUserTimeout 20s, KeepaliveInterval
// 5min, KeepaliveTimeout 20s), which are also the defaults.
//
// The preset is plain values: change what you need before NewPool. A field set to 0 takes the
// library's default (jina_net_pool_options_init), which is off for most resilient settings:
// EjectAfterFailures = 0 keeps fail-over and backoff without ejection, FailOver = false retries in
// place, InitialBackoff = 0 retries without waiting, RetryBudgetMaxTokens = 0 removes the budget;
// ProbeAfter = 0 and ProbeTimeout = 0 are the default probes (2s, 5s), ProbeAfter = Disabled none.
// (An explicit 0 is not expressible for BackoffMultiplier, BaseEjection, MaxEjection and
// MaxEjectionPercent, whose 0 means their default; none would be useful: set EjectAfterFailures to
// 0 to not eject.)
func ResilientPoolOptions() *PoolOptions {
	var o C.jina_net_pool_options
	if rc := initPoolOptions(&o, true); rc != C.JINA_NET_OK {
		// Only a NULL struct or a size below a size_t fail: not this call.
		panic("jinanet: jina_net_pool_options_init_resilient failed: " + Code(rc).String())
	}
	ms := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Millisecond }
	p := &PoolOptions{
		MaxAttempts:        int(o.max_attempts),
		FailOver:           bool(o.fail_over),
		InitialBackoff:     ms(o.initial_backoff_ms),
		BackoffMultiplier:  float64(o.backoff_multiplier),
		MaxBackoff:         ms(o.max_backoff_ms),
		EjectAfterFailures: int(o.eject_after_failures),
		BaseEjection:       ms(o.base_ejection_ms),
		MaxEjection:        ms(o.max_ejection_ms),
		MaxEjectionPercent: int(o.max_ejection_percent),
	}
	livenessPreset(&o, p)
	transportPreset(&o, p)
	return p
}

// applyResilience copies the fail-over, backoff and ejection options into o (a zero field keeps the
// library's default).
func applyResilience(opts *PoolOptions, o *C.jina_net_pool_options) error {
	const fn = "NewPool"
	duration := func(d time.Duration, what string, field *C.uint64_t) error {
		if d < 0 {
			return newError(CodeInvalidArgument, fn+": negative "+what)
		}
		if d > 0 {
			*field = C.uint64_t(millisCeil(d))
		}
		return nil
	}
	count := func(n int, max int64, what string, field *C.uint32_t) error {
		if n < 0 || int64(n) > max {
			return newError(CodeInvalidArgument, fn+": "+what+" out of range")
		}
		if n > 0 {
			*field = C.uint32_t(n)
		}
		return nil
	}
	if opts.FailOver {
		o.fail_over = true
	}
	if err := duration(opts.InitialBackoff, "InitialBackoff", &o.initial_backoff_ms); err != nil {
		return err
	}
	switch m := opts.BackoffMultiplier; {
	case m == 0:
	case m < 1 || math.IsNaN(m) || math.IsInf(m, 0):
		return newError(CodeInvalidArgument, fn+": BackoffMultiplier must be a number >= 1 (0 = the default, 1)")
	default:
		o.backoff_multiplier = C.double(m)
	}
	if err := duration(opts.MaxBackoff, "MaxBackoff", &o.max_backoff_ms); err != nil {
		return err
	}
	if err := count(opts.EjectAfterFailures, int64(^uint32(0)), "EjectAfterFailures", &o.eject_after_failures); err != nil {
		return err
	}
	if err := duration(opts.BaseEjection, "BaseEjection", &o.base_ejection_ms); err != nil {
		return err
	}
	if err := duration(opts.MaxEjection, "MaxEjection", &o.max_ejection_ms); err != nil {
		return err
	}
	return count(opts.MaxEjectionPercent, 100, "MaxEjectionPercent (0-100)", &o.max_ejection_percent)
}
