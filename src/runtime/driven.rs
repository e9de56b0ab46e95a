//! A runtime driven by its caller's threads: a current-thread tokio runtime that makes progress only
//! while a caller runs [`DrivenRuntime::drive`]. Connections opened on it (a pool made with
//! `ConnectionPool::with_runtime`) do their I/O on the thread that drives it, so a send made
//! and completed there crosses no thread: the caller's thread writes the request, waits in the poller
//! for the answer and runs the completion. Nothing runs while nobody drives it.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use super::context::{driving, ensure_not_forked, in_library_context, with_library_tracing};
use super::runner::{driving_tasks, Inline, PollGuard, Tasks};
use crate::error::{Error, Result};

/// A current-thread runtime run by whoever calls [`drive`](Self::drive). Several threads may call
/// it; one of them runs the runtime at a time.
pub struct DrivenRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
    /// The tasks given to [`spawn`](Self::spawn): one tokio task runs them all (`runner.rs`).
    tasks: Arc<Tasks>,
}

impl std::fmt::Debug for DrivenRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrivenRuntime").finish_non_exhaustive()
    }
}

impl DrivenRuntime {
    /// A new runtime with I/O and timers; it starts no thread.
    pub fn new() -> Result<Self> {
        Self::with_poll_guard(None)
    }

    /// [`new`](Self::new), its tasks polled through `guard` (see [`PollGuard`]): with a guard that
    /// catches panics, a task that panics is dropped alone. With a guard the tasks are polled
    /// inside the future [`drive`](Self::drive) runs, on the thread that runs the runtime (which
    /// saves tokio a check of its I/O per poll that returns: `runner::Inline`): a panic the guard
    /// lets through unwinds out of `drive` (without a guard the runner is a tokio task, which
    /// catches it).
    pub fn with_poll_guard(guard: Option<PollGuard>) -> Result<Self> {
        ensure_not_forked()?;
        // Sends queued from other threads (outside a poll) are taken before local tasks, every tick:
        // the sends of a batch then start together and their requests go out in one write, instead of
        // one send per tick, each flushed on its own (measured: 1.77 → 0.30 writev per request at 16
        // in flight).
        let runtime = Builder::new_current_thread()
            .enable_all()
            .global_queue_interval(1)
            .build()
            .map_err(|e| Error::Runtime(format!("failed to create a caller-driven runtime: {e}")))?;
        let inline = guard.and_then(|_| Inline::learn(&runtime));
        Ok(DrivenRuntime {
            handle: runtime.handle().clone(),
            tasks: Arc::new(Tasks::new(runtime.handle().clone(), guard, inline)),
            runtime: Some(runtime),
        })
    }

    /// The handle to spawn on (from any thread; the task runs when the runtime is driven).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `task` (given from any thread) when the runtime is driven, polled with the other tasks
    /// given here by one tokio task (no task of its own: see `runner.rs`). While no thread drives
    /// the runtime, the task waits for the next drive: a burst of sends made between two polls
    /// costs no wake-up each, and their requests start together. A task that panics drops the
    /// others that run with it (they complete as dropped), unless the runtime has a [`PollGuard`]
    /// that catches it: catch a panic inside the task to keep them.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        self.tasks.push(Box::pin(task));
    }

    /// Runs the runtime's tasks and I/O on the calling thread until `until` completes (its output)
    /// or `timeout` passes (`None`). `timeout` `None` = no limit; zero = only the work that is ready
    /// now (I/O already received, tasks already woken), without waiting.
    ///
    /// Refused on a library runtime thread and while the thread drives a runtime already (e.g. in a
    /// completion callback). Like any `block_on`, it panics inside an async context of another runtime.
    pub fn drive<F: Future>(&self, until: F, timeout: Option<Duration>) -> Result<Option<F::Output>> {
        if in_library_context() {
            return Err(Error::Runtime(
                "a caller-driven runtime was driven on a library thread or while driving one (e.g. from a completion callback)".into(),
            ));
        }
        ensure_not_forked()?;
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let run = || {
            let _driving = driving();
            let _driver = self.tasks.start_driving();
            let _tasks = driving_tasks(&self.tasks);
            let inner = pin!(async {
                if !self.tasks.is_inline() {
                    self.tasks.run_queued();
                }
                match timeout {
                    None => Some(until.await),
                    Some(t) if t.is_zero() => ready_now(until).await,
                    Some(t) => tokio::time::timeout(t, until).await.ok(),
                }
            });
            runtime.block_on(with_runner(&self.tasks, inner))
        };
        Ok(with_library_tracing(run))
    }
}

