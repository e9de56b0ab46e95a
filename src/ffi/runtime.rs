//! The library runtime as C hosts get it (silent tracing, SIGPIPE blocked on its threads, a fork
//! handler), and the version.

use std::ffi::c_char;
use std::task::Poll;

use tokio::runtime::Handle;

use super::result::{boundary, jina_net_result, Failure};
use crate::error::Error;

/// The library runtime, for the C ABI: started (if need be) with silent tracing and SIGPIPE blocked
/// on its threads, and the fork handler registered.
pub(crate) fn library_handle() -> crate::error::Result<Handle> {
    crate::runtime::silence_tracing_on_library_threads();
    crate::runtime::on_thread_start(block_sigpipe);
    crate::runtime::set_poll_guard(contain_panic);
    watch_for_fork();
    crate::runtime::handle()
}

/// The C ABI's [`PollGuard`](crate::runtime::PollGuard): a task that panics in a runner (a library
/// bug; a send's own panic is caught inside the send, `send.rs`) is dropped alone, and the other
/// sends the runner polls go on.
pub(crate) fn contain_panic(poll: &mut dyn FnMut() -> Poll<()>) -> Poll<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(poll)).unwrap_or(Poll::Ready(()))
}

/// Registers (once) the fork handler that marks a child process as unusable for the library: its
/// threads did not survive the fork (see `crate::runtime::mark_forked`).
pub(crate) fn watch_for_fork() {
    extern "C" fn in_child() {
        crate::runtime::mark_forked();
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    // SAFETY: registers a handler that only stores to an atomic (async-signal-safe after fork).
    REGISTERED.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(in_child));
    });
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

/// Major version of the library. With `JINA_NET_VERSION_MINOR` and `_PATCH`, the version of the
/// header; `jina_net_version()` is the version of the library loaded at run time. A change that
/// breaks the ABI bumps the major version (the minor one before 1.0) and the soname with it:
/// `libjina_net.so.0.<minor>` before 1.0, `libjina_net.so.<major>` from 1.0 on.
pub const JINA_NET_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const JINA_NET_VERSION_MINOR: u32 = 2;
/// Patch version.
pub const JINA_NET_VERSION_PATCH: u32 = 4;

static VERSION: &std::ffi::CStr = c"0.2.4";

/// The version of the library loaded at run time, `"MAJOR.MINOR.PATCH"` (static; never NULL).
#[no_mangle]
pub extern "C" fn jina_net_version() -> *const c_char {
    VERSION.as_ptr()
}

/// Sets the number of worker threads of the library runtime (default: half the cores the process
/// may use, at least 1 and at most 4: the runtime does the networking, the caller's own work needs
/// cores too; see the README's "Library runtime size"). Only before
/// the runtime starts (the first pool, send or helper starts it): afterwards
/// `JINA_NET_ALREADY_STARTED`. 0 is `JINA_NET_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn jina_net_runtime_init(worker_threads: u32) -> jina_net_result {
    boundary("jina_net_runtime_init", || {
        if worker_threads == 0 {
            return Err(Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                "worker_threads must be at least 1",
            ));
        }
        if crate::runtime::is_running() {
            return Err(Failure::new(
                jina_net_result::JINA_NET_ALREADY_STARTED,
                "the runtime is already running",
            ));
        }
        crate::runtime::configure(worker_threads as usize).map_err(|e| match e {
            Error::Runtime(m) if crate::runtime::is_running() => {
                Failure::new(jina_net_result::JINA_NET_ALREADY_STARTED, m)
            }
            other => other.into(),
        })
    })
}

