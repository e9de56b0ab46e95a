//! The executor of a channel's own tasks (its request buffer, its HTTP/2 connection, hyper's
//! per-request tasks) on the library runtime: each time such a task is woken, it lets the tasks
//! already ready on its worker run before it, so one wake-up of the connection writes what several
//! sends queued.
//!
//! Why: on tokio's multi-thread scheduler a task woken by the task running goes into the worker's
//! LIFO slot and runs next. A send wakes the request buffer, which wakes the connection, which
//! runs at once and writes that one request: one `writev` per request even when 16 sends were
//! ready together (1.19 per request at 16 in flight, 0.46 with this: BENCHMARKS.md). A task that
//! wakes itself while it is polled is put at the back of the run queue instead (tokio treats it as
//! a yield), so the first poll after a wake-up does only that, and the next poll, after the ready
//! sends, does the work. The price: one more poll per wake-up, which at 1 in flight (nothing to
//! batch) is about 5k instructions per request. A current-thread runtime (a caller-driven pool) has
//! no LIFO slot; its channels keep tokio's plain spawn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

type BoxTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Spawns on a runtime; for a multi-thread runtime, every task runs after the tasks ready before it
/// was woken (see the module documentation).
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
        if self.ready_last {
            drop(self.handle.spawn(ReadyLast { task, passed: false }));
        } else {
            drop(self.handle.spawn(task));
        }
    }
}

/// `task`, re-queued once behind the ready tasks each time it is woken.
struct ReadyLast {
    task: BoxTask,
    /// The wake-up's first poll has re-queued the task: the next poll runs it.
    passed: bool,
}

impl Future for ReadyLast {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.passed {
            self.passed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.passed = false;
        self.task.as_mut().poll(cx)
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
        executor.spawn(Box::pin(async move { tx.send(7).unwrap() }));
        rt.block_on(tokio::task::yield_now());
        assert_eq!(rx.try_recv(), Ok(7));
    }
}
