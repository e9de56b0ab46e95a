//! Busy polling: a library worker about to sleep while a send waits for its answer (or right after
//! the last send in flight completed) first polls for a short while, so that the answer (or the
//! next send) finds it running instead of asleep.
//!
//! Why: a thread that sleeps in `epoll_wait` and is woken by a packet pays the wake-up of its CPU.
//! On a virtual machine that halts an idle vCPU (the benchmark machine: guest halt polling off)
//! that is tens of microseconds per wake-up, and a request at 1 in flight sent from a C thread
//! crossed two of them on the library's side alone: its answer, and the next send (BENCHMARKS.md
//! finding 18: 100 B at 1 in flight on library threads, median latency 79 → 51 µs). Go's
//! scheduler, too, looks for work a while before it blocks in its network poller.
//!
//! How: the runtime's own epoll instance (its reactor: every socket the runtime waits on, and the
//! wake-ups from other threads) is itself watched, readable and edge-triggered, from a second epoll
//! instance of this module, which so learns that the reactor has events without taking them. Before
//! a library worker parks, it checks that epoll without waiting, and the runtime's queue of tasks
//! spawned from other threads (a send made by a C thread), in a loop with `sched_yield` (so a thread
//! waiting for that CPU, e.g. the one that will send next, runs), until one of them has something or
//! the poll's length has passed. Then it parks as before: with an answer there, the reactor finds it
//! without sleeping. Timers are not watched: one that comes due during a poll fires when the poll
//! ends (so the length is capped at 10 ms through the C ABI). The runtime's epoll is found as the
//! `eventpoll` descriptors that appeared in `/proc/self/fd` while the runtime was built (it keeps
//! two of the same epoll); where there is no such file (not Linux) or they are not one epoll
//! (another thread made one at the same time), the workers do not busy-poll.
//!
//! Its cost is CPU: a worker that busy-polls burns up to the poll's length each time it would
//! sleep. So it polls only while a few sends are in flight (at most [`POLL_MAX_IN_FLIGHT`]: with
//! more, answers come back to back and the poll only takes CPU) or right after the last one
//! completed (a worker with nothing outstanding sleeps at once), one worker at a time, and the
//! length adapts as Linux's guest halt polling does, for the two waits apart (an answer; the next
//! send): when a worker's wait (poll and sleep) was longer than the maximum (a peer that takes
//! milliseconds to answer, where polling never pays), the next poll for that wait is half as long,
//! down to none; when a wait was within the maximum, the next is twice as long, up to it. The
//! maximum is [`set_busy_poll`]'s (default [`DEFAULT_BUSY_POLL`]; zero turns it off). A
//! caller-driven pool's thread never busy-polls (the caller owns it).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::ready_last::{sends_in_flight, take_last_send_done_here};

/// The default maximum of a busy poll.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(100);

/// The shortest poll a grown poll starts again from.
const GROW_FROM_US: u32 = 10;

/// The maximum, in microseconds (0: off).
static MAX_US: AtomicU32 = AtomicU32::new(DEFAULT_BUSY_POLL.as_micros() as u32);

/// What a worker waits for: each has its own poll length, in microseconds (adapted between 0 and
/// the maximum), as the two waits differ: against a peer that takes milliseconds, the answer is
/// never caught, while the next send of a closed loop comes at once.
#[derive(Clone, Copy)]
enum Wait {
    /// An answer: a send is in flight.
    Answer,
    /// The next send: the last one in flight just completed on this worker.
    NextSend,
}

/// The poll length of each [`Wait`], in microseconds.
static CURRENT_US: [AtomicU32; 2] = [
    AtomicU32::new(DEFAULT_BUSY_POLL.as_micros() as u32),
    AtomicU32::new(DEFAULT_BUSY_POLL.as_micros() as u32),
];

impl Wait {
    fn current(self) -> &'static AtomicU32 {
        &CURRENT_US[self as usize]
    }
}

/// Sets the longest a library worker busy-polls before it sleeps; zero turns busy polling off.
/// Takes effect at the next time a worker would sleep; any time, also while the runtime runs. A
/// timer that comes due during a poll fires when the poll ends: keep it short (the C ABI takes at
/// most 10 ms).
pub fn set_busy_poll(max: Duration) {
    let us = u32::try_from(max.as_micros()).unwrap_or(u32::MAX);
    MAX_US.store(us, Ordering::Relaxed);
    for current in &CURRENT_US {
        current.store(us, Ordering::Relaxed);
    }
}

