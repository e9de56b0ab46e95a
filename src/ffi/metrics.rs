//! `jina_net_pool_metrics_text`: a pool's metrics in the Prometheus text exposition format.

use std::ffi::{c_char, CString};

use super::args::out;
use super::pool::{jina_net_pool, pool_ref};
use super::result::{boundary, jina_net_result, Failure};

/// Writes the pool's metrics to `*out_text` in the Prometheus text exposition format (version
/// 0.0.4), a NUL-terminated string to free with `jina_net_string_free`. Per deployment, head or
/// shard (label `shard`: `head` or the shard id) and replica (`address`): the histogram
/// `jina_sending_request_seconds` (jina's name: time from sending a call to a replica to its
/// answer; buckets 0.5 ms .. 10 s), the counters `jina_net_requests_total` (calls, retries and
/// hedges included), `jina_net_errors_total` (label `code`, e.g. `UNAVAILABLE`),
/// `jina_net_retries_total`, `jina_net_hedges_total`, `jina_net_ejections_total`, and the gauge
/// `jina_net_in_flight`; with in-flight limits also `jina_net_queued_sends` and
/// `jina_net_rejected_sends_total` per head or shard. Replicas removed from the pool drop out.
/// `JINA_NET_INVALID_ARGUMENT` when the pool was created without `metrics`.
///
/// # Safety
/// `pool` must be a live pool; `out_text` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_metrics_text(
    pool: *mut jina_net_pool,
    out_text: *mut *mut c_char,
) -> jina_net_result {
    boundary("jina_net_pool_metrics_text", || {
        let out_text = out(out_text, "out_text")?;
        // SAFETY: the caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        let text = pool.pool.metrics_text()?.ok_or_else(|| {
            Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                "the pool keeps no metrics (create it with jina_net_pool_options.metrics = true)",
            )
        })?;
        let text = CString::new(text).map_err(|_| {
            Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                "metrics text holds a NUL byte",
            )
        })?;
        *out_text = text.into_raw();
        Ok(())
    })
}
