package jinanet

/*
#include "jina_net.h"
*/
import "C"

import (
	"math"
	"time"
)

// Disabled, as PoolOptions.ConnectTimeout, TCPUserTimeout, KeepaliveInterval or ProbeAfter, turns
// off a safeguard the library has on by default: no connect timeout, the system's TCP_USER_TIMEOUT,
// no HTTP/2 keepalive, no liveness probes; as PoolOptions.DNSRefresh, dns: names are never resolved
// again. (0 keeps the library's default, as for every field.) Any other negative duration fails
// NewPool with ErrInvalidArgument.
const Disabled time.Duration = -1

// minKeepaliveInterval is gRFC A8's minimum keepalive interval, which the library enforces.
const minKeepaliveInterval = 10 * time.Second

// maxRetryBudgetTokens is the largest retry budget the library takes.
const maxRetryBudgetTokens = 1000

// applyLiveness copies the connection, liveness, attempt timeout and retry budget options (C ABI
// 0.2.1) into o. A zero field keeps the default jina_net_pool_options_init wrote (the field is not
// written at all, so a library that predates these fields gets none of them set).
func applyLiveness(opts *PoolOptions, o *C.jina_net_pool_options) error {
	const fn = "NewPool"
	// offable: 0 keeps the default, Disabled writes 0 (off), a positive duration its milliseconds.
	offable := func(d time.Duration, what, off string, field *C.uint64_t) error {
		switch {
		case d == Disabled:
			*field = 0
		case d < 0:
			return newError(CodeInvalidArgument, fn+": negative "+what+" (Disabled = "+off+")")
		case d > 0:
			*field = C.uint64_t(millisCeil(d))
		}
		return nil
	}
	// positive: 0 keeps the default, a positive duration is written, a negative one is refused.
	positive := func(d time.Duration, what string, field *C.uint64_t) error {
		if d < 0 {
			return newError(CodeInvalidArgument, fn+": negative "+what)
		}
		if d > 0 {
			*field = C.uint64_t(millisCeil(d))
		}
		return nil
	}
	if err := offable(opts.ConnectTimeout, "ConnectTimeout", "no limit", &o.connect_timeout_ms); err != nil {
		return err
	}
	if err := offable(opts.TCPUserTimeout, "TCPUserTimeout", "the system's", &o.tcp_user_timeout_ms); err != nil {
		return err
	}
	if d := opts.KeepaliveInterval; d > 0 && d < minKeepaliveInterval {
		return newError(CodeInvalidArgument, fn+": KeepaliveInterval must be at least 10s (gRFC A8's minimum), "+
			"0 for the default or Disabled for no keepalive, not "+d.String())
	}
	if err := offable(opts.KeepaliveInterval, "KeepaliveInterval", "no keepalive", &o.keepalive_interval_ms); err != nil {
		return err
	}
	if err := positive(opts.KeepaliveTimeout, "KeepaliveTimeout", &o.keepalive_timeout_ms); err != nil {
		return err
	}
	if err := offable(opts.ProbeAfter, "ProbeAfter", "no probes", &o.probe_after_ms); err != nil {
		return err
	}
	if err := positive(opts.ProbeTimeout, "ProbeTimeout", &o.probe_timeout_ms); err != nil {
		return err
	}
	if opts.FailOverUnanswered {
		o.fail_over_unanswered = true
	}
	if opts.EjectOnDeadline {
		o.eject_on_deadline = true
	}
	if err := positive(opts.PerAttemptTimeout, "PerAttemptTimeout", &o.per_attempt_timeout_ms); err != nil {
		return err
	}
	switch n := opts.RetryBudgetMaxTokens; {
	case n < 0 || n > maxRetryBudgetTokens:
		return newError(CodeInvalidArgument, fn+": RetryBudgetMaxTokens out of range (0 = no budget, at most 1000)")
	case n > 0:
		o.retry_budget_max_tokens = C.uint32_t(n)
	}
	switch r := opts.RetryBudgetTokenRatio; {
	case r == 0:
	case r < 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return newError(CodeInvalidArgument, fn+": RetryBudgetTokenRatio must be a number > 0 (0 = the default, 0.1)")
	default:
		o.retry_budget_token_ratio = C.double(r)
	}
	return nil
}

// livenessPreset fills the connection, liveness, attempt timeout and retry budget fields of p from
// the options o an _init function wrote (a 0 of a safeguard that is on by default is Disabled).
func livenessPreset(o *C.jina_net_pool_options, p *PoolOptions) {
	ms := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Millisecond }
	offable := func(v C.uint64_t) time.Duration {
		if v == 0 {
			return Disabled
		}
		return ms(v)
	}
	p.ConnectTimeout = offable(o.connect_timeout_ms)
	p.TCPUserTimeout = offable(o.tcp_user_timeout_ms)
	p.KeepaliveInterval = offable(o.keepalive_interval_ms)
	p.KeepaliveTimeout = ms(o.keepalive_timeout_ms)
	p.ProbeAfter = offable(o.probe_after_ms)
	p.ProbeTimeout = ms(o.probe_timeout_ms)
	p.FailOverUnanswered = bool(o.fail_over_unanswered)
	p.EjectOnDeadline = bool(o.eject_on_deadline)
	p.PerAttemptTimeout = ms(o.per_attempt_timeout_ms)
	p.RetryBudgetMaxTokens = int(o.retry_budget_max_tokens)
	p.RetryBudgetTokenRatio = float64(o.retry_budget_token_ratio)
}