/// The longest a library worker busy-polls before it sleeps (zero: off).
pub fn busy_poll() -> Duration {
    Duration::from_micros(u64::from(MAX_US.load(Ordering::Relaxed)))
}

/// Whether the library runtime's workers busy-poll when [`busy_poll`] is not zero: the runtime has
/// started and its reactor was found (on Linux).
pub fn busy_polling() -> bool {
    WATCH.get().is_some()
}

/// The epoll instance that watches the runtime's reactor.
struct Watch {
    /// Taken (without waiting) by the one worker polling.
    poll: Mutex<(Poll, Events)>,
}

/// Set once, when the library runtime starts (if its reactor was found).
static WATCH: OnceLock<Watch> = OnceLock::new();

impl Watch {
    fn of(reactor: RawFd) -> std::io::Result<Watch> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&reactor), Token(0), Interest::READABLE)?;
        Ok(Watch {
            poll: Mutex::new((poll, Events::with_capacity(4))),
        })
    }

    /// Polls until the reactor has events or `queued()` says a task waits, or `length` has passed.
    /// `None` when another worker is polling.
    fn poll(&self, length: Duration, queued: impl Fn() -> bool) -> Option<bool> {
        let mut guard = self.poll.try_lock().ok()?;
        let (poll, events) = &mut *guard;
        let start = Instant::now();
        loop {
            match poll.poll(events, Some(Duration::ZERO)) {
                Ok(()) if !events.is_empty() => return Some(true),
                Ok(()) => {}
                Err(_) => return Some(false),
            }
            if queued() {
                return Some(true);
            }
            if start.elapsed() >= length {
                return Some(false);
            }
            std::thread::yield_now();
        }
    }
}

