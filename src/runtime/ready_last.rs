//! The executor of a channel's own tasks (its HTTP/2 connection, its connection attempts) on the
//! library runtime: each time such a task is woken, it lets the tasks already ready on its worker
//! run before it, so one wake-up of the connection writes what several sends queued.
//!
//! Why: on tokio's multi-thread scheduler a task woken by the task running goes into the worker's
//! LIFO slot and runs next. A send wakes the connection, which runs at once and writes that one
//! request: one `writev` per request even when 16 sends were ready together (1.19 per request at
//! 16 in flight, 0.46 with this: BENCHMARKS.md). A task that wakes itself while it is polled is
//! put at the back of the run queue instead (tokio treats it as a yield), so the first poll after a
//! wake-up does only that, and the next poll, after the ready sends, does the work. A
//! current-thread runtime has no LIFO slot: there a channel's tasks are spawned plainly, or, on a
//! caller-driven runtime being driven, run with its sends (`runner.rs`). So do they when the
//! library runtime has one worker and spawns them on it: one runner polls every send and channel
//! task there, and one poll of the runner starts every send that is ready. A channel spawns
//! nothing while it is made: its connection attempt is spawned by the first call, which runs on
//! the runtime.
//!
//! The wait is only worth its poll when other sends run: at 1 in flight it cost about 5k
//! instructions per request and batched nothing. So a channel task re-queues itself only while more
//! than one send is in flight (a process-wide count: a [`SendInFlight`] lives as long as each send,
//! from the call that routes it to its completion, whichever runtime runs it). (Counting only the
//! sends not started yet was tried: it lost half the batching at 16 in flight, 0.43 → 0.90 `writev`
//! per request, as the sends that come next are still in the callbacks of the ones completing.)

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::runtime::Handle;

use super::runner::{spawn_on_library_runner, spawn_where_driven};

type BoxTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sends routed and not completed (see [`SendInFlight`]).
#[derive(Debug, Default)]
struct SendsInFlight(AtomicUsize);

/// The count of the library's sends: one for the process (one library runtime).
static SENDS_IN_FLIGHT: SendsInFlight = SendsInFlight(AtomicUsize::new(0));

/// Spawns on a runtime; for a multi-thread runtime, a woken task runs after the ready tasks
/// while other sends are in flight (see the module documentation).
#[derive(Clone, Debug)]
pub struct ChannelExecutor {
    handle: Handle,
    /// `None` on a current-thread runtime: plain spawns.
    in_flight: Option<&'static SendsInFlight>,
}

fn multi_thread(handle: &Handle) -> bool {
    matches!(handle.runtime_flavor(), tokio::runtime::RuntimeFlavor::MultiThread)
}

impl ChannelExecutor {
    pub fn new(handle: &Handle) -> ChannelExecutor {
        ChannelExecutor::counting(handle, &SENDS_IN_FLIGHT)
    }

    fn counting(handle: &Handle, in_flight: &'static SendsInFlight) -> ChannelExecutor {
        ChannelExecutor {
            handle: handle.clone(),
            in_flight: multi_thread(handle).then_some(in_flight),
        }
    }

    /// Spawns `task` (for `hyper::rt::Executor` implementations, which cannot name tokio's types).
    pub fn spawn(&self, task: BoxTask) {
        match self.in_flight {
            Some(in_flight) => {
                // The library runtime with one worker: with its sends, in its runner.
                if let Err(task) = spawn_on_library_runner(task) {
                    drop(self.handle.spawn(ReadyLast {
                        task,
                        passed: false,
                        in_flight,
                    }))
                }
            }
            // On a caller-driven runtime, with its sends (`runner.rs`).
            None => {
                if let Err(task) = spawn_where_driven(task) {
                    drop(self.handle.spawn(task));
                }
            }
        }
    }
}

/// One send in flight, counted while it lives: held by the send from the call that routes it to
/// its completion (or drop). While more than one is, a woken channel task lets the ready tasks run
/// first.
#[derive(Debug)]
#[must_use = "the send is counted only while this lives"]
pub struct SendInFlight(&'static SendsInFlight);

impl SendInFlight {
    pub fn new() -> SendInFlight {
        SendInFlight::counted_in(&SENDS_IN_FLIGHT)
    }

    fn counted_in(count: &'static SendsInFlight) -> SendInFlight {
        count.0.fetch_add(1, Ordering::Relaxed);
        SendInFlight(count)
    }
}

impl Default for SendInFlight {
    fn default() -> Self {
        SendInFlight::new()
    }
}

impl Drop for SendInFlight {
    fn drop(&mut self) {
        if self.0 .0.fetch_sub(1, Ordering::Relaxed) == 1 {
            LAST_DONE_HERE.with(|d| d.set(true));
        }
    }
}

thread_local! {
    /// The last send in flight in the process completed on this thread (and nobody asked since).
    static LAST_DONE_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sends in flight in the process (see [`SendInFlight`]).
pub(super) fn sends_in_flight() -> usize {
    SENDS_IN_FLIGHT.0.load(Ordering::Relaxed)
}

/// Whether the last send in flight completed on this thread since the previous call here (a library
/// worker busy-polls then for the next send: `busy_poll`).
pub(super) fn take_last_send_done_here() -> bool {
    LAST_DONE_HERE.with(|d| d.replace(false))
}

/// Whether more than one send is in flight in the process (see [`SendInFlight`]): a connection
/// gathers the frames of a large body only then (`transport::coalesce`).
pub fn several_sends_in_flight() -> bool {
    sends_in_flight() > 1
}

/// Runs `f` once the tasks already ready on this library worker have run, when called from a
/// worker of a multi-thread runtime while other sends are in flight (so that what those tasks
/// complete is handed over with it: one wake-up of a waiting thread for a burst of completions);
/// at once otherwise. `f` runs in any case, also when the runtime drops the task unpolled.
pub fn after_ready_tasks(f: impl FnOnce() + Send + 'static) {
    after_ready_tasks_counted(&SENDS_IN_FLIGHT, f);
}

fn after_ready_tasks_counted(in_flight: &SendsInFlight, f: impl FnOnce() + Send + 'static) {
    match Handle::try_current() {
        Ok(handle) if multi_thread(&handle) && in_flight.0.load(Ordering::Relaxed) > 1 => {
            drop(handle.spawn(BehindReady {
                f: Some(f),
                passed: false,
            }))
        }
        _ => f(),
    }
}

/// Runs its function on its second poll: the first re-queues the task behind the ready ones.
struct BehindReady<F: FnOnce()> {
    f: Option<F>,
    passed: bool,
}

// `f` is never pinned: it is moved out before it runs.
impl<F: FnOnce()> Unpin for BehindReady<F> {}

impl<F: FnOnce()> Future for BehindReady<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.passed {
            self.passed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(f) = self.f.take() {
            f();
        }
        Poll::Ready(())
    }
}

impl<F: FnOnce()> Drop for BehindReady<F> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            f();
        }
    }
}

