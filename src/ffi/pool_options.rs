//! `jina_net_pool_options`: the C form of [`PoolOptions`], its two initialisers and its checks.

use std::ffi::c_char;

use super::args;
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};
use super::sized::{read_sized, write_sized, SizedStruct};
use crate::policy::{
    Balance, ChannelOptions, Compression, ConnectionOptions, HedgePolicy, Http2Keepalive, InFlightLimit,
    LivenessPolicy, OutlierPolicy, PeakEwmaConfig, PoolOptions, RetryBudgetPolicy, RetryPolicy, TlsIdentity,
    TlsOptions,
};
use crate::transport::check_tls;

/// How a pool picks a replica of a head or shard (`jina_net_pool_options.balance`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_balance {
    /// jina 3.1's round robin in the order replicas were added (the default).
    JINA_NET_BALANCE_ROUND_ROBIN = 0,
    /// Power of two choices over PeakEWMA costs (latency estimate x (calls in flight + 1)), as
    /// tower's and Linkerd's balancers: two distinct replicas drawn at random (ejected ones
    /// skipped), the cheaper one wins.
    JINA_NET_BALANCE_P2C_PEAK_EWMA = 1,
}

/// Options of a pool. Initialise with `jina_net_pool_options_init(&options, sizeof options)` (or
/// `_init_resilient`), then change what you need. `struct_size` says how many bytes of the struct the
/// caller's header declares: the library reads no more, and a field it lacks takes its default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_pool_options {
    /// `sizeof(jina_net_pool_options)` in the caller's header; set by the `_init` functions.
    pub struct_size: usize,
    /// Attempts per send on `UNAVAILABLE`, the first included (default 3, as jina; 1 = no retry).
    /// With `fail_over`, at least one per replica of the shard.
    pub max_attempts: u32,
    /// Deadline of a send that gives none, in milliseconds (default 0 = none).
    pub default_timeout_ms: u64,
    /// Use TLS for every address, also those without `https://` / `grpcs://` (default false).
    pub tls: bool,
    /// PEM root certificates to trust for TLS instead of the system roots (default NULL). Copied
    /// by `jina_net_pool_new`.
    pub root_certificates_pem: *const u8,
    /// Length of `root_certificates_pem`.
    pub root_certificates_pem_len: usize,
    /// Retry on the next replica of the shard instead of the same one; every replica is tried before
    /// giving up (default false = jina 3.1's retries in place; true in the resilient settings).
    pub fail_over: bool,
    /// Backoff cap before a retry that goes back to a replica already tried, in ms (default 0,
    /// resilient 10); multiplied by `backoff_multiplier` per attempt (default 1.0, resilient 2.0) up
    /// to `max_backoff_ms` (default 0, resilient 1000). The wait is uniformly random in [0, cap]
    /// (gRFC A6).
    pub initial_backoff_ms: u64,
    /// See `initial_backoff_ms`.
    pub backoff_multiplier: f64,
    /// See `initial_backoff_ms`.
    pub max_backoff_ms: u64,
    /// Consecutive `UNAVAILABLE` failures that eject a replica (skipped while healthy ones exist)
    /// (default 0 = never eject, as jina; resilient 1).
    pub eject_after_failures: u32,
    /// First ejection in ms (100), doubling per consecutive ejection up to `max_ejection_ms` (800):
    /// a restarted replica is used again within that.
    pub base_ejection_ms: u64,
    /// See `base_ejection_ms`.
    pub max_ejection_ms: u64,
    /// At most this percentage of a replica list is ejected at once (default 50).
    pub max_ejection_percent: u32,
    /// A `jina_net_balance`: how a replica is picked (default `JINA_NET_BALANCE_ROUND_ROBIN`, jina's
    /// order, byte for byte).
    pub balance: u32,
    /// p2c: the latency estimate of a replica that has not answered yet, in ms (default 30, as
    /// Linkerd; at least 1). Set it near your replicas' usual latency.
    pub p2c_default_rtt_ms: u64,
    /// p2c: the decay time of the latency estimate, in ms (default 10000, as Linkerd; at least 1):
    /// an answer weighs `exp(-elapsed / decay)`, and an idle replica's estimate fades toward 0.
    pub p2c_decay_ms: u64,
    /// At most this many calls in flight per replica (default 0 = no limit). A call whose replica
    /// is full goes to another replica of the head or shard with a free slot; when every replica is
    /// full the send waits in the head's or shard's queue for a slot, up to its deadline
    /// (`JINA_NET_DEADLINE_EXCEEDED`). Each attempt (retry, hedge) takes a slot of its own.
    pub max_in_flight_per_replica: u32,
    /// With `max_in_flight_per_replica`: sends waiting for a slot per head or shard at most
    /// (default 1000). A send that finds the queue full completes at once (its callback fires
    /// without waiting) with `JINA_NET_RESOURCE_EXHAUSTED` for that target, naming deployment and
    /// shard. 0 = no waiting.
    pub max_queued_sends: u32,
    /// Hedging of sends marked idempotent (`jina_net_send_options.idempotent`): after this many ms
    /// without an answer the send goes to another replica of the same head or shard as well
    /// (0 = all hedges at once). The first successful answer wins, the other attempts are cancelled
    /// (HTTP/2 stream reset), the callback fires once. A failed attempt starts the next hedge at
    /// once; when all fail, the send fails with the last error. Default 0.
    pub hedge_delay_ms: u64,
    /// Hedges at most beyond the first attempt (default 0 = never hedge).
    pub max_hedges: u32,
    /// Keep per-replica metrics, read with `jina_net_pool_metrics_text` (default false: no
    /// recording at all).
    pub metrics: bool,
    /// Run the pool on the threads that call `jina_net_pool_poll` instead of the library's threads
    /// (default false). Such a pool starts no thread: its network I/O, timers and callbacks run inside
    /// `jina_net_pool_poll`, so a send made and completed on the polling thread (for instance from a
    /// callback) crosses no thread. It makes progress only while polled.
    pub caller_driven: bool,
    // ---- 0.2.1: fields appended after 0.2.0 (a 0.2.0 caller's struct ends before them: defaults) ----
    /// Time allowed to establish a connection (TCP and TLS), in ms (default 5000; 0 = no limit).
    pub connect_timeout_ms: u64,
    /// TCP_USER_TIMEOUT in ms: a connection whose sent data stays unacknowledged this long is closed,
    /// failing its calls (default 20000; 0 = the system's).
    pub tcp_user_timeout_ms: u64,
    /// HTTP/2 keepalive: a PING every this many ms while calls are outstanding, never on an idle
    /// connection (default 300000 = 5 min, what gRPC servers accept without strikes; 0 = none; at
    /// least 10000).
    pub keepalive_interval_ms: u64,
    /// A keepalive PING not acknowledged within this many ms closes the connection (default 20000).
    pub keepalive_timeout_ms: u64,
    /// Liveness probes: a replica with calls outstanding that has answered nothing for this many ms
    /// gets a STATUS control request on the same connection (default 2000, resilient 500; 0 = no
    /// probes). A probe not answered within `probe_timeout_ms` marks the replica unresponsive: the
    /// calls pending on it end with `UNAVAILABLE` naming it, sends avoid it, and it is probed again
    /// until it answers.
    pub probe_after_ms: u64,
    /// See `probe_after_ms` (default 5000, resilient 1000; at least 1).
    pub probe_timeout_ms: u64,
    /// A send not marked idempotent whose replica stopped answering (or whose attempt timed out) goes
    /// on to another replica too (default false: the replica may have received the request, so only
    /// idempotent sends go on).
    pub fail_over_unanswered: bool,
    /// Attempts ending `DEADLINE_EXCEEDED` count toward ejection (default false, resilient true).
    pub eject_on_deadline: bool,
    /// Time one attempt may take before the send gives up on it and, where it may (idempotent sends,
    /// or `fail_over_unanswered`), tries another replica, in ms (default 0 = only the deadline).
    pub per_attempt_timeout_ms: u64,
    /// Retry throttling per head or shard (gRFC A6): the tokens of a full budget (default 0 = no
    /// budget, resilient 10; at most 1000). A send that fails for good although its failure could have
    /// been retried takes a token, a send that succeeds gives `retry_budget_token_ratio` back (counted
    /// per send, not per attempt); at or below half, no retry, fail-over or hedge starts.
    pub retry_budget_max_tokens: u32,
    /// See `retry_budget_max_tokens` (default 0.1; > 0).
    pub retry_budget_token_ratio: f64,
    // ---- 0.2.2: appended after 0.2.1 ----
    /// The pool's client certificate chain for mutual TLS, PEM, leaf first (default NULL = no client
    /// identity). Copied by `jina_net_pool_new`; with `tls_private_key_pem`.
    pub tls_cert_chain_pem: *const u8,
    /// Length of `tls_cert_chain_pem`.
    pub tls_cert_chain_pem_len: usize,
    /// The private key of the client certificate, PEM (default NULL).
    pub tls_private_key_pem: *const u8,
    /// Length of `tls_private_key_pem`.
    pub tls_private_key_pem_len: usize,
    /// The name every replica's TLS certificate must carry (and the SNI sent) instead of the host of
    /// its address, as gRPC's `grpc.ssl_target_name_override` (default NULL = the host). For replicas
    /// reached by IP (Kubernetes pods) whose certificates name a service. Per address:
    /// `jina_net_pool_add_connection_ex`.
    pub tls_server_name: *const c_char,
    /// A `jina_net_compression`: how requests are compressed (default `JINA_NET_COMPRESSION_NONE`, as
    /// jina 3.1). Responses are decoded whatever their encoding (gzip, deflate).
    pub compression: u32,
    /// How often the names of `dns:///host:port` addresses are resolved again, in ms (default 30000;
    /// 0 = never): each A/AAAA record of such a name is a replica, added and removed as the name
    /// changes, and re-resolved within a second when one of its replicas fails.
    pub dns_refresh_ms: u64,
    // ---- 0.2.4: appended after 0.2.3 ----
    /// The library threads run the pool, but its callbacks run inside `jina_net_pool_poll`, on the
    /// thread calling it, which gets the callbacks of every send completed since its last poll
    /// (default false: on the library thread that completed the send). A thread waiting in the poll
    /// is woken once for a burst of completions, not once per completion. No effect on a
    /// caller-driven pool (its callbacks always run in the poll).
    pub callbacks_in_poll: bool,
}

