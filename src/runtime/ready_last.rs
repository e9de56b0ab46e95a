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
//! sends, does the work. A current-thread runtime (a caller-driven pool) has no LIFO slot; its
//! channels keep tokio's plain spawn.
//!
//! The wait is only worth its poll when other sends run: at 1 in flight it cost about 5k
//! instructions per request and batched nothing. So a channel task re-queues itself only while more
//! than one send spawned by [`spawn_send`] is in flight (a process-wide count). (Counting only the
//! sends not started yet was tried: it lost half the batching at 16 in flight, 0.43 → 0.90 `writev`
//! per request, as the sends that come next are still in the callbacks of the ones completing.)

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::runtime::Handle;

type BoxTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sends spawned on a multi-thread runtime by [`spawn_send`] and not completed.
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
            Some(in_flight) => drop(self.handle.spawn(ReadyLast {
                task,
                passed: false,
                in_flight,
            })),
            None => drop(self.handle.spawn(task)),
        }
    }
}

/// Spawns a send's task on `handle`. On a multi-thread runtime it is counted until it completes
/// (or is dropped); while more than one is, a woken channel task lets the ready tasks run first.
pub fn spawn_send<F: Future<Output = ()> + Send + 'static>(handle: &Handle, task: F) {
    spawn_counted(handle, &SENDS_IN_FLIGHT, task);
}

fn spawn_counted<F: Future<Output = ()> + Send + 'static>(handle: &Handle, count: &'static SendsInFlight, task: F) {
    if multi_thread(handle) {
        let in_flight = InFlight::new(count);
        drop(handle.spawn(async move {
            let _in_flight = in_flight;
            task.await
        }));
    } else {
        drop(handle.spawn(task));
    }
}

/// One send counted in its [`SendsInFlight`] while it lives.
struct InFlight(&'static SendsInFlight);

impl InFlight {
    fn new(count: &'static SendsInFlight) -> InFlight {
        count.0.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
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

    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap()
    }

    /// Spawns, from a task on the runtime's one worker, `sends` sends (counted, or plain tasks when
    /// `counted` is false) and then a channel task; the order they ran in.
    fn order_of_sends_and_channel_task(sends: usize, counted: bool) -> Vec<String> {
        let rt = one_worker();
        let in_flight = count();
        let executor = ChannelExecutor::counting(rt.handle(), in_flight);
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let o = order.clone();
        let handle = rt.handle().clone();
        rt.spawn(async move {
            for i in 0..sends {
                let o = o.clone();
                let send = async move { o.lock().unwrap().push(format!("send {i}")) };
                if counted {
                    spawn_counted(&handle, in_flight, send);
                } else {
                    drop(tokio::spawn(send));
                }
            }
            let o = o.clone();
            executor.spawn(Box::pin(async move {
                o.lock().unwrap().push("channel".into());
                done_tx.send(()).unwrap();
            }));
        });
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // The sends that run after the channel task complete too, and leave the count.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while (order.lock().unwrap().len() < sends + 1 || in_flight.0.load(Ordering::Relaxed) != 0)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            in_flight.0.load(Ordering::Relaxed),
            0,
            "completed sends are not counted"
        );
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), sends + 1, "{order:?}");
        order
    }

    /// Woken while other sends are in flight, a channel task runs after the ready ones (without the
    /// wrapper, tokio's LIFO slot would run it first), and completes.
    #[test]
    fn a_woken_channel_task_runs_after_the_ready_sends() {
        let order = order_of_sends_and_channel_task(3, true);
        assert_eq!(order.last().map(String::as_str), Some("channel"), "{order:?}");
    }

    /// With one send in flight (nothing to batch) or none of the library's, a woken channel task
    /// runs at once: no extra poll.
    #[test]
    fn with_one_send_in_flight_a_channel_task_runs_at_once() {
        for (sends, counted) in [(1, true), (3, false)] {
            let order = order_of_sends_and_channel_task(sends, counted);
            assert_eq!(order.first().map(String::as_str), Some("channel"), "{order:?}");
        }
    }

    /// A send dropped before it ran (its runtime shut down) leaves the count.
    #[test]
    fn a_dropped_send_is_not_counted() {
        let sends = count();
        let rt = one_worker();
        let handle = rt.handle().clone();
        rt.shutdown_background();
        spawn_counted(&handle, sends, async { unreachable!("the runtime is shut down") });
        // The shut-down runtime drops the task (at once or from its last worker).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sends.0.load(Ordering::Relaxed) != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sends.0.load(Ordering::Relaxed), 0);
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