/// The `eventpoll` descriptors of the process (`/proc/self/fd`; empty where there is none).
pub(super) fn epoll_descriptors() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|target| target.as_os_str() == "anon_inode:[eventpoll]")
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// Watches the library runtime's reactor, given the `eventpoll` descriptors of the process before
/// and after the runtime was built: busy polling works only if those that appeared are one epoll
/// (the runtime keeps a duplicate of its descriptor: the same set of watched descriptors in
/// `/proc/self/fdinfo`).
pub(super) fn watch_reactor(before: &[RawFd], after: &[RawFd]) {
    let new: Vec<RawFd> = after.iter().copied().filter(|fd| !before.contains(fd)).collect();
    let watched = |fd: &RawFd| {
        std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
            .map(|info| {
                info.lines()
                    .filter(|l| l.starts_with("tfd:"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .ok()
    };
    let sets: Vec<_> = new.iter().map(watched).collect();
    let one = !new.is_empty() && sets[0].is_some() && sets.iter().all(|s| s == &sets[0]);
    if !one {
        tracing::debug!("busy polling off: the runtime's epoll not found ({} new)", new.len());
        return;
    }
    match Watch::of(new[0]) {
        Ok(watch) => {
            let _ = WATCH.set(watch);
        }
        Err(e) => tracing::debug!("busy polling off: cannot watch the runtime's epoll: {e}"),
    }
}

/// The most sends in flight (in the process) with which a worker polls for an answer; with more it
/// sleeps at once.
///
/// Why: with few sends in flight each answer finds the worker asleep and pays a wake-up of its
/// own, which the poll saves (at 1 to 8 in flight the poll gave 1.1 to 2.6× the requests per
/// second). With more, answers come back to back: a worker that sleeps is woken for several at a
/// time and sleeps less often, while the poll's spins take CPU from the threads that make the
/// answers and the next sends on the same machine. Measured with the C client on library threads
/// against the echo worker on 2 cores (BENCHMARKS.md finding 29), without the poll against with
/// it: at 12, 16 and 32 in flight 1.04, 1.17 and 1.13× the requests per second at 0.64, 0.60 and
/// 0.60× the CPU per request; at 8, 0.90× at 0.81×.
const POLL_MAX_IN_FLIGHT: usize = 8;

/// What a worker about to sleep polls for, if anything: for the next send right after the last
/// one in flight completed on it (`last_done`), for an answer while at most
/// [`POLL_MAX_IN_FLIGHT`] sends are in flight; nothing with busy polling off (`max_us` 0).
fn wait_for(max_us: u32, in_flight: usize, last_done: bool) -> Option<Wait> {
    match (in_flight, last_done) {
        _ if max_us == 0 => None,
        (0, false) => None,
        (0, true) => Some(Wait::NextSend),
        (n, _) if n > POLL_MAX_IN_FLIGHT => None,
        _ => Some(Wait::Answer),
    }
}

thread_local! {
    /// When this worker started to wait (poll, then sleep), if it polled.
    static WAIT_FROM: Cell<Option<(Wait, Instant)>> = const { Cell::new(None) };
}

/// Before a library worker parks (tokio's `on_thread_park`).
pub(super) fn before_park() {
    let max = MAX_US.load(Ordering::Relaxed);
    let last_done = take_last_send_done_here();
    let Some(wait) = wait_for(max, sends_in_flight(), last_done) else {
        return;
    };
    let Some(watch) = WATCH.get() else { return };
    let start = Instant::now();
    let length = wait.current().load(Ordering::Relaxed).min(max);
    if length > 0 {
        let handle = tokio::runtime::Handle::try_current().ok();
        let queued = || handle.as_ref().is_some_and(|h| h.metrics().global_queue_depth() > 0);
        if watch.poll(Duration::from_micros(u64::from(length)), queued).is_none() {
            return; // another worker polls: sleep, and leave the adaptation to it
        }
    }
    WAIT_FROM.with(|w| w.set(Some((wait, start))));
}

/// After a library worker wakes (tokio's `on_thread_unpark`): adapts the poll's length to how
/// long the wait was.
pub(super) fn after_unpark() {
    if let Some((wait, from)) = WAIT_FROM.with(|w| w.take()) {
        let max = MAX_US.load(Ordering::Relaxed);
        let waited = u64::try_from(from.elapsed().as_micros()).unwrap_or(u64::MAX);
        let current = wait.current();
        current.store(adapt(current.load(Ordering::Relaxed), max, waited), Ordering::Relaxed);
    }
}

/// The next poll length after a wait of `waited_us` (poll and sleep) with polls of `current_us`
/// and a maximum of `max_us`: twice as long (from [`GROW_FROM_US`]), up to the maximum, when the
/// wait ended within the maximum (a poll that long catches such a wait); half as long, down to
/// zero, when it did not.
fn adapt(current_us: u32, max_us: u32, waited_us: u64) -> u32 {
    if waited_us <= u64::from(max_us) {
        current_us.saturating_mul(2).max(GROW_FROM_US).min(max_us)
    } else {
        current_us / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_worker_polls_for_an_answer_while_few_sends_are_in_flight_and_for_the_next_send() {
        let waits = |max, in_flight, last_done| match wait_for(max, in_flight, last_done) {
            Some(Wait::Answer) => "answer",
            Some(Wait::NextSend) => "next send",
            None => "sleep",
        };
        assert_eq!(waits(100, 0, false), "sleep"); // nothing outstanding
        assert_eq!(waits(100, 0, true), "next send");
        assert_eq!(waits(100, 1, false), "answer");
        assert_eq!(waits(100, POLL_MAX_IN_FLIGHT, false), "answer");
        assert_eq!(waits(100, POLL_MAX_IN_FLIGHT, true), "answer");
        // many in flight: answers come back to back, the worker sleeps at once
        assert_eq!(waits(100, POLL_MAX_IN_FLIGHT + 1, false), "sleep");
        assert_eq!(waits(100, 256, true), "sleep");
        // busy polling off
        assert_eq!(waits(0, 0, true), "sleep");
        assert_eq!(waits(0, 1, false), "sleep");
    }

    #[test]
    fn polls_grow_while_waits_are_short_and_shrink_to_none_while_they_are_long() {
        // short waits: from none back up to the maximum, doubling
        let mut current = 0;
        let mut seen = vec![];
        for _ in 0..5 {
            current = adapt(current, 50, 30);
            seen.push(current);
        }
        assert_eq!(seen, [10, 20, 40, 50, 50]);
        // a wait of exactly the maximum counts as short
        assert_eq!(adapt(20, 50, 50), 40);
        // long waits (a peer answering in milliseconds): halving down to none
        let mut seen = vec![];
        for _ in 0..7 {
            current = adapt(current, 50, 2_000);
            seen.push(current);
        }
        assert_eq!(seen, [25, 12, 6, 3, 1, 0, 0]);
        // a smaller maximum caps a grown poll at once
        assert_eq!(adapt(40, 15, 10), 15);
        // off stays off
        assert_eq!(adapt(0, 0, 0), 0);
    }

    /// A reactor like the runtime's: an epoll instance (edge-triggered, as mio registers) with one
    /// end of a socket pair in it.
    fn reactor() -> (Poll, UnixStream, UnixStream) {
        let reactor = Poll::new().unwrap();
        let (peer, socket) = UnixStream::pair().unwrap();
        reactor
            .registry()
            .register(&mut SourceFd(&socket.as_raw_fd()), Token(1), Interest::READABLE)
            .unwrap();
        (reactor, peer, socket)
    }

    #[test]
    fn a_poll_ends_when_the_reactor_has_an_event_and_leaves_it_to_the_reactor() {
        let (mut reactor, mut peer, socket) = reactor();
        let watch = Watch::of(reactor.as_raw_fd()).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(b"answer").unwrap();
            peer
        });
        let start = Instant::now();
        assert_eq!(watch.poll(Duration::from_secs(60), || false), Some(true));
        assert!(start.elapsed() < Duration::from_secs(30), "the poll ran to its length");
        let mut peer = writer.join().unwrap();
        // the reactor still gets its event, and the bytes are still there for it to read
        let mut events = Events::with_capacity(4);
        reactor.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(events.iter().map(|e| e.token()).collect::<Vec<_>>(), [Token(1)]);
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut &socket, &mut buf).unwrap();
        assert_eq!(&buf, b"answer");
        // the next answer, after the reactor took the last event, ends the next poll too
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(b"again").unwrap();
            peer
        });
        assert_eq!(watch.poll(Duration::from_secs(60), || false), Some(true));
        let _peer = writer.join().unwrap();
    }

    #[test]
    fn a_poll_ends_when_a_task_is_queued_and_runs_to_its_length_otherwise() {
        let (reactor, _peer, _socket) = reactor();
        let watch = Watch::of(reactor.as_raw_fd()).unwrap();
        let queued = Arc::new(AtomicBool::new(false));
        let flag = queued.clone();
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            flag.store(true, Ordering::SeqCst);
        });
        assert_eq!(
            watch.poll(Duration::from_secs(60), || queued.load(Ordering::SeqCst)),
            Some(true)
        );
        setter.join().unwrap();
        // nothing comes: the poll gives up after its length
        let start = Instant::now();
        assert_eq!(watch.poll(Duration::from_millis(5), || false), Some(false));
        assert!(start.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn one_worker_polls_at_a_time() {
        let (reactor, _peer, _socket) = reactor();
        let watch = Arc::new(Watch::of(reactor.as_raw_fd()).unwrap());
        let inside = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (w, i, r) = (watch.clone(), inside.clone(), release.clone());
        let first = std::thread::spawn(move || {
            w.poll(Duration::from_secs(60), || {
                i.store(true, Ordering::SeqCst);
                r.load(Ordering::SeqCst)
            })
        });
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert_eq!(watch.poll(Duration::from_secs(60), || true), None);
        release.store(true, Ordering::SeqCst);
        assert_eq!(first.join().unwrap(), Some(true));
    }

    #[test]
    fn the_epoll_made_between_two_looks_is_found() {
        let before = epoll_descriptors();
        let made = Poll::new().unwrap();
        let after = epoll_descriptors();
        assert!(after.contains(&made.as_raw_fd()), "{after:?}");
        let new: Vec<_> = after.iter().filter(|fd| !before.contains(fd)).collect();
        // other tests of this binary may make epolls meanwhile; ours is among the new ones
        assert!(new.contains(&&made.as_raw_fd()), "{new:?}");
        // a socket is not an epoll
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!epoll_descriptors().contains(&a.as_raw_fd()));
    }
}
