//! [`Signal`]: a one-way "it happened" (a pool closed, a connection lost) that many tasks wait on.
//!
//! Every send waits on two of these while it runs (its pool closing, its connection being given up),
//! so waiting must cost little. With tokio-util's `CancellationToken` the two waits cost about 1k
//! user-space instructions per send more (callgrind, caller-driven C client, 100 B): its tree's lock
//! to read the flag, a `Notify` waiter added and removed. Here the flag is an atomic, and a waiter is
//! one slot of a vector under a lock taken once to add it and once to remove it (a poll by the same
//! task again takes no lock).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Fired once, never reset; clones share it.
#[derive(Clone, Default)]
pub struct Signal {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    fired: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// The wakers of the tasks waiting; a slot stays taken by its [`Fired`] until it is dropped.
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal").field("fired", &self.is_fired()).finish()
    }
}

impl Inner {
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Fires the signal and wakes every waiter (again: nothing).
    pub fn fire(&self) {
        if self.inner.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers: Vec<Waker> = self.inner.waiters().slots.iter_mut().filter_map(Option::take).collect();
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Completes once the signal has fired (at once if it has).
    pub fn fired(&self) -> Fired<'_> {
        Fired {
            inner: &self.inner,
            slot: None,
        }
    }
}

/// The future of [`Signal::fired`].
#[must_use = "futures do nothing unless polled"]
pub struct Fired<'a> {
    inner: &'a Inner,
    /// The slot holding a clone of the waker, and the waker (to see, without the lock, that a
    /// poll by the same task needs no new one).
    slot: Option<(usize, Waker)>,
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        // Polled again by the same task (the usual case): its waker is in its slot already.
        if self.slot.as_ref().is_some_and(|(_, w)| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let inner = self.inner;
        let waker = cx.waker().clone();
        let mut waiters = inner.waiters();
        // `fire` sets the flag before it takes the lock: read under the lock, either the flag is seen
        // here or the waker stored here is woken by `fire`.
        if inner.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let i = match &self.slot {
            Some((i, _)) => {
                waiters.slots[*i] = Some(waker.clone());
                *i
            }
            None => match waiters.free.pop() {
                Some(i) => {
                    waiters.slots[i] = Some(waker.clone());
                    i
                }
                None => {
                    waiters.slots.push(Some(waker.clone()));
                    waiters.slots.len() - 1
                }
            },
        };
        drop(waiters);
        self.slot = Some((i, waker));
        Poll::Pending
    }
}

impl Drop for Fired<'_> {
    fn drop(&mut self) {
        if let Some((i, _)) = self.slot {
            let mut waiters = self.inner.waiters();
            waiters.slots[i] = None;
            waiters.free.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A two-worker runtime with `n` tasks waiting for `signal`.
    fn waiters(signal: &Signal, n: usize) -> (tokio::runtime::Runtime, Vec<tokio::task::JoinHandle<()>>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let tasks = (0..n)
            .map(|_| {
                let s = signal.clone();
                rt.spawn(async move { s.fired().await })
            })
            .collect();
        (rt, tasks)
    }

    #[test]
    fn wakes_every_waiter_and_frees_their_slots() {
        let signal = Signal::new();
        let (rt, waiting) = waiters(&signal, 8);
        // A waiter that gives up (dropped while waiting) leaves its slot to the next one.
        rt.block_on(async {
            let gave_up = tokio::time::timeout(Duration::from_millis(20), signal.fired()).await;
            assert!(gave_up.is_err(), "not fired yet");
            let again = tokio::time::timeout(Duration::from_millis(20), signal.fired()).await;
            assert!(again.is_err());
        });
        assert!(signal.inner.waiters().slots.len() <= 9, "slots are reused");
        assert!(!signal.is_fired());
        signal.fire();
        signal.fire();
        assert!(signal.is_fired());
        rt.block_on(async {
            for w in waiting {
                tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap();
            }
            // After firing: at once, and a clone sees it.
            signal.clone().fired().await;
        });
    }

    #[test]
    fn fired_from_another_thread_while_polled_from_many() {
        for _ in 0..200 {
            let signal = Signal::new();
            let (rt, tasks) = waiters(&signal, 4);
            let s = signal.clone();
            std::thread::spawn(move || s.fire()).join().unwrap();
            rt.block_on(async {
                for t in tasks {
                    tokio::time::timeout(Duration::from_secs(10), t).await.unwrap().unwrap();
                }
            });
        }
    }
}
