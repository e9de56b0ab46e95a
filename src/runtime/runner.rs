//! The sends of a caller-driven runtime, or of the library runtime when it has one worker, and the
//! tasks their channels spawn (the HTTP/2 connections), polled by one tokio task (the runner)
//! instead of a tokio task each. A send then costs no task of its own: no spawn, no task-id
//! bookkeeping in the thread-locals (a call each in a shared library), no scheduler round per
//! wake-up; and a wake-up of the runner polls every send that is ready. Each task gets a slot whose
//! waker is made once and reused by the tasks that take the slot after it, so a task allocates
//! nothing here but its boxed future. Tasks handed over while no thread drives a caller-driven
//! runtime wait in a queue for the next drive; the library runtime counts as always driven.
//!
//! The runner lives while the runtime does (an idle one costs its slots' memory); it ends only when
//! a caller-driven runtime closes and its last task is done, or when a task panics (then every task
//! it held is dropped, and the next one handed over starts a new runner). Callers that must keep
//! one task's panic from the others poll through a [`PollGuard`] that catches it, or catch it
//! inside the task (the C ABI does both: its sends complete with the panic).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::Handle;

use super::context::on_library_thread;

/// A send's task.
pub(super) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The most tasks the kept vectors (queued tasks, slots) keep room for while idle.
pub(super) const KEPT_MAX: usize = 1024;

/// The most rounds one poll of the runner runs (see [`RunnerTask::poll`]): a bound for tasks that
/// wake themselves while polled (a batching connection yields so), so that the runtime's other
/// tasks and its I/O still get their turn.
const ROUNDS: usize = 16;

/// How a runner polls each task: `guard(poll)` runs `poll` and returns its result. An embedder
/// that catches panics (the C ABI) returns `Ready` for a task that panicked: that task is dropped
/// and the runner's other tasks go on, instead of all being dropped with the runner.
pub type PollGuard = fn(&mut dyn FnMut() -> Poll<()>) -> Poll<()>;

/// The tasks of one runtime: queued, or held by its runner. Shared with the slots' wakers.
pub(super) struct Tasks {
    state: Mutex<State>,
    /// The runtime's handle (to spawn the runner on).
    handle: Handle,
    guard: Option<PollGuard>,
    /// A caller-driven runtime's runner, polled by the future of its `drive` ([`Inline`]); `None`:
    /// the runner is a tokio task.
    inline: Option<Inline>,
}

/// The runner of a caller-driven runtime, polled inside the future that `drive` gives tokio's
/// `block_on`, on the thread that runs the runtime, instead of as a tokio task.
///
/// Why: a completion wakes the future of `block_on` (its `until`), and tokio's current-thread
/// scheduler, when that future was woken by a task it ran, checks its I/O driver without waiting
/// (an `epoll_wait`) before it polls the future again: one system call and a round of the
/// scheduler per poll that returns (BENCHMARKS.md finding 25). Polled inside that future, the
/// runner completes the send and the future returns in the same poll; and the I/O that wakes a
/// task wakes that future directly.
///
/// Only the thread that runs the runtime (holds tokio's scheduler) polls it: tokio polls that
/// thread's future with the runtime's own waker, the same for every `block_on` of the runtime,
/// which the runner keeps as its waker ([`Runner::Parked`]). Other threads inside `drive` wait for
/// their own `until` (tokio polls their futures with a waker of their thread) and leave the runner
/// alone: a waker of theirs kept by the runner would wake nobody once they left.
pub(super) struct Inline {
    /// The waker tokio's `block_on` polls with on the thread that runs the runtime.
    core: Waker,
    runner: Mutex<Option<RunnerTask>>,
}