/// `future`, with the runtime's inline runner polled before it at each poll (`runner::Inline`).
fn with_runner<'a, T>(
    tasks: &'a Arc<Tasks>,
    mut future: Pin<&'a mut impl Future<Output = T>>,
) -> impl Future<Output = T> + 'a {
    std::future::poll_fn(move |cx| {
        tasks.poll_inline(cx);
        future.as_mut().poll(cx)
    })
}

/// Polls `until`, letting the runtime run what is ready in between: the first yield runs the tasks
/// already woken and reads the I/O already received, the second the tasks that I/O woke.
async fn ready_now<F: Future>(until: F) -> Option<F::Output> {
    let mut until = pin!(until);
    for round in 0..3 {
        if let Poll::Ready(out) = std::future::poll_fn(|cx| Poll::Ready(until.as_mut().poll(cx))).await {
            return Some(out);
        }
        if round < 2 {
            tokio::task::yield_now().await;
        }
    }
    None
}

/// How long dropping a runtime drives it so that what still runs can finish (a closed pool's sends
/// complete with their error, its connections close).
const DRAIN: Duration = Duration::from_millis(500);

impl Drop for DrivenRuntime {
    /// Drives the runtime until no task is left (at most 500 ms), then drops what is left: a task
    /// dropped there completes its send with an error. Inside a runtime (where driving is refused),
    /// only drops.
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        self.tasks.close();
        if Handle::try_current().is_ok() || in_library_context() {
            // The tasks that waited for a drive are dropped here: their sends complete as dropped.
            self.tasks.drop_queued();
            self.tasks.drop_inline();
            runtime.shutdown_background();
            return;
        }
        let handle = runtime.handle().clone();
        let tasks = &self.tasks;
        with_library_tracing(|| {
            let inner = pin!(async {
                if !tasks.is_inline() {
                    tasks.run_queued();
                }
                let drained = async {
                    while handle.metrics().num_alive_tasks() > 0 || tasks.inline_running() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                let _ = tokio::time::timeout(DRAIN, drained).await;
            });
            runtime.block_on(with_runner(tasks, inner))
        });
        // What the inline runner still holds is dropped here (their sends complete as dropped).
        self.tasks.drop_inline();
    }
}

#[cfg(test)]
mod tests {
    use super::super::runner::tests::DropFlag;
    use super::super::runner::KEPT_MAX;
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A guard that only polls.
    fn pass(poll: &mut dyn FnMut() -> Poll<()>) -> Poll<()> {
        poll()
    }

    #[test]
    fn a_guarded_runtime_made_inside_a_runtime_keeps_its_runner_a_tokio_task() {
        // Made in a completion callback, say: `block_on`, which learns the runtime's waker, is
        // refused there.
        let outer = Builder::new_current_thread().build().unwrap();
        let rt = outer.block_on(async { DrivenRuntime::with_poll_guard(Some(pass)).unwrap() });
        assert!(!rt.tasks.is_inline());
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        rt.spawn(async move { flag.store(true, Ordering::SeqCst) });
        rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
        assert!(ran.load(Ordering::SeqCst));
    }

    /// A runtime whose runner is a tokio task (no guard), and one whose runner `drive`'s future polls
    /// (a guard: `runner::Inline`).
    fn both_runtimes() -> [DrivenRuntime; 2] {
        let inline = DrivenRuntime::with_poll_guard(Some(pass)).unwrap();
        assert!(
            inline.tasks.is_inline(),
            "tokio's block_on polls with one waker per runtime"
        );
        [DrivenRuntime::new().unwrap(), inline]
    }

    #[test]
    fn runs_only_while_driven() {
        for rt in both_runtimes() {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            let task = rt.handle().spawn(async move { flag.store(true, Ordering::SeqCst) });
            std::thread::sleep(Duration::from_millis(20));
            assert!(
                !ran.load(Ordering::SeqCst),
                "nothing runs while nobody drives the runtime"
            );
            // Zero timeout: what is ready runs (the spawned task), nothing waits.
            assert_eq!(
                rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap(),
                None
            );
            assert!(ran.load(Ordering::SeqCst));
            assert_eq!(rt.drive(async { 7 }, Some(Duration::ZERO)).unwrap(), Some(7));
            assert!(rt.drive(task, None).unwrap().unwrap().is_ok());
        }
    }

