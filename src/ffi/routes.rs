//! `jina_net_pool_routes`: the routing table as text.

use std::ffi::{c_char, CString};

use super::args::out;
use super::pool::{jina_net_pool, pool_ref};
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};

/// Writes the routing table as text to `*out_table` (free with `jina_net_string_free`): one line per
/// head or shard, `<deployment>\t<head|shard N>\t<address>,<address>...\t<state>,<state>...`,
/// deployments sorted; the states, one per address in the same order, are `idle` (nothing answered
/// on it yet: not connected, or connected and silent), `ready` (it answered), `failing` (its
/// connection fails) and `unresponsive` (it stopped answering calls). Deployment names hold no
/// control character and addresses no comma (both are refused when added), so the text splits
/// unambiguously on tabs, newlines and commas.
///
/// # Safety
/// `pool` must be a live pool; `out_table` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_routes(
    pool: *mut jina_net_pool,
    out_table: *mut *mut c_char,
) -> jina_net_result {
    boundary("jina_net_pool_routes", || {
        // SAFETY: caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        let out_table = out(out_table, "out_table")?;
        let mut text = String::new();
        for route in pool.pool.routing_table()? {
            let states: Vec<&str> = route.states.iter().map(|s| s.name()).collect();
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                route.deployment,
                route.replica_set,
                route.addresses.join(","),
                states.join(",")
            ));
        }
        let text = CString::new(text.replace('\0', "?")).map_err(|e| Failure::new(JINA_NET_PANIC, e.to_string()))?;
        *out_table = text.into_raw();
        Ok(())
    })
}
