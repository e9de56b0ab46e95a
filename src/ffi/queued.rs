//! Pools with `callbacks_in_poll`: the library threads run the pool (its connections, timers,
//! retries), and a completed send's callback is handed over to the threads that call
//! `jina_net_pool_poll`, which run the callbacks of every send completed since, on the calling
//! thread. A thread waiting in the poll is woken once for a burst of completions: the wake-up runs
//! after the tasks ready on the library worker (`runtime::after_ready_tasks`), so the completions
//! they make join it, instead of one thread switch per completion.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::completion::{Completion, Handoff, Outcome};
use super::result::{jina_net_result::JINA_NET_RUNTIME_ERROR, Failure};
use crate::runtime;

/// A vector of completions with room for more than this many is not kept between polls.
const KEPT_MAX: usize = 4096;

type Completed = Vec<(Completion, Outcome)>;

/// The completions of a `callbacks_in_poll` pool waiting for a poll.
pub(super) struct CompletionQueue {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    completed: Completed,
    /// The vector the last poll emptied, given back for the next one.
    kept: Completed,
    /// False once the pool is freed: completions fire where they happen, as on library threads.
    accepting: bool,
    /// The pool is closed: polls stop waiting.
    closed: bool,
    /// Threads waiting in a poll.
    waiting: usize,
    /// A wake-up of the waiting threads is on its way.
    wake_planned: bool,
}

impl CompletionQueue {
    pub(super) fn new() -> Arc<CompletionQueue> {
        Arc::new(CompletionQueue {
            state: Mutex::new(State {
                completed: Vec::new(),
                kept: Vec::new(),
                accepting: true,
                closed: false,
                waiting: 0,
                wake_planned: false,
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock (callbacks run without it); recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes a waiting poll, if there is one and completions are queued.
    fn wake(&self) {
        let mut s = self.lock();
        s.wake_planned = false;
        if s.waiting > 0 && !s.completed.is_empty() {
            drop(s);
            self.ready.notify_one();
        }
    }

    /// The pool was closed: polls stop waiting (those queued still run in the next polls).
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The pool is freed: the callbacks queued run now, on this thread; later completions (sends still
    /// pending) fire on the library thread that completes them.
    pub(super) fn shut(&self) {
        let completed = {
            let mut s = self.lock();
            s.closed = true;
            s.accepting = false;
            std::mem::take(&mut s.completed)
        };
        self.ready.notify_all();
        let _in_callbacks = runtime::driving();
        for (completion, outcome) in completed {
            completion.complete(outcome);
        }
    }

    /// Waits until a send has completed (`timeout` `None`: no time limit; zero: no wait) or the pool
    /// is closed, then runs the callbacks of every send completed so far on this thread; how many.
    pub(super) fn poll(&self, timeout: Option<Duration>) -> Result<usize, Failure> {
        if runtime::in_library_context() {
            return Err(Failure::new(
                JINA_NET_RUNTIME_ERROR,
                "jina_net_pool_poll called from a callback or on a library thread",
            ));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut s = self.lock();
        while s.completed.is_empty() && !s.closed {
            s.waiting += 1;
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        s.waiting -= 1;
                        return Ok(0);
                    }
                    self.ready.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
            s.waiting -= 1;
        }
        let mut batch = std::mem::take(&mut s.kept);
        std::mem::swap(&mut batch, &mut s.completed);
        drop(s);
        let n = batch.len();
        {
            let _in_callbacks = runtime::driving();
            for (completion, outcome) in batch.drain(..) {
                completion.complete(outcome);
            }
        }
        if batch.capacity() <= KEPT_MAX {
            let mut s = self.lock();
            if s.kept.capacity() == 0 {
                s.kept = batch;
            }
        }
        Ok(n)
    }
}

impl Handoff for CompletionQueue {
    fn hand_over(self: Arc<Self>, completion: Completion, outcome: Outcome) -> Option<(Completion, Outcome)> {
        let mut s = self.lock();
        if !s.accepting {
            return Some((completion, outcome));
        }
        s.completed.push((completion, outcome));
        if s.waiting > 0 && !s.wake_planned {
            s.wake_planned = true;
            drop(s);
            runtime::after_ready_tasks(move || self.wake());
        }
        None
    }
}
