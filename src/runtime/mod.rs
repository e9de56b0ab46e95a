//! Where the library's work runs: the process-wide runtime of library threads ([`handle`]), or a
//! caller-driven runtime that the caller's threads run ([`DrivenRuntime`]); and what a thread is
//! doing for the library (the rules on blocking calls and callbacks build on it).

mod busy_poll;
mod context;
mod driven;
mod library;
mod ready_last;
mod runner;
mod signal;

pub use busy_poll::{busy_poll, busy_polling, set_busy_poll, DEFAULT_BUSY_POLL};
pub(crate) use context::driving;
pub use context::{
    ensure_not_forked, ensure_not_shut_down, in_library_context, mark_forked, on_library_thread,
    silence_tracing_on_library_threads,
};
pub use driven::DrivenRuntime;
pub use library::{
    block_on, configure, default_worker_threads, handle, is_running, on_thread_start, set_poll_guard, shutdown,
    spawn_send,
};
pub use ready_last::{after_ready_tasks, several_sends_in_flight, ChannelExecutor, SendInFlight};
pub use runner::PollGuard;
pub use signal::{Fired, Signal};
