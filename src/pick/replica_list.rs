//! The replicas of one deployment's head or shard, picked round robin as jina 3.1's `ReplicaList` does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::order;
use super::p2c::p2c;
use crate::address::Address;
use crate::error::Result;
use crate::policy::{RetryBudgetPolicy, Tuning};
use crate::replica::{Queue, Replica, ReplicaConfig, RetryBudget};

/// A replica picked for a send, with the list it was picked from (for fail-over). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pick {
    /// The replicas of the list when it was picked from.
    pub replicas: Arc<Vec<Arc<Replica>>>,
    /// The index of the picked replica.
    pub index: usize,
    /// The list's queue of sends waiting for an in-flight slot (only when limits are on).
    pub queue: Option<Arc<Queue>>,
    /// The list's retry budget (only when the pool has one).
    pub budget: Option<Arc<RetryBudget>>,
}

impl Pick {
    /// The picked replica.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replicas[self.index]
    }
}

/// The replicas of one head or shard, in the order they were added (jina's `ReplicaList`, whose
/// method names it keeps).
///
/// `next_connection` takes `&self` (the cursor is atomic) so routing can run under a shared lock;
/// adding and removing take `&mut self`.
#[derive(Debug, Default)]
pub struct ReplicaList {
    /// Shared with the picks of sends in flight; changed copy-on-write.
    replicas: Arc<Vec<Arc<Replica>>>,
    index: HashMap<String, usize>,
    /// Monotonic pick counter; the round-robin cursor is `cursor % len`.
    cursor: AtomicUsize,
    /// Sends waiting for an in-flight slot (used only with in-flight limits).
    queue: Arc<Queue>,
    /// The retry budget of the list, when the pool throttles retries.
    budget: Option<Arc<RetryBudget>>,
}

impl ReplicaList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty list whose retries are throttled by a budget (gRFC A6) when `budget` is given.
    pub fn with_budget(budget: Option<&RetryBudgetPolicy>) -> Self {
        ReplicaList {
            budget: budget.map(|b| Arc::new(RetryBudget::new(b))),
            ..Self::default()
        }
    }

    /// The list's retry budget, when it has one.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_deref()
    }

    fn normalised_cursor(&self) -> usize {
        match self.replicas.len() {
            0 => 0,
            len => self.cursor.load(Ordering::Relaxed) % len,
        }
    }

    /// Adds a replica at `address` unless the list has one already (`https://h:1` and `h:1` are
    /// the same replica). Returns whether one was added.
    pub fn add_connection(&mut self, address: &str, config: &ReplicaConfig) -> Result<bool> {
        let address = Address::parse(address)?;
        if self.index.contains_key(address.key()) {
            return Ok(false);
        }
        self.add(config.open(address)?);
        Ok(true)
    }

    /// Adds an already opened replica (no-op when its address is known). Returns whether it was added.
    pub fn add(&mut self, replica: Arc<Replica>) -> bool {
        let key = replica.address().key();
        if self.index.contains_key(key) {
            return false;
        }
        *self.cursor.get_mut() = self.normalised_cursor();
        self.index.insert(key.to_owned(), self.replicas.len());
        Arc::make_mut(&mut self.replicas).push(replica);
        true
    }

    /// Removes the replica at `address`, returning it, or `None` when the list has none.
    /// As in jina, the round-robin cursor is first reset to `cursor % (len - 1)`, then the later
    /// replicas move down one place.
    pub fn remove_connection(&mut self, address: &str) -> Option<Arc<Replica>> {
        let key = Address::parse(address).ok()?;
        let idx = self.index.remove(key.key())?;
        let remaining = self.replicas.len() - 1;
        let cursor = self.normalised_cursor();
        *self.cursor.get_mut() = if remaining > 0 { cursor % remaining } else { 0 };
        let removed = Arc::make_mut(&mut self.replicas).remove(idx);
        for i in self.index.values_mut() {
            if *i > idx {
                *i -= 1;
            }
        }
        Some(removed)
    }

    /// The next replica, round robin starting from the first one added; `None` when empty.
    pub fn next_connection(&self) -> Option<&Arc<Replica>> {
        let len = self.replicas.len();
        if len == 0 {
            return None;
        }
        let pick = self.cursor.fetch_add(1, Ordering::Relaxed) % len;
        self.replicas.get(pick)
    }

    /// Round robin as [`next_connection`](Self::next_connection), but skipping ejected replicas
    /// while a healthy one exists (if every replica is ejected, the round-robin pick).
    pub fn pick(&self) -> Option<Pick> {
        let len = self.replicas.len();
        if len == 0 {
            return None;
        }
        let first = self.cursor.fetch_add(1, Ordering::Relaxed) % len;
        let index = order::live(&self.replicas, order::from(first, len))
            .next()
            .unwrap_or(first);
        Some(Pick {
            replicas: self.replicas.clone(),
            index,
            queue: None,
            budget: self.budget.clone(),
        })
    }

    /// The pick of a pool with optional features on: p2c over PeakEWMA costs when that is the
    /// policy (round robin when no drawn replica can be used), else [`pick`](Self::pick); with the
    /// list's queue when in-flight limits are on.
    pub(crate) fn pick_tuned(&self, tuning: &Tuning) -> Option<Pick> {
        let max = tuning.limit.map(|l| l.max_per_replica);
        let p2c = tuning.balance.ewma().and_then(|_| p2c(&self.replicas, max));
        let mut pick = match p2c {
            Some(index) => Pick {
                replicas: self.replicas.clone(),
                index,
                queue: None,
                budget: self.budget.clone(),
            },
            None => self.pick()?,
        };
        if max.is_some() {
            pick.queue = Some(self.queue.clone());
        }
        Some(pick)
    }

    /// The queue of sends waiting for an in-flight slot on this list.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Every replica, in order.
    pub fn replicas(&self) -> &[Arc<Replica>] {
        &self.replicas
    }

    /// Whether the list has a replica at `address`.
    pub fn has_connection(&self, address: &str) -> bool {
        Address::parse(address).is_ok_and(|a| self.index.contains_key(a.key()))
    }

    /// Whether the list has any replica.
    pub fn has_connections(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// The number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Drops every replica (calls already running on them finish).
    pub fn close(&mut self) {
        self.replicas = Arc::default();
        self.index.clear();
        *self.cursor.get_mut() = 0;
    }
}
