//! Hedged sends, with gRPC's hedging-policy semantics (see [`HedgePolicy`]): the first successful
//! answer wins and the other attempts are dropped (their HTTP/2 streams are reset, which cancels them
//! at the replica). A failed attempt starts the next hedge at once (gRPC's "non-fatal status"); when
//! every attempt failed, the send fails with the last error. Each attempt follows the pool's retry
//! policy.

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::plan::SendPlan;
use super::retry::send_with_retries;
use crate::error::Result;
use crate::pick::{cheapest, order, Pick};
use crate::policy::HedgePolicy;
use crate::replica::Response;

/// The replica of the next hedge: the first replica after the pick that is not in flight for this
/// send and not ejected; with p2c the cheapest such replica.
fn hedge_target(plan: &SendPlan, pick: &Pick, used: &[usize]) -> usize {
    let replicas = &pick.replicas[..];
    let n = replicas.len();
    let free = |i: &usize| !used.contains(i);
    let p2c = plan.policy.tuning.as_ref().is_some_and(|t| t.balance.ewma().is_some());
    p2c.then(|| cheapest(replicas, order::after(pick.index, n).filter(free)))
        .flatten()
        .or_else(|| order::live(replicas, order::after(pick.index, n).filter(free)).next())
        .unwrap_or((pick.index + used.len()) % n)
}

/// Sends to the pick's replica and hedges per `policy`.
pub(crate) async fn send_hedged(plan: &SendPlan, pick: &Pick, policy: &HedgePolicy) -> Result<Response> {
    let mut running = FuturesUnordered::new();
    let mut used = vec![pick.index];
    running.push(send_with_retries(plan, pick, pick.index, false));
    let mut hedges_left = policy.max_hedges;
    let mut last_error = None;
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
                    last_error = Some(e);
                    hedges_left > 0
                }
            },
            _ = &mut delay, if hedges_left > 0 => true,
        };
        if hedge_now && pick.budget.as_ref().is_some_and(|b| !b.allows_retry()) {
            // The budget is low: no more hedges (gRFC A6 throttles hedges as retries).
            hedges_left = 0;
            if running.is_empty() {
                return Err(last_error.take().expect("a hedge starts at once only after a failure"));
            }
            continue;
        }
        if hedge_now {
            hedges_left -= 1;
            let index = hedge_target(plan, pick, &used);
            used.push(index);
            tracing::debug!(
                address = %pick.replicas[index].address(),
                first = %pick.replica().address(),
                "hedging the send"
            );
            running.push(send_with_retries(plan, pick, index, true));
        }
    }
}