/// `task`, re-queued once behind the ready tasks each time it is woken while other sends are in
/// flight.
struct ReadyLast {
    task: BoxTask,
    /// The wake-up's first poll has re-queued the task: the next poll runs it.
    passed: bool,
    in_flight: &'static SendsInFlight,
}

impl Future for ReadyLast {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // More than the one send that (probably) woke this task.
        if !self.passed && self.in_flight.0.load(Ordering::Relaxed) > 1 {
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
    use std::time::Duration;

    fn count() -> &'static SendsInFlight {
        Box::leak(Box::default())
    }

    /// With `in_flight` sends counted, spawns from a task on a one-worker runtime three ready tasks,
    /// then calls `last` (in that task) with the count, the log and a sender to signal once its own
    /// entry is in; the order the four entries were logged in.
    fn order_after_three_ready_tasks(
        in_flight: usize,
        last: impl FnOnce(&'static SendsInFlight, Arc<Mutex<Vec<String>>>, std::sync::mpsc::Sender<()>) + Send + 'static,
    ) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let sends = count();
        let held: Vec<SendInFlight> = (0..in_flight).map(|_| SendInFlight::counted_in(sends)).collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let o = order.clone();
        rt.spawn(async move {
            for i in 0..3 {
                let o = o.clone();
                drop(tokio::spawn(async move { o.lock().unwrap().push(format!("send {i}")) }));
            }
            last(sends, o, done_tx);
        });
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // The tasks that run after the last one finish too.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while order.lock().unwrap().len() < 4 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        assert_eq!(
            sends.0.load(Ordering::Relaxed),
            0,
            "a dropped SendInFlight leaves the count"
        );
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), 4, "{order:?}");
        order
    }

    /// Three ready tasks, then a channel task spawned with the executor.
    fn order_with_sends_in_flight(in_flight: usize) -> Vec<String> {
        order_after_three_ready_tasks(in_flight, |sends, o, done| {
            let executor = ChannelExecutor::counting(&Handle::current(), sends);
            executor.spawn(Box::pin(async move {
                o.lock().unwrap().push("channel".into());
                done.send(()).unwrap();
            }));
        })
    }

    /// Woken while other sends are in flight, a channel task runs after the ready tasks (without
    /// the wrapper, tokio's LIFO slot would run it first), and completes.
    #[test]
    fn a_woken_channel_task_runs_after_the_ready_tasks() {
        let order = order_with_sends_in_flight(2);
        assert_eq!(order.last().map(String::as_str), Some("channel"), "{order:?}");
    }

    /// With one send in flight (nothing to batch) or none, a woken channel task runs at once: no
    /// extra poll.
    #[test]
    fn with_one_send_in_flight_a_channel_task_runs_at_once() {
        for in_flight in [0, 1] {
            let order = order_with_sends_in_flight(in_flight);
            assert_eq!(order.first().map(String::as_str), Some("channel"), "{order:?}");
        }
    }

    /// While other sends are in flight, a function handed over from a task runs after the tasks
    /// ready on the worker; with one send in flight, at once; and it runs also when its task is
    /// dropped unpolled (a runtime shut down).
    #[test]
    fn after_ready_tasks_runs_behind_the_ready_tasks_while_sends_are_in_flight() {
        for (in_flight, expect_at) in [(2, 3), (0, 0)] {
            let order = order_after_three_ready_tasks(in_flight, |sends, o, done| {
                after_ready_tasks_counted(sends, move || {
                    o.lock().unwrap().push("handed".into());
                    done.send(()).unwrap();
                });
            });
            assert_eq!(order.iter().position(|e| e == "handed"), Some(expect_at), "{order:?}");
        }
        // A task dropped unpolled (its runtime shut down) still runs its function.
        let ran = Arc::new(Mutex::new(false));
        let r = ran.clone();
        drop(BehindReady {
            f: Some(move || *r.lock().unwrap() = true),
            passed: false,
        });
        assert!(*ran.lock().unwrap(), "a dropped BehindReady runs its function");
    }

    #[test]
    fn a_current_thread_runtime_spawns_plainly() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let executor = ChannelExecutor::new(rt.handle());
        assert!(executor.in_flight.is_none());
        let (tx, rx) = std::sync::mpsc::channel();
        executor.spawn(Box::pin(async move { tx.send(7).unwrap() }));
        rt.block_on(tokio::task::yield_now());
        assert_eq!(rx.try_recv(), Ok(7));
    }
}
