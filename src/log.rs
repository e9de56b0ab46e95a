//! Forwarding the library's `tracing` events (its own and those of tonic, h2 and hyper) to a sink,
//! such as a C log callback. The sink receives the level, the target and the message (the event's
//! `message` followed by its other fields as `name=value`) of every event at or above its level,
//! synchronously, on the thread that emitted it.
//!
//! The forwarding subscriber is the thread default on the library's runtime threads when the C ABI
//! started the runtime in a process without a subscriber of its own (see
//! [`silence_tracing_on_library_threads`](crate::runtime::silence_tracing_on_library_threads)). With
//! no sink set it is as silent as `tracing`'s no-op subscriber: it declares no interest in any
//! call site, so an event costs what it costs with no subscriber at all; setting or removing a sink
//! rebuilds `tracing`'s interest cache.

use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

/// Receives log events. Called on the thread that emitted the event, possibly on several threads
/// at once; it must return promptly.
pub trait LogSink: Send + Sync {
    /// One event: its level, its target (e.g. `jina_net::send`, `h2::proto::connection`) and its
    /// message with its fields.
    fn log(&self, level: Level, target: &str, message: &str);
}

struct Installed {
    sink: Arc<dyn LogSink>,
    max_level: LevelFilter,
}

static SINK: RwLock<Option<Installed>> = RwLock::new(None);
/// The max level as a number (0 = off, 1 = ERROR ... 5 = TRACE), read without the lock.
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread runs the sink: events emitted meanwhile are dropped (no recursion),
    /// and the sink may not be replaced from inside itself.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
    static MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn level_number(level: LevelFilter) -> usize {
    match level.into_level() {
        None => 0,
        Some(Level::ERROR) => 1,
        Some(Level::WARN) => 2,
        Some(Level::INFO) => 3,
        Some(Level::DEBUG) => 4,
        Some(Level::TRACE) => 5,
    }
}

fn current_max() -> LevelFilter {
    match MAX_LEVEL.load(Ordering::Acquire) {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Whether the calling thread is inside the sink right now.
pub fn in_sink() -> bool {
    IN_SINK.with(|f| f.get())
}

/// Sets (or with `None` removes) the sink and its level filter (`LevelFilter::OFF` also removes
/// it). When this returns, the previous sink is no longer called and no call to it is running.
/// Refused (returns `false`) when called from inside the sink.
pub fn set_sink(sink: Option<Arc<dyn LogSink>>, max_level: LevelFilter) -> bool {
    if in_sink() {
        return false;
    }
    let installed = sink
        .filter(|_| max_level != LevelFilter::OFF)
        .map(|sink| Installed { sink, max_level });
    let level = installed.as_ref().map_or(0, |i| level_number(i.max_level));
    {
        // Taking the write lock waits for calls of the previous sink to return.
        let mut guard = SINK.write().unwrap_or_else(|p| p.into_inner());
        *guard = installed;
        MAX_LEVEL.store(level, Ordering::Release);
    }
    library_dispatch();
    tracing::callsite::rebuild_interest_cache();
    true
}

/// The subscriber of the library's threads.
struct Forward;

impl Subscriber for Forward {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() && *metadata.level() <= current_max() {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(current_max())
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= current_max() && !in_sink()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // No span is ever enabled (see `enabled`); an id is still required.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let guard = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(installed) = guard.as_ref() else { return };
        if *event.metadata().level() > installed.max_level {
            return;
        }
        MESSAGE.with(|m| {
            let Ok(mut message) = m.try_borrow_mut() else { return };
            message.clear();
            event.record(&mut Fields(&mut message));
            IN_SINK.with(|f| f.set(true));
            installed
                .sink
                .log(*event.metadata().level(), event.metadata().target(), &message);
            IN_SINK.with(|f| f.set(false));
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Writes `message` first, then the other fields as ` name=value`.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let text = format!("{value:?}");
            self.0.insert_str(0, &text);
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

/// The dispatcher the runtime installs on its threads (one shared instance).
pub fn library_dispatch() -> Dispatch {
    static DISPATCH: OnceLock<(Dispatch, Dispatch)> = OnceLock::new();
    // `tracing` asks every registered dispatcher about a call site (when it is first hit, and on
    // each rebuild) unless only one is registered: then it asks only the default dispatcher of the
    // thread at hand, which on a caller's thread is the no-op one, and a call site first hit there
    // would stay disabled on the library's threads too. A second registered instance keeps
    // `tracing` asking them all.
    DISPATCH
        .get_or_init(|| (Dispatch::new(Forward), Dispatch::new(Forward)))
        .0
        .clone()
}