/// Where a pool runs and where its callbacks fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Library threads; callbacks on them (the default).
    LibraryThreads,
    /// Library threads; callbacks in `jina_net_pool_poll` (`callbacks_in_poll`).
    InPoll,
    /// The polling threads run everything (`caller_driven`).
    CallerDriven,
}

// SAFETY: a `#[repr(C)]` struct starting with `struct_size`; its fields are integers, floats, bools
// and a pointer, valid for whatever a C caller stores in them.
unsafe impl SizedStruct for jina_net_pool_options {
    const NAME: &'static str = "jina_net_pool_options";
    const INIT: &'static str = "jina_net_pool_options_init";
}

/// The options of a preset, as C sees them.
fn preset(options: &PoolOptions) -> jina_net_pool_options {
    let ewma = PeakEwmaConfig::default();
    let (retry, outlier, budget) = (options.retry, options.outlier, options.retry_budget.as_ref());
    let (channel, liveness) = (&options.connection.channel, &options.connection.liveness);
    jina_net_pool_options {
        struct_size: std::mem::size_of::<jina_net_pool_options>(),
        max_attempts: retry.max_attempts,
        default_timeout_ms: 0,
        tls: false,
        root_certificates_pem: std::ptr::null(),
        root_certificates_pem_len: 0,
        fail_over: retry.fail_over,
        initial_backoff_ms: retry.initial_backoff.as_millis() as u64,
        backoff_multiplier: retry.backoff_multiplier,
        max_backoff_ms: retry.max_backoff.as_millis() as u64,
        eject_after_failures: outlier.consecutive_failures,
        base_ejection_ms: outlier.base_ejection.as_millis() as u64,
        max_ejection_ms: outlier.max_ejection.as_millis() as u64,
        max_ejection_percent: u32::from(outlier.max_ejection_percent),
        balance: jina_net_balance::JINA_NET_BALANCE_ROUND_ROBIN as u32,
        p2c_default_rtt_ms: ewma.default_rtt.as_millis() as u64,
        p2c_decay_ms: ewma.decay.as_millis() as u64,
        max_in_flight_per_replica: 0,
        max_queued_sends: DEFAULT_MAX_QUEUED,
        hedge_delay_ms: 0,
        max_hedges: 0,
        metrics: false,
        caller_driven: false,
        connect_timeout_ms: millis(channel.connect_timeout),
        tcp_user_timeout_ms: millis(channel.tcp_user_timeout),
        keepalive_interval_ms: millis(channel.http2_keepalive.map(|k| k.interval)),
        keepalive_timeout_ms: millis(Some(Http2Keepalive::default().timeout)),
        probe_after_ms: millis(liveness.probe_after),
        probe_timeout_ms: millis(Some(liveness.probe_timeout)),
        fail_over_unanswered: liveness.fail_over_unanswered,
        eject_on_deadline: outlier.eject_on_deadline,
        per_attempt_timeout_ms: millis(retry.per_attempt_timeout),
        retry_budget_max_tokens: budget.map_or(0, |b| b.max_tokens),
        retry_budget_token_ratio: budget.map_or(RetryBudgetPolicy::default().token_ratio, |b| b.token_ratio),
        tls_cert_chain_pem: std::ptr::null(),
        tls_cert_chain_pem_len: 0,
        tls_private_key_pem: std::ptr::null(),
        tls_private_key_pem_len: 0,
        tls_server_name: std::ptr::null(),
        compression: jina_net_compression::JINA_NET_COMPRESSION_NONE as u32,
        dns_refresh_ms: millis(options.dns_refresh),
        callbacks_in_poll: false,
    }
}