impl Inline {
    /// For a current-thread runtime that no thread runs yet: learns the waker of its `block_on`,
    /// and checks with a second `block_on` that the test [`Tasks::poll_inline`] makes recognizes
    /// it (one waker for the runtime); `None` if it does not, or when called inside a runtime
    /// (where `block_on` is refused: a pool made in a completion callback).
    pub(super) fn learn(runtime: &tokio::runtime::Runtime) -> Option<Inline> {
        if Handle::try_current().is_ok() {
            return None;
        }
        let core = runtime.block_on(std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let same = runtime.block_on(std::future::poll_fn(|cx| Poll::Ready(cx.waker().will_wake(&core))));
        same.then(|| Inline {
            core,
            runner: Mutex::new(None),
        })
    }

    fn runner(&self) -> MutexGuard<'_, Option<RunnerTask>> {
        self.runner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct State {
    /// Threads inside `drive` (one runs the runtime, the others wait for it).
    drivers: usize,
    /// Tasks handed over and not yet taken by the runner. Swapped with the runner's empty vector,
    /// so that a send queues without an allocation of the vector's own.
    queued: Vec<Task>,
    /// Slots whose task was woken since the runner last looked (swapped like `queued`).
    woken: Vec<usize>,
    runner: Runner,
    /// The runtime is closing: the runner ends once it holds no task.
    closing: bool,
}

/// The runner's state, as the threads handing over tasks and waking them see it.
#[derive(Default)]
enum Runner {
    /// None (not started yet, or ended).
    #[default]
    None,
    /// Spawned or woken, and not yet parked: it looks at the queue before it parks.
    Scheduled,
    /// Parked (every task it holds waits): wake it to look.
    Parked(Waker),
}

/// What to do, outside the lock, for what was just queued or woken.
#[must_use]
enum Start {
    Nothing,
    Wake(Waker),
    Spawn,
}

fn lock(tasks: &Tasks) -> MutexGuard<'_, State> {
    tasks.state.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The tasks of the caller-driven runtime this thread drives, while it does.
    static DRIVEN: RefCell<Option<Arc<Tasks>>> = const { RefCell::new(None) };
}

/// Names `tasks` as those of the runtime this thread drives, until the guard drops.
pub(super) fn driving_tasks(tasks: &Arc<Tasks>) -> impl Drop {
    struct Restore(Option<Arc<Tasks>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            DRIVEN.with(|d| *d.borrow_mut() = previous);
        }
    }
    Restore(DRIVEN.with(|d| d.borrow_mut().replace(tasks.clone())))
}

/// The tasks of the library runtime when it has one worker (`library.rs`), set when it starts.
static LIBRARY: OnceLock<Arc<Tasks>> = OnceLock::new();

pub(super) fn set_library_tasks(tasks: Arc<Tasks>) {
    let _ = LIBRARY.set(tasks);
}

pub(super) fn library_tasks() -> Option<&'static Arc<Tasks>> {
    LIBRARY.get()
}

/// On a library thread, hands `task` to the library runtime's runner, if it has one; else
/// `Err(task)`. For the tasks a channel spawns (its connection and connection attempts).
pub(super) fn spawn_on_library_runner(task: Task) -> Result<(), Task> {
    match LIBRARY.get() {
        Some(tasks) if on_library_thread() => {
            tasks.push(task);
            Ok(())
        }
        _ => Err(task),
    }
}

/// Hands `task` to the runner of the caller-driven runtime this thread drives; `Err(task)` when it
/// drives none. For the tasks a channel spawns while a send runs (its connection and connection
/// attempts): they run where it does, on the runtime being driven, and cost no tokio task either.
pub(super) fn spawn_where_driven(task: Task) -> Result<(), Task> {
    DRIVEN.with(|d| match &*d.borrow() {
        Some(tasks) => {
            tasks.push(task);
            Ok(())
        }
        None => Err(task),
    })
}

impl State {
    /// Sees that the runner takes the queue: starts one, wakes it, or nothing (it is scheduled).
    fn start(&mut self) -> Start {
        if self.queued.is_empty() {
            return Start::Nothing;
        }
        match std::mem::replace(&mut self.runner, Runner::Scheduled) {
            Runner::None => Start::Spawn,
            Runner::Scheduled => Start::Nothing,
            Runner::Parked(waker) => Start::Wake(waker),
        }
    }
}

