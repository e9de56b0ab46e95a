//! What a thread is doing for the library (running library tasks, driving a caller-driven runtime),
//! whether the process can use the library at all (shut down, forked), and the tracing setting of
//! the threads that run library tasks.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

thread_local! {
    static ON_LIBRARY_THREAD: Cell<bool> = const { Cell::new(false) };
    static DRIVING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread belongs to the library runtime (where completion callbacks run).
pub fn on_library_thread() -> bool {
    ON_LIBRARY_THREAD.with(|f| f.get())
}

/// Marks the calling thread as a library runtime thread (from the runtime's thread-start hook).
pub(crate) fn mark_library_thread() {
    ON_LIBRARY_THREAD.with(|f| f.set(true));
}

/// Whether the calling thread runs library tasks now: it is a library runtime thread, or it is
/// driving a [`DrivenRuntime`](super::DrivenRuntime). Completion callbacks run in this state;
/// blocking on the library (or driving a runtime) is refused there.
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

/// Set once the library runtime is shut down: checked (without a lock) on the send path, so that a
/// send after a shutdown fails at once instead of being dropped by the stopped runtime.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

pub(crate) fn mark_shut_down() {
    SHUT_DOWN.store(true, Ordering::Release);
}

/// Whether the library runtime has been shut down.
pub(crate) fn is_shut_down() -> bool {
    SHUT_DOWN.load(Ordering::Acquire)
}

/// `Err` once the runtime has been shut down, or in a process forked after it started.
pub fn ensure_not_shut_down() -> Result<()> {
    if SHUT_DOWN.load(Ordering::Acquire) {
        return Err(Error::Runtime("the runtime has been shut down".into()));
    }
    ensure_not_forked()
}

/// Set in a child process forked after the library started threads or I/O: its threads did not
/// survive the fork and its epoll instance is the parent's, so nothing sent there would complete.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Marks this process as a child forked after the library started: every later call that needs a
/// runtime fails. Called by a fork handler (the C ABI registers one with `pthread_atfork` when it
/// starts a runtime; a Rust program that forks after using the library calls this in the child).
/// Only stores to an atomic, so it is async-signal-safe.
pub fn mark_forked() {
    FORKED.store(true, Ordering::Relaxed);
}

/// `Err` in a process forked after the library started (see [`mark_forked`]).
pub fn ensure_not_forked() -> Result<()> {
    if FORKED.load(Ordering::Relaxed) {
        return Err(Error::Runtime(
            "this process was forked after libjina_net started; the library cannot be used in the child (use it only after fork, or exec)".into(),
        ));
    }
    Ok(())
}

/// See [`silence_tracing_on_library_threads`].
static SILENCE_TRACING: AtomicBool = AtomicBool::new(false);

/// Asks that, when the runtime starts and the process has no `tracing` subscriber, the library's
/// threads get a no-op one. Called by the C ABI: a C, C++ or Go host never installs a subscriber,
/// and without one every span tonic and h2 open takes `tracing`'s `log` fallback (enabled by
/// kube-client), about 18k instructions per request. Rust users who install a subscriber first keep it.
pub fn silence_tracing_on_library_threads() {
    SILENCE_TRACING.store(true, Ordering::Relaxed);
}

/// Whether the library's threads, and the threads that drive its runtimes, get the library's own
/// dispatcher: the C ABI asked for it and the process has no `tracing` subscriber of its own.
/// Decided once, when first needed after the C ABI asked: the library's own scoped dispatchers make
/// `tracing::dispatcher::has_been_set` true from then on.
pub(crate) fn library_tracing() -> bool {
    static DECIDED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    SILENCE_TRACING.load(Ordering::Relaxed) && *DECIDED.get_or_init(|| !tracing::dispatcher::has_been_set())
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