fn millis(d: Option<std::time::Duration>) -> u64 {
    d.map_or(0, |d| d.as_millis() as u64)
}

/// The defaults: what a field the caller's struct lacks takes.
fn defaults() -> jina_net_pool_options {
    preset(&PoolOptions::default())
}

/// Fills the caller's `struct_size` bytes at `options` with the defaults: jina 3.1.0's behaviour (3
/// attempts on `UNAVAILABLE` on the same replica, no backoff, no ejection), and sets
/// `options->struct_size`. Pass `sizeof` of the struct as the caller's header declares it:
/// `jina_net_pool_options_init(&o, sizeof o)`. `JINA_NET_NULL_ARGUMENT` for NULL,
/// `JINA_NET_INVALID_ARGUMENT` when `struct_size` is smaller than a `size_t`.
///
/// # Safety
/// `options` must be NULL or point to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_options_init(
    options: *mut jina_net_pool_options,
    struct_size: usize,
) -> jina_net_result {
    boundary("jina_net_pool_options_init", || {
        // SAFETY: the caller gives `struct_size` writable bytes.
        unsafe { write_sized(options, struct_size, defaults()) }
    })
}

/// `jina_net_pool_options_init` with the recommended settings for production: fail-over to the next
/// replica of the shard (every replica tried before giving up), jittered exponential backoff (10 ms
/// doubling up to 1 s) when a replica is tried again, and passive outlier ejection (after 1 failure,
/// 100 ms doubling up to 800 ms, at most half of a list).
///
/// # Safety
/// As `jina_net_pool_options_init`.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_options_init_resilient(
    options: *mut jina_net_pool_options,
    struct_size: usize,
) -> jina_net_result {
    boundary("jina_net_pool_options_init_resilient", || {
        // SAFETY: the caller gives `struct_size` writable bytes.
        unsafe { write_sized(options, struct_size, preset(&PoolOptions::resilient())) }
    })
}

