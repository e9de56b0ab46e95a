//! The process-wide tokio runtime of the library ("library threads"): created on first use,
//! optionally sized before that, shut down explicitly.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use super::context::{
    ensure_not_forked, in_library_context, is_shut_down, library_tracing, mark_library_thread, mark_shut_down,
};
use super::runner::{library_tasks, set_library_tasks, PollGuard, Tasks};
use crate::error::{Error, Result};

enum State {
    NotStarted { worker_threads: Option<usize> },
    Running(Runtime),
    ShutDown,
}

/// Runs a send's `task` on the library runtime (`handle`). With one worker, one task polls the
/// sends and the tasks their connections spawn (`runner.rs`), as on a caller-driven runtime; with
/// more, each send is a task of its own, so that the workers share them. After a shutdown (also one
/// that races with this call) the task is dropped: its send completes as dropped.
pub fn spawn_send<F: Future<Output = ()> + Send + 'static>(handle: &Handle, task: F) {
    match library_tasks() {
        Some(sends) => {
            sends.push(Box::pin(task));
            if is_shut_down() {
                // The runner, dropped with the runtime, would never take it.
                sends.drop_queued();
            }
        }
        None => drop(handle.spawn(task)),
    }
}

/// How the runner of a one-worker library runtime polls its tasks (set by the embedder before the
/// runtime starts; the C ABI catches panics there).
static POLL_GUARD: Mutex<Option<PollGuard>> = Mutex::new(None);

/// Sets how the runner of the library runtime polls its tasks ([`PollGuard`]). Only takes effect for
/// a runtime that has not started yet.
pub fn set_poll_guard(guard: PollGuard) {
    *POLL_GUARD.lock().unwrap_or_else(|p| p.into_inner()) = Some(guard);
}

/// Runs on each library runtime thread when it starts (set by the embedder before the runtime starts;
/// the C ABI blocks SIGPIPE there).
static THREAD_START: Mutex<Option<fn()>> = Mutex::new(None);

/// Sets a function to run on each library runtime thread when it starts. Only takes effect for a
/// runtime that has not started yet.
pub fn on_thread_start(hook: fn()) {
    *THREAD_START.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
}

static STATE: Mutex<State> = Mutex::new(State::NotStarted { worker_threads: None });

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The runtime's worker threads unless `configure`d: half the cores this process may use
/// (`available_parallelism`: affinity and cgroup quotas included), at least 1 and at most 4.
///
/// Why not one per core (tokio's default): the runtime only does networking for a process whose own
/// work (a gateway's HTTP serving, encoding, its callbacks' work) needs cores too, and each
/// connection's HTTP/2 work runs in one task, so workers beyond the busy connections only add
/// wake-ups between threads (a futex call each time a task moves). On 2 cores one worker was faster
/// than two at 1 in flight and level at 16 and 256 (BENCHMARKS.md). The cap: a 16-core gateway gets 4, and a
/// process that wants more (many busy connections, TLS) says so with `jina_net_runtime_init`.
pub fn default_worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

/// Sets the number of worker threads of the runtime. Only before the runtime has started;
/// afterwards it is an error (the running runtime cannot be resized).
pub fn configure(worker_threads: usize) -> Result<()> {
    if worker_threads == 0 {
        return Err(Error::Runtime("worker_threads must be at least 1".into()));
    }
    let mut state = lock();
    match &*state {
        State::NotStarted { .. } => {
            *state = State::NotStarted {
                worker_threads: Some(worker_threads),
            };
            Ok(())
        }
        State::Running(_) => Err(Error::Runtime(
            "the runtime is already running; configure it before the first pool or send".into(),
        )),
        State::ShutDown => Err(Error::Runtime("the runtime has been shut down".into())),
    }
}

/// A handle to the library runtime, starting it on first use.
pub fn handle() -> Result<Handle> {
    ensure_not_forked()?;
    let mut state = lock();
    match &*state {
        State::Running(rt) => Ok(rt.handle().clone()),
        State::ShutDown => Err(Error::Runtime("the runtime has been shut down".into())),
        State::NotStarted { worker_threads } => {
            let silence = library_tracing();
            let hook = *THREAD_START.lock().unwrap_or_else(|p| p.into_inner());
            let mut builder = Builder::new_multi_thread();
            builder.enable_all().thread_name("jina-net").on_thread_start(move || {
                mark_library_thread();
                if let Some(hook) = hook {
                    hook();
                }
                if silence {
                    // kept for the thread's life; silent unless a log sink is set (crate::log)
                    std::mem::forget(tracing::dispatcher::set_default(&crate::log::library_dispatch()));
                }
            });
            builder
                .on_thread_park(super::busy_poll::before_park)
                .on_thread_unpark(super::busy_poll::after_unpark);
            let workers = worker_threads.unwrap_or_else(default_worker_threads);
            builder.worker_threads(workers);
            let before = super::busy_poll::epoll_descriptors();
            let rt = builder
                .build()
                .map_err(|e| Error::Runtime(format!("failed to start the tokio runtime: {e}")))?;
            super::busy_poll::watch_reactor(&before, &super::busy_poll::epoll_descriptors());
            let handle = rt.handle().clone();
            if workers == 1 {
                let guard = *POLL_GUARD.lock().unwrap_or_else(|p| p.into_inner());
                set_library_tasks(Arc::new(Tasks::always_driven(handle.clone(), guard)));
            }
            *state = State::Running(rt);
            Ok(handle)
        }
    }
}

/// Whether the runtime is running.
pub fn is_running() -> bool {
    matches!(&*lock(), State::Running(_))
}

/// Stops the runtime: running tasks are dropped at their next await (their sends complete with an
/// error), worker threads are joined for at most `timeout`. Later calls that need the runtime fail.
/// Must not be called from a runtime thread. Calling it twice is harmless.
pub fn shutdown(timeout: Duration) -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::Runtime(
            "shutdown must not be called from a runtime thread or async context".into(),
        ));
    }
    mark_shut_down();
    let previous = std::mem::replace(&mut *lock(), State::ShutDown);
    if let State::Running(rt) = previous {
        rt.shutdown_timeout(timeout);
    }
    // The sends queued for the runner that the runtime dropped: they complete as dropped.
    if let Some(sends) = library_tasks() {
        sends.drop_queued();
    }
    Ok(())
}

/// Runs `future` on the library runtime and blocks the calling thread until it is done (also a
/// thread of another tokio runtime: the caller asked to block). Refused (not a deadlock) on a library
/// runtime thread, e.g. from a completion callback. A panic in `future` is [`Error::Panic`].
pub fn block_on<F>(future: F) -> Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    if in_library_context() {
        return Err(Error::Runtime(
            "a blocking call was made on a library thread or while driving a pool (e.g. from a completion callback); use the async form".into(),
        ));
    }
    let handle = handle()?;
    let task = handle.spawn(future);
    // Waits on a plain channel rather than with `Handle::block_on`, which panics on a thread that
    // is inside another tokio runtime (a Rust program calling the C ABI from its async code).
    let (done, outcome) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = done.send(task.await);
    });
    let joined = outcome
        .recv()
        .map_err(|_| Error::Runtime("the runtime shut down while a blocking call was waiting".into()))?;
    match joined {
        Ok(output) => Ok(output),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Panic(message))
        }
        Err(_) => Err(Error::Runtime(
            "the runtime shut down while a blocking call was waiting".into(),
        )),
    }
}