/// The most a library worker busy-polls before it sleeps, in microseconds (default 100; 0 turns busy
/// polling off). While a few sends (at most 8 in the process) wait for their answers, or right
/// after the last one completed, a library worker with nothing to run polls the runtime's sockets
/// (and the sends queued by other threads) for up to this long instead of sleeping at once, so an
/// answer that comes soon finds it running: on a machine whose idle CPUs sleep deeply (virtual
/// machines) a request at 1 in flight takes tens of microseconds less. It costs CPU, at most this
/// long each time a worker would sleep, one worker at a time; the poll shortens by itself, down to
/// none, while answers take longer than this, and a timer due during a poll fires at its end (see
/// the README's "Busy polling"). Any time, also while the runtime runs; takes effect the next time
/// a worker would sleep. Linux only (elsewhere the setting is kept and the workers sleep at once);
/// a caller-driven pool's thread never busy-polls. Over 10000 is `JINA_NET_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn jina_net_runtime_set_busy_poll_us(busy_poll_us: u32) -> jina_net_result {
    boundary("jina_net_runtime_set_busy_poll_us", || {
        if busy_poll_us > MAX_BUSY_POLL_US {
            return Err(Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                format!("busy_poll_us is {busy_poll_us}; at most {MAX_BUSY_POLL_US} (10 ms)"),
            ));
        }
        crate::runtime::set_busy_poll(std::time::Duration::from_micros(u64::from(busy_poll_us)));
        Ok(())
    })
}

/// The largest busy poll `jina_net_runtime_set_busy_poll_us` takes.
const MAX_BUSY_POLL_US: u32 = 10_000;

/// Shuts the library runtime down: pending sends complete (their callbacks fire, on this thread if
/// need be, with `JINA_NET_RUNTIME_ERROR`), worker threads are joined for at most `timeout_ms`.
/// Afterwards every call that needs the runtime fails with `JINA_NET_RUNTIME_ERROR`; pools must
/// still be freed. Must not be called from a callback. Calling it twice is harmless. The freed
/// buffers the library keeps for reuse (128 KiB and up, and mid-size ones) go back to the system.
#[no_mangle]
pub extern "C" fn jina_net_runtime_shutdown(timeout_ms: u64) -> jina_net_result {
    boundary("jina_net_runtime_shutdown", || {
        if crate::runtime::in_library_context() {
            return Err(Failure::new(
                jina_net_result::JINA_NET_RUNTIME_ERROR,
                "jina_net_runtime_shutdown called on a library thread (from a callback)",
            ));
        }
        let shut = crate::runtime::shutdown(std::time::Duration::from_millis(timeout_ms)).map_err(Failure::from);
        super::alloc::release();
        shut
    })
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(unix)]
    fn library_threads_block_sigpipe() {
        let (tx, rx) = std::sync::mpsc::channel();
        super::library_handle().unwrap().spawn(async move {
            // SAFETY: reads this thread's signal mask into a local set.
            let blocked = unsafe {
                let mut current: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
                libc::sigismember(&current, libc::SIGPIPE) == 1
            };
            tx.send((blocked, crate::runtime::on_library_thread())).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), (true, true));
    }

    #[test]
    fn a_task_that_panics_in_a_guarded_runner_is_dropped_alone() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::time::Duration;
        struct DropFlag(Arc<AtomicBool>);
        impl Drop for DropFlag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let rt = crate::runtime::DrivenRuntime::with_poll_guard(Some(super::contain_panic)).unwrap();
        let (dropped, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (wake, woken) = tokio::sync::oneshot::channel::<()>();
        let (flag, finished) = (DropFlag(dropped.clone()), done.clone());
        rt.spawn(async move {
            let _flag = flag;
            woken.await.unwrap();
            finished.store(true, Ordering::SeqCst);
        });
        rt.spawn(async { panic!("a task that panics (expected by this test)") });
        rt.drive(std::future::pending::<()>(), Some(Duration::ZERO)).unwrap();
        assert!(!dropped.load(Ordering::SeqCst), "the waiting task lives on");
        wake.send(()).unwrap();
        let until_done = async {
            while !done.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
        };
        assert_eq!(rt.drive(until_done, Some(Duration::from_secs(10))).unwrap(), Some(()));
        assert!(dropped.load(Ordering::SeqCst), "and ends normally");
    }

    #[test]
    fn version_constants_match_cargo() {
        let v = format!(
            "{}.{}.{}",
            super::JINA_NET_VERSION_MAJOR,
            super::JINA_NET_VERSION_MINOR,
            super::JINA_NET_VERSION_PATCH
        );
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        assert_eq!(super::VERSION.to_str().unwrap(), v);
    }
}