impl Tasks {
    /// The tasks of a caller-driven runtime: their runner polled by `drive`'s future when `inline`
    /// is given (see [`Inline`]), else a tokio task.
    pub(super) fn new(handle: Handle, guard: Option<PollGuard>, inline: Option<Inline>) -> Tasks {
        Tasks {
            state: Mutex::default(),
            handle,
            guard,
            inline,
        }
    }

    /// For a runtime that runs on its own threads (the library runtime): always driven, so a task
    /// handed over starts or wakes the runner at once.
    pub(super) fn always_driven(handle: Handle, guard: Option<PollGuard>) -> Tasks {
        Tasks {
            state: Mutex::new(State {
                drivers: 1,
                ..State::default()
            }),
            handle,
            guard,
            inline: None,
        }
    }

    /// Hands `task` over (from any thread). While no thread drives the runtime, it waits for the
    /// next drive ([`run_queued`](Self::run_queued)): a burst of sends made between two polls costs
    /// no wake-up each (waking the runner from outside the runtime writes to its I/O driver's
    /// eventfd, a system call, although nobody waits in it), and their requests start together.
    pub(super) fn push(self: &Arc<Self>, task: Task) {
        let mut state = lock(self);
        state.queued.push(task);
        if state.drivers == 0 {
            return;
        }
        let start = state.start();
        drop(state);
        self.act(start);
    }

    /// Counts the calling thread as a driver until the guard drops.
    pub(super) fn start_driving(&self) -> Driving<'_> {
        lock(self).drivers += 1;
        Driving(self)
    }

    /// Has the runner take the tasks that waited for a drive (called on the runtime being driven).
    pub(super) fn run_queued(self: &Arc<Self>) {
        let start = lock(self).start();
        self.act(start);
    }

    /// The runtime closes: the runner ends once its tasks are done (woken to see it). A runner that
    /// was not started stays so: the next `run_queued` starts it for what waits in the queue.
    pub(super) fn close(&self) {
        let mut state = lock(self);
        state.closing = true;
        if matches!(state.runner, Runner::Parked(_)) {
            if let Runner::Parked(waker) = std::mem::replace(&mut state.runner, Runner::Scheduled) {
                drop(state);
                waker.wake();
            }
        }
    }

    /// Drops the queued tasks (their sends complete as dropped).
    pub(super) fn drop_queued(&self) {
        let queued = std::mem::take(&mut lock(self).queued);
        drop(queued);
    }

    /// A slot's task was woken (from any thread).
    fn wake_slot(&self, index: usize) {
        let mut state = lock(self);
        match &state.runner {
            // Parked: woken to poll the slot. Scheduled: it looks before it parks.
            Runner::Parked(_) | Runner::Scheduled => state.woken.push(index),
            // A stale wake-up of a dropped runner's slot: nothing to run.
            Runner::None => return,
        }
        if let Runner::Parked(waker) = std::mem::replace(&mut state.runner, Runner::Scheduled) {
            drop(state);
            waker.wake();
        }
    }

    fn act(self: &Arc<Self>, start: Start) {
        match start {
            Start::Nothing => {}
            Start::Wake(waker) => waker.wake(),
            Start::Spawn => {
                let runner = self.new_runner();
                match &self.inline {
                    Some(inline) => {
                        *inline.runner() = Some(runner);
                        inline.core.wake_by_ref();
                    }
                    None => drop(self.handle.spawn(runner)),
                }
            }
        }
    }

    /// Whether the runner is polled by `drive`'s future (see [`Inline`]).
    pub(super) fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// Polls the inline runner (see [`Inline`]), starting it for tasks that wait for it, if this
    /// runtime has one and `cx` is the waker of the thread that runs the runtime; called first by
    /// every future the runtime's `block_on` runs. (Started here rather than woken: a wake-up
    /// from inside `block_on` makes tokio check its I/O driver once more before the next poll.)
    pub(super) fn poll_inline(self: &Arc<Self>, cx: &mut Context<'_>) {
        let Some(inline) = &self.inline else {
            return;
        };
        if !cx.waker().will_wake(&inline.core) {
            return;
        }
        // Taken out while it runs: its tasks may hand over tasks (which lock the state, not this).
        let taken = inline.runner().take();
        let mut runner = match taken {
            Some(runner) => runner,
            None => {
                let mut state = lock(self);
                if state.queued.is_empty() || !matches!(state.runner, Runner::None) {
                    return;
                }
                state.runner = Runner::Scheduled;
                drop(state);
                self.new_runner()
            }
        };
        // Without tokio's budget: a resource out of budget defers its waker to the scheduler's
        // next check of its I/O driver, and `block_on` returning (its future done in this same
        // poll) drops the deferred wakers: the task would never be woken. As a tokio task the
        // runner's deferred wakers were woken before `block_on` looked at its future again.
        let mut poll = tokio::task::unconstrained(std::future::poll_fn(|cx| Pin::new(&mut runner).poll(cx)));
        let pending = Pin::new(&mut poll).poll(cx).is_pending();
        drop(poll);
        if pending {
            *inline.runner() = Some(runner);
        }
    }

    fn new_runner(self: &Arc<Self>) -> RunnerTask {
        RunnerTask {
            tasks: self.clone(),
            slots: Vec::new(),
            free: Vec::new(),
            queued: Vec::new(),
            woken: Vec::new(),
            ended: false,
        }
    }

    /// Whether an inline runner exists (it holds tasks, or waits for some).
    pub(super) fn inline_running(&self) -> bool {
        self.inline.as_ref().is_some_and(|inline| inline.runner().is_some())
    }

    /// Drops the inline runner and the tasks it holds (their sends complete as dropped): they
    /// hold the wakers of its slots, which hold these tasks.
    pub(super) fn drop_inline(&self) {
        if let Some(inline) = &self.inline {
            let runner = inline.runner().take();
            drop(runner);
        }
    }

    #[cfg(test)]
    pub(super) fn queued(&self) -> (usize, usize) {
        let state = lock(self);
        (state.queued.len(), state.queued.capacity())
    }
}

