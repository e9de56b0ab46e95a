package jinanet

// Test hooks that need C (test files cannot use cgo). Not part of the API.

/*
#include <stdint.h>
#include "jina_net.h"
#include "jinanet_shim.h"

// A send result as the library may hand one over: empty buffers with dangling pointers (Rust's empty
// slices point at address 1), which Go must never keep in a pointer-typed variable. The library's
// accessors cannot read a result they did not make, so it is read through a reader of its own
// (jinanet_reader), which indexes these test arrays.
#define JINANET_DANGLING ((const uint8_t *)(uintptr_t)1)
static const jina_net_metadata jinanet_fake_metadata[3] = {
	{"empty", JINANET_DANGLING, 0},
	{"replica", (const uint8_t *)"w", 1},
	{"empty-too", JINANET_DANGLING, 0},
};
static const jina_net_target_result jinanet_fake_targets[1] = {{
	.struct_size = sizeof(jina_net_target_result),
	.status = JINA_NET_OK, .grpc_code = 0, .head = false, .shard_id = 0,
	.address = "127.0.0.1:1", .grpc_message = "", .error_message = "",
	.response = JINANET_DANGLING, .response_len = 0,
	.metadata_len = 3, .internal = NULL,
}};
static const jina_net_send_result jinanet_fake_result = {
	.struct_size = sizeof(jina_net_send_result),
	.send_id = 1, .status = JINA_NET_OK, .error_message = "",
	.targets_len = 1, .internal = NULL,
};
static const jina_net_target_result *jinanet_fake_target(const jina_net_send_result *r, size_t i) {
	return r == &jinanet_fake_result && i < 1 ? &jinanet_fake_targets[i] : NULL;
}
static const jina_net_metadata *jinanet_fake_entry(const jina_net_target_result *t, size_t i) {
	return t == &jinanet_fake_targets[0] && i < 3 ? &jinanet_fake_metadata[i] : NULL;
}
static const jinanet_reader jinanet_fake_reader = {jinanet_fake_target, jinanet_fake_entry};
static const jina_net_send_result *jinanet_fake(void) { return &jinanet_fake_result; }
static const void *jinanet_fake_reader_ptr(void) { return &jinanet_fake_reader; }
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// convertDanglingResult converts a result whose empty buffers have dangling pointers (for the
// tests): an empty body and two empty trailer values; with a string cache or without.
func convertDanglingResult(cached bool) ([]*Response, error) {
	var c *internCache
	if cached {
		c = new(internCache)
	}
	// The conversion reads a per-thread batch (jinanet_target): stay on one thread, as a callback does.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := convertSendResult(C.jinanet_fake(), unsafe.Pointer(C.jinanet_fake_reader_ptr()), c, false)
	return out.responses, out.err
}

// cPoolOptionsView is what NewPool passes to jina_net_pool_new for some PoolOptions (for the tests
// of the mapping of each field).
type cPoolOptionsView struct {
	StructSize                      uint64
	MaxAttempts                     uint32
	DefaultTimeout                  time.Duration
	FailOver                        bool
	InitialBackoff, MaxBackoff      time.Duration
	BackoffMultiplier               float64
	EjectAfterFailures              uint32
	BaseEjection, MaxEjection       time.Duration
	MaxEjectionPercent              uint32
	MaxInFlightPerReplica, MaxQueue uint32
	MaxHedges                       uint32
	CallerDriven                    bool
	TLS, Metrics                    bool
	RootCertificatesLen             uint64
	Balance                         uint32
	P2CDefaultRTT, P2CDecay         time.Duration
	HedgeDelay                      time.Duration
	// C ABI 0.2.1
	ConnectTimeout, TCPUserTimeout      time.Duration
	KeepaliveInterval, KeepaliveTimeout time.Duration
	ProbeAfter, ProbeTimeout            time.Duration
	FailOverUnanswered, EjectOnDeadline bool
	PerAttemptTimeout                   time.Duration
	RetryBudgetMaxTokens                uint32
	RetryBudgetTokenRatio               float64
	// C ABI 0.2.2
	TLSCertChainLen, TLSPrivateKeyLen uint64
	TLSServerName                     string
	Compression                       uint32
	DNSRefresh                        time.Duration
}

func viewPoolOptions(opts *PoolOptions) (cPoolOptionsView, error) {
	var o C.jina_net_pool_options
	release, err := cPoolOptions(opts, &o)
	defer release()
	if err != nil {
		return cPoolOptionsView{}, err
	}
	return cPoolOptionsViewOf(&o), nil
}

// viewInitOptions is what jina_net_pool_options_init (resilient: _init_resilient) writes, read as
// cPoolOptionsView.
func viewInitOptions(resilient bool) cPoolOptionsView {
	var o C.jina_net_pool_options
	if rc := initPoolOptions(&o, resilient); rc != C.JINA_NET_OK {
		panic("jinanet: pool options init failed: " + Code(rc).String())
	}
	return cPoolOptionsViewOf(&o)
}

func cPoolOptionsViewOf(o *C.jina_net_pool_options) cPoolOptionsView {
	ms := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Millisecond }
	return cPoolOptionsView{
		StructSize:            uint64(o.struct_size),
		MaxAttempts:           uint32(o.max_attempts),
		DefaultTimeout:        ms(o.default_timeout_ms),
		FailOver:              bool(o.fail_over),
		InitialBackoff:        ms(o.initial_backoff_ms),
		MaxBackoff:            ms(o.max_backoff_ms),
		BackoffMultiplier:     float64(o.backoff_multiplier),
		EjectAfterFailures:    uint32(o.eject_after_failures),
		BaseEjection:          ms(o.base_ejection_ms),
		MaxEjection:           ms(o.max_ejection_ms),
		MaxEjectionPercent:    uint32(o.max_ejection_percent),
		MaxInFlightPerReplica: uint32(o.max_in_flight_per_replica),
		MaxQueue:              uint32(o.max_queued_sends),
		MaxHedges:             uint32(o.max_hedges),
		CallerDriven:          bool(o.caller_driven),
		TLS:                   bool(o.tls),
		Metrics:               bool(o.metrics),
		RootCertificatesLen:   uint64(o.root_certificates_pem_len),
		Balance:               uint32(o.balance),
		P2CDefaultRTT:         ms(o.p2c_default_rtt_ms),
		P2CDecay:              ms(o.p2c_decay_ms),
		HedgeDelay:            ms(o.hedge_delay_ms),
		ConnectTimeout:        ms(o.connect_timeout_ms),
		TCPUserTimeout:        ms(o.tcp_user_timeout_ms),
		KeepaliveInterval:     ms(o.keepalive_interval_ms),
		KeepaliveTimeout:      ms(o.keepalive_timeout_ms),
		ProbeAfter:            ms(o.probe_after_ms),
		ProbeTimeout:          ms(o.probe_timeout_ms),
		FailOverUnanswered:    bool(o.fail_over_unanswered),
		EjectOnDeadline:       bool(o.eject_on_deadline),
		PerAttemptTimeout:     ms(o.per_attempt_timeout_ms),
		RetryBudgetMaxTokens:  uint32(o.retry_budget_max_tokens),
		RetryBudgetTokenRatio: float64(o.retry_budget_token_ratio),
		TLSCertChainLen:       uint64(o.tls_cert_chain_pem_len),
		TLSPrivateKeyLen:      uint64(o.tls_private_key_pem_len),
		TLSServerName:         C.GoString(o.tls_server_name),
		Compression:           uint32(o.compression),
		DNSRefresh:            ms(o.dns_refresh_ms),
	}
}

// cPoolOptionsSize is sizeof(jina_net_pool_options) in the header the package was built with.
const cPoolOptionsSize = C.sizeof_jina_net_pool_options