const DEFAULT_MAX_QUEUED: u32 = 1000;

/// The TLS settings of a pool's options (identity, server name, roots), checked.
///
/// # Safety
/// The struct's pointers are NULL or hold their lengths' bytes; `tls_server_name` NUL-terminated.
unsafe fn tls_options(o: &jina_net_pool_options, roots: &[u8]) -> Result<TlsOptions, Failure> {
    // SAFETY: the struct promises its buffers.
    let (chain, key, name) = unsafe {
        (
            args::bytes(o.tls_cert_chain_pem, o.tls_cert_chain_pem_len, "tls_cert_chain_pem")?,
            args::bytes(o.tls_private_key_pem, o.tls_private_key_pem_len, "tls_private_key_pem")?,
            args::optional_string(o.tls_server_name, "tls_server_name")?,
        )
    };
    let tls = TlsOptions {
        force: o.tls,
        root_certificates_pem: (!roots.is_empty()).then(|| roots.to_vec()),
        identity: identity(chain, key)?,
        server_name: name.map(str::to_owned),
    };
    check_tls(&tls)?;
    Ok(tls)
}

/// A client identity from a certificate chain and a key: both or neither.
pub(super) fn identity(chain: &[u8], key: &[u8]) -> Result<Option<TlsIdentity>, Failure> {
    match (chain.is_empty(), key.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(TlsIdentity {
            cert_chain_pem: chain.to_vec(),
            private_key_pem: key.to_vec(),
        })),
        _ => Err(Failure::new(
            JINA_NET_TLS_ERROR,
            "a client identity needs both tls_cert_chain_pem and tls_private_key_pem",
        )),
    }
}