/// Counts a thread inside `drive` while it lives.
pub(super) struct Driving<'a>(&'a Tasks);

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        lock(self.0).drivers -= 1;
    }
}

/// The waker of one slot: it names the slot to the runner (once until the runner polls it again).
struct SlotWaker {
    tasks: Arc<Tasks>,
    index: usize,
    /// Woken and not yet polled.
    woken: AtomicBool,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.tasks.wake_slot(self.index);
        }
    }
}

/// A place for one task, with its waker (made once, for every task the slot holds).
struct Slot {
    task: Option<Task>,
    flag: Arc<SlotWaker>,
    waker: Waker,
}

/// The runner: one tokio task that polls the tasks it holds in its slots.
struct RunnerTask {
    tasks: Arc<Tasks>,
    slots: Vec<Slot>,
    /// Slots without a task.
    free: Vec<usize>,
    /// Emptied vectors, swapped with the state's to take what was queued or woken.
    queued: Vec<Task>,
    woken: Vec<usize>,
    /// It ended normally (the state says so already).
    ended: bool,
}

impl RunnerTask {
    /// Puts `task` in a free slot (or a new one) and returns the slot.
    fn place(&mut self, task: Task) -> usize {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = self.slots.len();
                let flag = Arc::new(SlotWaker {
                    tasks: self.tasks.clone(),
                    index,
                    woken: AtomicBool::new(false),
                });
                let waker = Waker::from(flag.clone());
                self.slots.push(Slot {
                    task: None,
                    flag,
                    waker,
                });
                index
            }
        };
        self.slots[index].task = Some(task);
        index
    }

    /// Polls the task in slot `index`, if any (a stale wake-up finds none, or a later task that
    /// takes the poll as spurious); frees the slot when the task is done.
    fn poll_slot(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        slot.flag.woken.store(false, Ordering::Release);
        let Some(task) = slot.task.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&slot.waker);
        let poll = match self.tasks.guard {
            Some(guard) => guard(&mut || task.as_mut().poll(&mut cx)),
            None => task.as_mut().poll(&mut cx),
        };
        if poll.is_ready() {
            slot.task = None;
            self.free.push(index);
        }
    }

    /// Whether no slot holds a task.
    fn idle(&self) -> bool {
        self.free.len() == self.slots.len()
    }
}

