//! The executor of a channel's own tasks (its request buffer, its HTTP/2 connection, hyper's
//! per-request tasks), and the scope of their polls.
//!
//! On the library runtime each such task, when woken, lets the tasks already ready on its worker run
//! before it, so one wake-up of the connection writes what several sends queued. Why: on tokio's
//! multi-thread scheduler a task woken by the task running goes into the worker's LIFO slot and runs
//! next. A send wakes the request buffer, which wakes the connection, which runs at once and writes
//! that one request: one `writev` per request even when 16 sends were ready together (measured 1.19
//! per request at 16 in flight, 0.46 with this; BENCHMARKS.md). A task that wakes itself while it is
//! polled is put at the back of the run queue instead (tokio treats it as a yield), so the first
//! poll after a wake-up does only that, and the next poll, after the ready sends, does the work. A
//! current-thread runtime (a caller-driven pool) has no LIFO slot; there the tasks run as spawned.
//!
//! On either runtime a channel task's poll is a scope ([`channel_task_poll`]): the connection's
//! writes made during one poll can be collected and written together at its end
//! (`transport::coalesce`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

type BoxTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Spawns channel tasks on a runtime: each poll of such a task is a [`channel_task_poll`] scope, and
/// on a multi-thread runtime the task runs after the tasks ready before it was woken.
#[derive(Clone, Debug)]
pub struct ChannelExecutor {
    handle: Handle,
    ready_last: bool,
}

impl ChannelExecutor {
    pub fn new(handle: &Handle) -> ChannelExecutor {
        ChannelExecutor {
            handle: handle.clone(),
            ready_last: matches!(handle.runtime_flavor(), tokio::runtime::RuntimeFlavor::MultiThread),
        }
    }

    /// Spawns `task` (for `hyper::rt::Executor` implementations, which cannot name tokio's types).
    pub fn spawn(&self, task: BoxTask) {
        drop(self.handle.spawn(ChannelTask {
            task,
            ready_last: self.ready_last,
            passed: false,
        }));
    }
}

/// A channel task: each poll a scope; with `ready_last`, re-queued once behind the ready tasks each
/// time it is woken.
struct ChannelTask {
    task: BoxTask,
    ready_last: bool,
    /// The wake-up's first poll has re-queued the task: the next poll runs it.
    passed: bool,
}

impl Future for ChannelTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready_last && !self.passed {
            self.passed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.passed = false;
        let _scope = Scope::enter();
        self.task.as_mut().poll(cx)
    }
}

thread_local! {
    /// The scope of the channel-task poll running on this thread (0: none), and the last one given.
    static SCOPE: (Cell<u64>, Cell<u64>) = const { (Cell::new(0), Cell::new(0)) };
}

/// The poll of a channel task running on this thread: a number that differs from every earlier
/// poll's on this thread, or `None` outside such a poll. What a connection's I/O puts off until the
/// end of a poll it must do in a later one (the task is polled again when it wakes itself).
pub fn channel_task_poll() -> Option<u64> {
    let current = SCOPE.with(|(current, _)| current.get());
    (current != 0).then_some(current)
}

/// Marks this thread as running a channel task's poll until dropped (also when the poll panics).
struct Scope {
    previous: u64,
}

impl Scope {
    fn enter() -> Scope {
        SCOPE.with(|(current, last)| {
            let id = last.get() + 1;
            last.set(id);
            Scope {
                previous: current.replace(id),
            }
        })
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        SCOPE.with(|(current, _)| current.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A task spawned through the executor by a running task runs after the tasks already queued
    /// (without it, tokio's LIFO slot would run it first), and completes.
    #[test]
    fn a_woken_channel_task_runs_after_the_ready_tasks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let executor = ChannelExecutor::new(rt.handle());
        assert!(executor.ready_last);
        let o = order.clone();
        rt.spawn(async move {
            let mut joins = Vec::new();
            for i in 0..3 {
                let o = o.clone();
                joins.push(tokio::spawn(async move { o.lock().unwrap().push(format!("send {i}")) }));
            }
            let o2 = o.clone();
            executor.spawn(Box::pin(async move {
                o2.lock().unwrap().push("connection".into());
                done_tx.send(()).unwrap();
            }));
            for j in joins {
                j.await.unwrap();
            }
        });
        done_rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let order = order.lock().unwrap().clone();
        assert_eq!(order.last().map(String::as_str), Some("connection"), "{order:?}");
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn a_current_thread_runtime_spawns_plainly() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let executor = ChannelExecutor::new(rt.handle());
        assert!(!executor.ready_last);
        let (tx, rx) = std::sync::mpsc::channel();
        assert_eq!(channel_task_poll(), None);
        executor.spawn(Box::pin(async move { tx.send(channel_task_poll()).unwrap() }));
        rt.block_on(tokio::task::yield_now());
        let scope = rx.try_recv().unwrap();
        assert!(scope.is_some());
        assert_eq!(channel_task_poll(), None);
        // the next poll is another scope
        let (tx, rx) = std::sync::mpsc::channel();
        executor.spawn(Box::pin(async move { tx.send(channel_task_poll()).unwrap() }));
        rt.block_on(tokio::task::yield_now());
        assert_ne!(rx.try_recv().unwrap(), scope);
    }
}