/// A `jina_net_compression` value.
pub(super) fn compression(value: u32) -> Result<Compression, Failure> {
    match value {
        0 => Ok(Compression::None),
        1 => Ok(Compression::Gzip),
        2 => Ok(Compression::Deflate),
        other => Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            format!("unknown compression {other} (0 = NONE, 1 = GZIP, 2 = DEFLATE)"),
        )),
    }
}

/// How requests are compressed (`jina_net_pool_options.compression`, `jina_net_oneshot_options.compression`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_compression {
    /// Uncompressed (jina's `NoCompression`), the default.
    JINA_NET_COMPRESSION_NONE = 0,
    /// gzip (jina's `Gzip`).
    JINA_NET_COMPRESSION_GZIP = 1,
    /// deflate (jina's `Deflate`).
    JINA_NET_COMPRESSION_DEFLATE = 2,
}

/// The `jina_net_compression` of a name: `none`, `gzip`, `deflate`, jina's `NoCompression`, `Gzip`,
/// `Deflate`, or gRPC's `identity` (= none), in any case. `JINA_NET_INVALID_ARGUMENT` for another
/// name (the empty one too); `*out_compression` is then untouched.
///
/// # Safety
/// `name` NUL-terminated; `out_compression` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_compression_from_name(
    name: *const c_char,
    out_compression: *mut u32,
) -> jina_net_result {
    boundary("jina_net_compression_from_name", || {
        let out = args::out(out_compression, "out_compression")?;
        // SAFETY: NUL-terminated (caller's promise).
        let name = unsafe { args::string(name, "name") }?;
        let c = Compression::from_name(name).ok_or_else(|| {
            Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                format!("unknown compression {name:?} (none, gzip, deflate; jina's NoCompression, Gzip, Deflate)"),
            )
        })?;
        *out = match c {
            Compression::None => jina_net_compression::JINA_NET_COMPRESSION_NONE,
            Compression::Gzip => jina_net_compression::JINA_NET_COMPRESSION_GZIP,
            Compression::Deflate => jina_net_compression::JINA_NET_COMPRESSION_DEFLATE,
        } as u32;
        Ok(())
    })
}