impl Future for RunnerTask {
    type Output = ();

    /// Polls the tasks queued (new ones) and woken since the last poll, then those that this woke
    /// (a send wakes its connection, a connection the sends it read answers for), round after round
    /// while there are some: each round polls every task ready before it, so a connection polled in
    /// a round writes what every send of the round before queued. After [`ROUNDS`] rounds, what is
    /// still woken runs at the next poll, after the runtime's other tasks and its I/O (the runner
    /// wakes itself for it); a round that leaves nothing woken parks the runner.
    ///
    /// Why rounds: a runner that woke itself for each round went through the runtime's scheduler
    /// for each hop from one task to the next (8 polls of the runner per request at 1 in flight,
    /// 2 now: BENCHMARKS.md finding 24).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..ROUNDS {
            {
                let mut state = lock(&this.tasks);
                if state.queued.is_empty() && state.woken.is_empty() {
                    if this.idle() && state.closing {
                        state.runner = Runner::None;
                        this.ended = true;
                        return Poll::Ready(());
                    }
                    state.runner = Runner::Parked(cx.waker().clone());
                    drop(state);
                    if this.idle() && this.slots.len() > KEPT_MAX {
                        this.slots = Vec::new();
                        this.free = Vec::new();
                    }
                    return Poll::Pending;
                }
                std::mem::swap(&mut state.queued, &mut this.queued);
                std::mem::swap(&mut state.woken, &mut this.woken);
                state.runner = Runner::Scheduled;
            }
            let mut queued = std::mem::take(&mut this.queued);
            for task in queued.drain(..) {
                let index = this.place(task);
                this.poll_slot(index);
            }
            this.queued = keep(queued);
            let mut woken = std::mem::take(&mut this.woken);
            for index in woken.drain(..) {
                this.poll_slot(index);
            }
            this.woken = keep(woken);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// An emptied vector, kept unless a rare burst made it large.
fn keep<T>(v: Vec<T>) -> Vec<T> {
    if v.capacity() > KEPT_MAX {
        Vec::new()
    } else {
        v
    }
}

impl Drop for RunnerTask {
    /// Dropped before it ended (the runtime shut down, or a task panicked): the next task handed
    /// over starts a new runner. The held tasks are dropped after this (their sends complete as
    /// dropped).
    fn drop(&mut self) {
        if !self.ended {
            let mut state = lock(&self.tasks);
            state.runner = Runner::None;
            state.woken.clear();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Duration;

    /// Sets its flag when dropped (also for `driven.rs`'s tests).
    pub(in crate::runtime) struct DropFlag(pub(in crate::runtime) Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_task_handed_over_after_a_shutdown_waits_until_drop_queued() {
        // An always-driven runner (the library runtime's) on a one-worker runtime.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let tasks = Arc::new(Tasks::always_driven(rt.handle().clone(), None));
        let (ran, done) = std::sync::mpsc::channel();
        tasks.push(Box::pin(async move { ran.send(()).unwrap() }));
        done.recv_timeout(Duration::from_secs(10))
            .expect("the runner ran the task");
        rt.shutdown_timeout(Duration::from_secs(5));
        // The runner is gone with the runtime; a new one, spawned on a runtime shut down, is dropped
        // unpolled: the task stays queued (why the library drops the queue after a shutdown).
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        tasks.push(Box::pin(async move {
            let _flag = flag;
        }));
        assert!(!dropped.load(Ordering::SeqCst), "nobody runs it");
        assert_eq!(lock(&tasks).queued.len(), 1);
        tasks.drop_queued();
        assert!(dropped.load(Ordering::SeqCst), "dropped: its send completes as dropped");
    }
}
