//! Hedged requests, with gRPC's hedging-policy semantics: a send the caller marked idempotent that
//! has no answer after `delay` is sent again to another replica of the same head or shard, up to
//! `max_hedges` more times. The first successful answer wins and the other attempts are dropped
//! (their HTTP/2 streams are reset, which cancels them at the replica). A failed attempt starts the
//! next hedge at once (gRPC's "non-fatal status"); when every attempt failed, the send fails with the
//! last error. Each attempt follows the pool's retry policy. Sends not marked idempotent are never
//! hedged.

use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::connection::{CallOptions, Response};
use crate::error::Result;
use crate::health::OutlierPolicy;
use crate::load::Tuning;
use crate::replica_list::Pick;
use crate::request::{Method, Payload};
use crate::retry::RetryPolicy;
use crate::send::{send_with_retries, Tuned};

/// The hedging policy of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgePolicy {
    /// How long to wait for an answer before sending the next hedge (0 = all at once).
    pub delay: Duration,
    /// Hedges at most, beyond the first attempt (0 = no hedging; gRPC's `maxAttempts - 1`).
    pub max_hedges: u32,
}

/// The replica for hedge number `k` (1-based): the first replica after the pick that is not in
/// flight for this send and not ejected; with p2c the cheapest such replica.
fn hedge_target(pick: &Pick, used: &[usize], tuning: &Tuning) -> usize {
    let replicas = &pick.replicas;
    let n = replicas.len();
    let free = |i: &usize| !used.contains(i);
    let order = || (1..=n).map(|k| (pick.index + k) % n);
    if let Some(config) = tuning.ewma() {
        let cheapest = order()
            .filter(free)
            .filter(|&i| !replicas[i].health().is_ejected())
            .filter_map(|i| {
                let load = replicas[i].load()?;
                Some((i, load.ewma()?.cost(load.in_flight(), config)))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = cheapest {
            return i;
        }
    }
    order()
        .filter(free)
        .find(|&i| !replicas[i].health().is_ejected())
        .or_else(|| order().find(free))
        .unwrap_or((pick.index + used.len()) % n)
}

/// Sends to the pick's replica and hedges per `policy`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_hedged(
    pick: &Pick,
    payload: &Payload,
    method: Method,
    options: &CallOptions,
    retry: &RetryPolicy,
    outlier: &OutlierPolicy,
    tuning: &Tuning,
    policy: &HedgePolicy,
) -> Result<Response> {
    let queue = pick.queue.as_deref();
    let attempt = |index: usize, hedge: bool| {
        send_with_retries(
            &pick.replicas,
            index,
            payload,
            method,
            options,
            retry,
            outlier,
            Some(Tuned { tuning, queue, hedge }),
        )
    };
    let mut running = FuturesUnordered::new();
    let mut used = vec![pick.index];
    running.push(attempt(pick.index, false));
    let mut hedges_left = policy.max_hedges;
    loop {
        let delay = tokio::time::sleep(policy.delay);
        tokio::pin!(delay);
        let hedge_now = tokio::select! {
            biased;
            Some(result) = running.next() => match result {
                Ok(response) => return Ok(response),
                Err(e) => {
                    if hedges_left == 0 && running.is_empty() {
                        return Err(e);
                    }
                    hedges_left > 0
                }
            },
            _ = &mut delay, if hedges_left > 0 => true,
        };
        if hedge_now {
            hedges_left -= 1;
            let index = hedge_target(pick, &used, tuning);
            used.push(index);
            tracing::debug!(
                address = %pick.replicas[index].address(),
                first = %pick.connection().address(),
                "hedging the send"
            );
            running.push(attempt(index, true));
        }
    }
}