/// The pool options, and where the pool runs and fires its callbacks.
pub(super) unsafe fn pool_options(options: *const jina_net_pool_options) -> Result<(PoolOptions, Delivery), Failure> {
    let mut pool_options = PoolOptions::default();
    let mut delivery = Delivery::LibraryThreads;
    if !options.is_null() {
        // SAFETY: the caller passes a struct with `struct_size` readable bytes.
        let o = &unsafe { read_sized(options, defaults()) }?;
        if o.max_attempts == 0 {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "max_attempts must be at least 1",
            ));
        }
        if !(o.backoff_multiplier.is_finite() && o.backoff_multiplier >= 1.0) {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "backoff_multiplier must be a number >= 1",
            ));
        }
        if o.max_ejection_percent > 100 {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "max_ejection_percent must be at most 100",
            ));
        }
        if o.keepalive_interval_ms != 0 && o.keepalive_interval_ms < 10_000 {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "keepalive_interval_ms must be 0 (no keepalive) or at least 10000 (gRFC A8's minimum)",
            ));
        }
        if o.probe_after_ms != 0 && o.probe_timeout_ms == 0 {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "probe_timeout_ms must be at least 1 when probes are on",
            ));
        }
        if o.retry_budget_max_tokens > 1000
            || (o.retry_budget_max_tokens > 0
                && !(o.retry_budget_token_ratio.is_finite() && o.retry_budget_token_ratio > 0.0))
        {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "retry_budget_max_tokens must be at most 1000 and retry_budget_token_ratio a number > 0",
            ));
        }
        let ms = std::time::Duration::from_millis;
        pool_options.retry = RetryPolicy {
            max_attempts: o.max_attempts,
            fail_over: o.fail_over,
            initial_backoff: ms(o.initial_backoff_ms),
            backoff_multiplier: o.backoff_multiplier,
            max_backoff: ms(o.max_backoff_ms),
            per_attempt_timeout: args::millis(o.per_attempt_timeout_ms),
        };
        pool_options.outlier = OutlierPolicy {
            consecutive_failures: o.eject_after_failures,
            base_ejection: ms(o.base_ejection_ms),
            max_ejection: ms(o.max_ejection_ms),
            max_ejection_percent: o.max_ejection_percent as u8,
            eject_on_deadline: o.eject_on_deadline,
        };
        pool_options.retry_budget = (o.retry_budget_max_tokens > 0).then_some(RetryBudgetPolicy {
            max_tokens: o.retry_budget_max_tokens,
            token_ratio: o.retry_budget_token_ratio,
        });
        pool_options.default_timeout = args::millis(o.default_timeout_ms);
        pool_options.balance = match o.balance {
            0 => Balance::RoundRobin,
            1 => {
                if o.p2c_default_rtt_ms == 0 || o.p2c_decay_ms == 0 {
                    return Err(Failure::new(
                        JINA_NET_INVALID_ARGUMENT,
                        "p2c_default_rtt_ms and p2c_decay_ms must be at least 1",
                    ));
                }
                Balance::PeakEwma(PeakEwmaConfig {
                    default_rtt: ms(o.p2c_default_rtt_ms),
                    decay: ms(o.p2c_decay_ms),
                })
            }
            other => {
                return Err(Failure::new(
                    JINA_NET_INVALID_ARGUMENT,
                    format!("unknown balance {other} (0 = ROUND_ROBIN, 1 = P2C_PEAK_EWMA)"),
                ))
            }
        };
        pool_options.in_flight_limit = (o.max_in_flight_per_replica > 0).then_some(InFlightLimit {
            max_per_replica: o.max_in_flight_per_replica,
            max_queued: o.max_queued_sends,
        });
        pool_options.hedge = (o.max_hedges > 0).then_some(HedgePolicy {
            delay: ms(o.hedge_delay_ms),
            max_hedges: o.max_hedges,
        });
        pool_options.metrics = o.metrics;
        // SAFETY: the struct promises `root_certificates_pem_len` readable bytes.
        let pem = unsafe {
            args::bytes(
                o.root_certificates_pem,
                o.root_certificates_pem_len,
                "root_certificates_pem",
            )
        }?;
        pool_options.connection = ConnectionOptions {
            channel: ChannelOptions {
                connect_timeout: args::millis(o.connect_timeout_ms),
                tcp_user_timeout: args::millis(o.tcp_user_timeout_ms),
                http2_keepalive: args::millis(o.keepalive_interval_ms).map(|interval| Http2Keepalive {
                    interval,
                    timeout: ms(o.keepalive_timeout_ms.max(1)),
                }),
                ..Default::default()
            },
            tls: unsafe { tls_options(o, pem) }?,
            liveness: LivenessPolicy {
                probe_after: args::millis(o.probe_after_ms),
                probe_timeout: ms(o.probe_timeout_ms.max(1)),
                fail_over_unanswered: o.fail_over_unanswered,
            },
        };
        pool_options.connection.channel.compression = compression(o.compression)?;
        pool_options.dns_refresh = args::millis(o.dns_refresh_ms);
        delivery = match (o.caller_driven, o.callbacks_in_poll) {
            (true, _) => Delivery::CallerDriven,
            (false, true) => Delivery::InPoll,
            (false, false) => Delivery::LibraryThreads,
        };
    }
    Ok((pool_options, delivery))
}
