package jinanet

/*
#include "jina_net.h"
*/
import "C"

import "time"

// Balance is how a pool picks a replica of a head or shard (PoolOptions.Balance).
type Balance uint32

const (
	// BalanceRoundRobin is jina 3.1's round robin in the order replicas were added (the default).
	BalanceRoundRobin Balance = C.JINA_NET_BALANCE_ROUND_ROBIN
	// BalanceP2C is the power of two choices over PeakEWMA costs (latency estimate x (calls in
	// flight + 1)), as tower's and Linkerd's balancers: two replicas drawn at random, the cheaper wins.
	BalanceP2C Balance = C.JINA_NET_BALANCE_P2C_PEAK_EWMA
)

// NoQueue as PoolOptions.MaxQueuedSends: a send that finds every replica full fails at once.
const NoQueue = -1

// applyTuning copies the balancing, in-flight limit, hedging and metrics options into o.
func applyTuning(opts *PoolOptions, o *C.jina_net_pool_options) error {
	const fn = "NewPool"
	positive := func(d time.Duration, what string) (C.uint64_t, bool, error) {
		if d < 0 {
			return 0, false, newError(CodeInvalidArgument, fn+": negative "+what)
		}
		return C.uint64_t(millisCeil(d)), d > 0, nil
	}
	count := func(n int, what string) (C.uint32_t, error) {
		if n < 0 || int64(n) > int64(^uint32(0)) {
			return 0, newError(CodeInvalidArgument, fn+": "+what+" out of range")
		}
		return C.uint32_t(n), nil
	}
	o.balance = C.uint32_t(opts.Balance)
	if v, set, err := positive(opts.P2CDefaultRTT, "P2CDefaultRTT"); err != nil {
		return err
	} else if set {
		o.p2c_default_rtt_ms = v
	}
	if v, set, err := positive(opts.P2CDecay, "P2CDecay"); err != nil {
		return err
	} else if set {
		o.p2c_decay_ms = v
	}
	var err error
	if o.max_in_flight_per_replica, err = count(opts.MaxInFlightPerReplica, "MaxInFlightPerReplica"); err != nil {
		return err
	}
	switch {
	case opts.MaxQueuedSends == NoQueue:
		o.max_queued_sends = 0
	case opts.MaxQueuedSends != 0:
		if o.max_queued_sends, err = count(opts.MaxQueuedSends, "MaxQueuedSends"); err != nil {
			return err
		}
	}
	if o.hedge_delay_ms, _, err = positive(opts.HedgeDelay, "HedgeDelay"); err != nil {
		return err
	}
	if o.max_hedges, err = count(opts.MaxHedges, "MaxHedges"); err != nil {
		return err
	}
	o.metrics = C.bool(opts.Metrics)
	return nil
}
