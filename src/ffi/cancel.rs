//! The registry of sends that can be cancelled by id (`jina_net_pool_cancel`).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// Sends in flight that can be cancelled, by id.
#[derive(Default)]
pub(super) struct Registry {
    sends: Mutex<HashMap<u64, CancellationToken>>,
}

impl Registry {
    fn sends(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CancellationToken>> {
        self.sends.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers send `id`; it is cancelled through the returned token.
    pub(super) fn register(&self, id: u64) -> CancellationToken {
        let token = CancellationToken::new();
        self.sends().insert(id, token.clone());
        token
    }

    /// Cancels send `id`; false when it is not (or no longer) registered.
    pub(super) fn cancel(&self, id: u64) -> bool {
        let token = self.sends().remove(&id);
        token.map(|t| t.cancel()).is_some()
    }

    /// Forgets send `id` (it completed).
    pub(super) fn completed(&self, id: u64) {
        self.sends().remove(&id);
    }
}
