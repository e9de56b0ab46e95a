//! The process-wide tokio runtime the library runs on: created on first use, optionally sized before
//! that, shut down explicitly.

use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result};

enum State {
    NotStarted { worker_threads: Option<usize> },
    Running(Runtime),
    ShutDown,
}

thread_local! {
    static ON_LIBRARY_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static DRIVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread belongs to the library runtime (where completion callbacks run).
pub fn on_library_thread() -> bool {
    ON_LIBRARY_THREAD.with(|f| f.get())
}

/// Whether the calling thread runs library tasks now: it is a library runtime thread, or it is
/// driving a [`crate::DrivenRuntime`]. Completion callbacks run in this state; blocking on the library
/// (or driving a runtime) is refused there.
pub fn in_library_context() -> bool {
    on_library_thread() || DRIVING.with(|f| f.get())
}

/// Marks the calling thread as driving a runtime until the guard is dropped.
pub(crate) fn driving() -> impl Drop {
    struct Driving(bool);
    impl Drop for Driving {
        fn drop(&mut self) {
            DRIVING.with(|f| f.set(self.0));
        }
    }
    Driving(DRIVING.with(|f| f.replace(true)))
}

/// Set once the runtime is shut down: checked (without the lock) on the send path, so that a send
/// after a shutdown fails at once instead of being dropped by the stopped runtime.
static SHUT_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `Err` once the runtime has been shut down, or in a process forked after it started.
pub fn ensure_not_shut_down() -> Result<()> {
    if SHUT_DOWN.load(std::sync::atomic::Ordering::Acquire) {
        return Err(Error::Runtime("the runtime has been shut down".into()));
    }
    ensure_not_forked()
}

/// Set in a child process forked after the library started threads or I/O: its threads did not
/// survive the fork and its epoll instance is the parent's, so nothing sent there would complete.
static FORKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn mark_forked() {
    FORKED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Registers (once) the fork handler that marks a child process as unusable for the library.
pub(crate) fn watch_for_fork() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    // SAFETY: registers a handler that only stores to an atomic (async-signal-safe after fork).
    REGISTERED.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(mark_forked));
    });
}

/// `Err` in a process forked after the library started (see [`watch_for_fork`]).
pub fn ensure_not_forked() -> Result<()> {
    if FORKED.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::Runtime(
            "this process was forked after libjina_net started; the library cannot be used in the child (use it only after fork, or exec)".into(),
        ));
    }
    Ok(())
}

/// See [`silence_tracing_on_library_threads`].
static SILENCE_TRACING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks that, when the runtime starts and the process has no `tracing` subscriber, the library's
/// threads get a no-op one. Called by the C ABI: a C, C++ or Go host never installs a subscriber,
/// and without one every span tonic and h2 open takes `tracing`'s `log` fallback (enabled by
/// kube-client), about 18k instructions per request. Rust users who install a subscriber first keep it.
pub fn silence_tracing_on_library_threads() {
    SILENCE_TRACING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the library's threads, and the threads that drive its runtimes, get the library's own
/// dispatcher: the C ABI asked for it and the process has no `tracing` subscriber of its own.
/// Decided once, when first needed after the C ABI asked: the library's own scoped dispatchers make
/// `tracing::dispatcher::has_been_set` true from then on.
fn library_tracing() -> bool {
    static DECIDED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    SILENCE_TRACING.load(std::sync::atomic::Ordering::Relaxed)
        && *DECIDED.get_or_init(|| !tracing::dispatcher::has_been_set())
}

/// Runs `f` with the library's tracing setting on the calling thread: where the runtime's threads
/// get the library's dispatcher (silent, or forwarding to the C log callback; see
/// [`silence_tracing_on_library_threads`]), so does this call. Used by the caller-driven runtimes,
/// whose tasks run on the caller's threads.
pub(crate) fn with_library_tracing<T>(f: impl FnOnce() -> T) -> T {
    if library_tracing() {
        tracing::dispatcher::with_default(&crate::log::library_dispatch(), f)
    } else {
        f()
    }
}

static STATE: Mutex<State> = Mutex::new(State::NotStarted { worker_threads: None });

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
            watch_for_fork();
            let silence = library_tracing();
            let mut builder = Builder::new_multi_thread();
            builder.enable_all().thread_name("jina-net").on_thread_start(move || {
                ON_LIBRARY_THREAD.with(|f| f.set(true));
                block_sigpipe();
                if silence {
                    // kept for the thread's life; silent unless a log sink is set (crate::log)
                    std::mem::forget(tracing::dispatcher::set_default(&crate::log::library_dispatch()));
                }
            });
            if let Some(n) = worker_threads {
                builder.worker_threads(*n);
            }
            let rt = builder
                .build()
                .map_err(|e| Error::Runtime(format!("failed to start the tokio runtime: {e}")))?;
            let handle = rt.handle().clone();
            *state = State::Running(rt);
            Ok(handle)
        }
    }
}

/// A library embedded in a C, C++ or Go program must not kill it with SIGPIPE when a peer closes a
/// connection while the library writes to it (Rust ignores SIGPIPE only when it owns `main`, and
/// socket writes do not all use `MSG_NOSIGNAL`). Blocking the signal on the library's own threads
/// turns such a write into an `EPIPE` error there and leaves the host's signal handling alone.
fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: plain libc calls on a local, initialised signal set; they only change this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
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
    SHUT_DOWN.store(true, std::sync::atomic::Ordering::Release);
    let previous = std::mem::replace(&mut *lock(), State::ShutDown);
    if let State::Running(rt) = previous {
        rt.shutdown_timeout(timeout);
    }
    Ok(())
}

/// Runs `future` on the library runtime and blocks the calling thread until it is done.
/// Refused (not a deadlock) on a library runtime thread, e.g. from a completion callback. A panic in
/// `future` is [`Error::Panic`].
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
    match handle.block_on(task) {
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

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(unix)]
    fn library_threads_block_sigpipe() {
        let (tx, rx) = std::sync::mpsc::channel();
        super::handle().unwrap().spawn(async move {
            // SAFETY: reads this thread's signal mask into a local set.
            let blocked = unsafe {
                let mut current: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
                libc::sigismember(&current, libc::SIGPIPE) == 1
            };
            tx.send((blocked, super::on_library_thread())).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), (true, true));
    }
}
