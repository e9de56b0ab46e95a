//! Sending: the one place that decides how a send runs at one target — hedged when the pool hedges
//! and the caller marked the send idempotent, else with the pool's retries (one attempt when the
//! policy allows no retry) — from one [`SendPlan`] passed by reference.

mod hedge;
mod plan;
mod retry;

pub(crate) use plan::SendPlan;

use crate::error::Result;
use crate::pick::Pick;
use crate::replica::Response;

/// Sends the plan to one target (the replica picked in one head or shard).
pub(crate) async fn send_to_target(plan: &SendPlan, pick: &Pick) -> Result<Response> {
    match plan.policy.hedge() {
        Some(hedge) if plan.idempotent => hedge::send_hedged(plan, pick, hedge).await,
        _ => retry::send_with_retries(plan, pick, pick.index, false).await,
    }
}