    #[test]
    fn tasks_handed_over_between_drives_run_at_the_next_drive_and_their_vector_is_kept() {
        for rt in both_runtimes() {
            use std::sync::atomic::AtomicUsize;
            let ran = Arc::new(AtomicUsize::new(0));
            let queue = |n: usize| {
                for _ in 0..n {
                    let ran = ran.clone();
                    rt.spawn(async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                }
            };
            queue(5);
            assert_eq!(rt.tasks.queued().0, 5, "nobody drives: the tasks wait");
            rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 5);
            // The runner swaps its emptied vector with the queue's: after two batches both have room.
            queue(5);
            rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 10);
            let (queued, kept) = rt.tasks.queued();
            assert!(
                queued == 0 && kept >= 5,
                "the emptied vector is kept for the next batch: {kept}"
            );
            // The next batch queues into the kept vector (no allocation of its own) and runs too.
            queue(3);
            assert_eq!(rt.tasks.queued(), (3, kept));
            rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 13);
            // A burst past KEPT_MAX runs, and its vector is not kept.
            queue(KEPT_MAX + 1);
            let all = async {
                while ran.load(Ordering::SeqCst) < 13 + KEPT_MAX + 1 {
                    tokio::task::yield_now().await;
                }
            };
            assert_eq!(rt.drive(all, Some(Duration::from_secs(10))).unwrap(), Some(()));
            assert!(rt.tasks.queued().1 <= KEPT_MAX);
        }
    }

    #[test]
    fn tasks_wait_and_wake_in_their_slots_and_a_panic_drops_those_that_ran_with_it() {
        let rt = DrivenRuntime::new().unwrap();
        let zero = Some(Duration::ZERO);
        // Tasks that wait are woken in their slots, in any order, from another thread too.
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| tokio::sync::oneshot::channel::<u32>()).unzip();
        let sum = Arc::new(std::sync::atomic::AtomicU32::new(0));
        for rx in rxs {
            let sum = sum.clone();
            rt.spawn(async move {
                sum.fetch_add(rx.await.unwrap(), Ordering::SeqCst);
            });
        }
        rt.drive(std::future::pending::<()>(), zero).unwrap();
        let mut txs = txs.into_iter();
        let (first, second, third) = (txs.next().unwrap(), txs.next().unwrap(), txs.next().unwrap());
        third.send(100).unwrap();
        std::thread::spawn(move || first.send(1).unwrap()).join().unwrap();
        let three = |want: u32| {
            let sum = sum.clone();
            async move {
                while sum.load(Ordering::SeqCst) != want {
                    tokio::task::yield_now().await;
                }
            }
        };
        assert_eq!(rt.drive(three(101), Some(Duration::from_secs(10))).unwrap(), Some(()));
        second.send(10).unwrap();
        assert_eq!(rt.drive(three(111), Some(Duration::from_secs(10))).unwrap(), Some(()));

        // A task that panics takes the runner down: the task that waited with it is dropped.
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        rt.spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        rt.spawn(async { panic!("a task that panics (expected by this test)") });
        rt.drive(std::future::pending::<()>(), zero).unwrap();
        assert!(
            dropped.load(Ordering::SeqCst),
            "the waiting task was dropped with the runner"
        );
        // The next task starts a new runner.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        rt.spawn(async move { flag.store(true, Ordering::SeqCst) });
        rt.drive(std::future::pending::<()>(), zero).unwrap();
        assert!(ran.load(Ordering::SeqCst));
    }

    #[test]
    fn a_task_woken_by_another_runs_in_the_same_poll_of_the_runner() {
        for rt in both_runtimes() {
            let order = Arc::new(std::sync::Mutex::new(Vec::new()));
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let o = order.clone();
            rt.spawn(async move {
                rx.await.unwrap();
                o.lock().unwrap().push("woken task");
            });
            rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
            // This task spawns a tokio task, then wakes the one above: the runner polls the woken task
            // in its next round, before the tokio task runs (it used to wake itself for it, behind).
            let o = order.clone();
            rt.spawn(async move {
                let o = o.clone();
                drop(tokio::spawn(async move { o.lock().unwrap().push("tokio task") }));
                tx.send(()).unwrap();
            });
            let both = async {
                while order.lock().unwrap().len() < 2 {
                    tokio::task::yield_now().await;
                }
            };
            assert_eq!(rt.drive(both, Some(Duration::from_secs(10))).unwrap(), Some(()));
            assert_eq!(*order.lock().unwrap(), ["woken task", "tokio task"]);
        }
    }

    #[test]
    fn a_task_that_keeps_waking_itself_leaves_the_runtime_its_other_tasks() {
        for rt in both_runtimes() {
            use std::sync::atomic::AtomicUsize;
            const GIVE_UP: usize = 1_000_000;
            let polls = Arc::new(AtomicUsize::new(0));
            let p = polls.clone();
            rt.spawn(std::future::poll_fn(move |cx| {
                if p.fetch_add(1, Ordering::SeqCst) + 1 >= GIVE_UP {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }));
            rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
            // A plain tokio task runs while the task above still wakes itself: the runner's rounds
            // are bounded (it would run a million rounds first otherwise).
            let p = polls.clone();
            let other = rt.handle().spawn(async move { p.load(Ordering::SeqCst) });
            let seen = rt
                .drive(other, Some(Duration::from_secs(60)))
                .unwrap()
                .unwrap()
                .unwrap();
            assert!(
                seen < GIVE_UP,
                "the other task ran only after the self-waking task gave up"
            );
        }
    }

    #[test]
    fn a_task_out_of_tokio_budget_is_woken_after_a_drive_that_returned() {
        for rt in both_runtimes() {
            let spent = Arc::new(AtomicBool::new(false));
            let s = spent.clone();
            // More than tokio's budget of one poll (128): out of budget, a task yields through the
            // scheduler (its waker deferred to the next check of the I/O driver).
            rt.spawn(async move {
                for _ in 0..1000 {
                    tokio::task::consume_budget().await;
                }
                s.store(true, Ordering::SeqCst);
            });
            // This drive's future is done at its first poll, which runs the task above too.
            assert_eq!(rt.drive(async {}, None).unwrap(), Some(()));
            let done = async {
                while !spent.load(Ordering::SeqCst) {
                    tokio::task::yield_now().await;
                }
            };
            assert_eq!(
                rt.drive(done, Some(Duration::from_secs(10))).unwrap(),
                Some(()),
                "inline: {}",
                rt.tasks.is_inline()
            );
        }
    }

    #[test]
    fn threads_that_drive_at_once_each_see_their_tasks_complete() {
        use std::sync::atomic::AtomicUsize;
        for rt in both_runtimes() {
            let rt = Arc::new(rt);
            let done = Arc::new(AtomicUsize::new(0));
            // Four threads drive at once, each until its own 50 tasks ran; the tasks wait for a
            // value sent by another thread, one at a time, while the drivers come and go.
            let (tx, rx) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>();
            let drivers: Vec<_> = (0..4)
                .map(|_| {
                    let (rt, done, tx) = (rt.clone(), done.clone(), tx.clone());
                    std::thread::spawn(move || {
                        let mine = Arc::new(AtomicUsize::new(0));
                        for target in 1..=50 {
                            let (wake, wait) = tokio::sync::oneshot::channel::<()>();
                            tx.send(wake).unwrap();
                            let (m, d) = (mine.clone(), done.clone());
                            rt.spawn(async move {
                                wait.await.unwrap();
                                m.fetch_add(1, Ordering::SeqCst);
                                d.fetch_add(1, Ordering::SeqCst);
                            });
                            let ran = async {
                                while mine.load(Ordering::SeqCst) < target {
                                    tokio::task::yield_now().await;
                                }
                            };
                            assert_eq!(
                                rt.drive(ran, Some(Duration::from_secs(10))).unwrap(),
                                Some(()),
                                "inline: {}",
                                rt.tasks.is_inline()
                            );
                        }
                    })
                })
                .collect();
            drop(tx);
            let waker = std::thread::spawn(move || {
                for wake in rx {
                    let _ = wake.send(());
                }
            });
            for d in drivers {
                d.join().unwrap();
            }
            waker.join().unwrap();
            assert_eq!(done.load(Ordering::SeqCst), 200);
        }
    }

    #[test]
    fn tasks_that_waited_for_a_drive_run_when_the_runtime_is_dropped() {
        for rt in both_runtimes() {
            // No drive ever started the runner; dropping the runtime closes it, then drives it.
            let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for _ in 0..3 {
                let ran = ran.clone();
                rt.spawn(async move {
                    tokio::task::yield_now().await;
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
            assert_eq!(rt.tasks.queued().0, 3);
            drop(rt);
            assert_eq!(
                ran.load(Ordering::SeqCst),
                3,
                "the tasks ran to their end, none was dropped"
            );
        }
    }

    #[test]
    fn timeouts_and_refusal_inside_a_runtime() {
        let rt = DrivenRuntime::new().unwrap();
        let never = std::future::pending::<()>();
        assert_eq!(rt.drive(never, Some(Duration::from_millis(5))).unwrap(), None);
        assert_eq!(
            rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap(),
            None
        );
        let inner = Arc::new(rt);
        let again = inner.clone();
        let refused = inner
            .drive(
                async move { again.drive(async {}, Some(Duration::ZERO)).is_err() },
                None,
            )
            .unwrap();
        assert_eq!(refused, Some(true));
    }
}
