//! Completing a send: the callback type, the result structs C reads during the callback, and the
//! guard that makes every send complete exactly once (also when its task is dropped or panics).

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::metadata::jina_net_metadata;
use super::response::jina_net_response;
use super::result::{jina_net_result, Failure};
use crate::error::{Error, ReplicaSet};
use crate::pool::TargetResult;
use crate::replica::Response;

/// Completion callback of a send. Called exactly once per send that was started with `JINA_NET_OK`,
/// on a library runtime thread (a caller-driven pool, or one with `callbacks_in_poll`: on the thread
/// polling it; if the runtime is shut down while the send is pending, on the thread calling
/// `jina_net_runtime_shutdown`).
/// `result` and everything it points to is valid only during the call; read its targets with
/// `jina_net_send_result_target`, keep a response with `jina_net_send_result_retain_response`. The
/// callback must return promptly, must not block on the library (blocking helpers fail with
/// `JINA_NET_RUNTIME_ERROR` there) and must not unwind (no C++ exception may escape it).
pub type jina_net_send_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: *const jina_net_send_result)>;

/// The outcome of a send at one target, read through `jina_net_send_result_target`. The library may
/// append fields in later versions: `struct_size` says how many bytes this one has, so a field
/// `f` can be read when `struct_size >= offsetof(jina_net_target_result, f) + sizeof f`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_target_result {
    /// The size of this struct in the library that made it.
    pub struct_size: usize,
    /// `JINA_NET_OK`, or why this target failed.
    pub status: jina_net_result,
    /// The gRPC status code (0 = OK); -1 when the failure had no gRPC status (e.g. pool closed).
    pub grpc_code: i32,
    /// Whether the target was the deployment's head.
    pub head: bool,
    /// The shard the target belongs to; -1 for a head or a one-shot send to an address.
    pub shard_id: i64,
    /// `host:port` of the replica, NUL-terminated.
    pub address: *const c_char,
    /// The gRPC status message ("" when OK), NUL-terminated.
    pub grpc_message: *const c_char,
    /// A message naming deployment, shard/head, address and gRPC status ("" when OK).
    pub error_message: *const c_char,
    /// The serialized response message (NULL/0 on failure).
    pub response: *const u8,
    /// Its length.
    pub response_len: usize,
    /// Number of trailing metadata entries (on failure: the metadata of the error status), read with
    /// `jina_net_target_result_metadata`.
    pub metadata_len: usize,
    /// Library-internal; do not touch.
    pub internal: *const c_void,
}

/// The outcome of a send, handed to its callback. The library may append fields in later versions
/// (see `jina_net_target_result`).
#[repr(C)]
#[derive(Debug)]
pub struct jina_net_send_result {
    /// The size of this struct in the library that made it.
    pub struct_size: usize,
    /// The id the send function returned in `out_send_id` (0 for the one-shot helpers).
    pub send_id: u64,
    /// `JINA_NET_OK` when every target answered; else the status of the first failed target, or
    /// `JINA_NET_POOL_CLOSED` / `JINA_NET_CANCELLED` / `JINA_NET_RUNTIME_ERROR` / `JINA_NET_PANIC`.
    pub status: jina_net_result,
    /// The message of `status` ("" when OK), NUL-terminated.
    pub error_message: *const c_char,
    /// Number of targets reached (ALL: one per shard), read in shard order with
    /// `jina_net_send_result_target`.
    pub targets_len: usize,
    /// Library-internal; do not touch.
    pub internal: *const c_void,
}

/// What a send produced.
pub(crate) enum Outcome {
    /// Results of a pool send.
    Targets(Vec<TargetResult>),
    /// Result of a one-shot send to an address.
    Single {
        address: Arc<str>,
        result: Result<Response, Error>,
    },
    /// The send failed as a whole.
    Failed(Failure),
}

struct TargetView<'a> {
    replica_set: Option<ReplicaSet>,
    address: &'a str,
    result: &'a Result<Response, Error>,
}

impl Outcome {
    fn len(&self) -> usize {
        match self {
            Outcome::Targets(ts) => ts.len(),
            Outcome::Single { .. } => 1,
            Outcome::Failed(_) => 0,
        }
    }

    fn view(&self, i: usize) -> Option<TargetView<'_>> {
        match self {
            Outcome::Targets(ts) => ts.get(i).map(|t| TargetView {
                replica_set: Some(t.replica_set),
                address: &t.address,
                result: &t.result,
            }),
            Outcome::Single { address, result } if i == 0 => Some(TargetView {
                replica_set: None,
                address,
                result,
            }),
            _ => None,
        }
    }
}

/// Reused buffers for building results (per thread that completes sends).
#[derive(Default)]
struct Scratch {
    /// Every string of a result, NUL-terminated, one after the other.
    strings: Vec<u8>,
    /// Per target, where its strings and metadata lie while `strings` may still grow.
    pending: Vec<PendingTarget>,
    /// Per metadata entry: the offset of its key in `strings`, and its value.
    pending_metadata: Vec<(usize, *const u8, usize)>,
    /// What C reads, built once nothing grows any more.
    targets: Vec<jina_net_target_result>,
    metadata: Vec<jina_net_metadata>,
}

impl Scratch {
    fn clear(&mut self) {
        self.strings.clear();
        self.pending.clear();
        self.pending_metadata.clear();
        self.targets.clear();
        self.metadata.clear();
    }
}

/// A target whose strings are written but whose pointers are not made yet.
struct PendingTarget {
    status: jina_net_result,
    grpc_code: i32,
    head: bool,
    shard_id: i64,
    /// Offsets in `Scratch::strings`.
    address: usize,
    grpc_message: usize,
    error_message: usize,
    response: (*const u8, usize),
    /// Its entries in `Scratch::pending_metadata`.
    metadata: std::ops::Range<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Appends `s` (a NUL byte in it becomes `?`) and its terminating NUL; returns its offset.
fn push_str(strings: &mut Vec<u8>, s: &[u8]) -> usize {
    let at = strings.len();
    strings.extend(s.iter().map(|&b| if b == 0 { b'?' } else { b }));
    strings.push(0);
    at
}

/// A pointer to the string at `offset` of `strings`.
fn string_at(strings: &[u8], offset: usize) -> *const c_char {
    strings[offset..].as_ptr().cast()
}

/// Builds the C view of `outcome` and calls the callback with it.
fn deliver(callback: CallbackFn, user_data: *mut c_void, send_id: u64, outcome: &Outcome) {
    let fired = std::cell::Cell::new(false);
    let built = catch_unwind(AssertUnwindSafe(|| {
        if call_with_one_answer(callback, user_data, send_id, outcome, &fired) {
            return;
        }
        let mut scratch = SCRATCH.with(|s| s.borrow_mut().take()).unwrap_or_default();
        call_with_view(&mut scratch, callback, user_data, send_id, outcome, &fired);
        scratch.clear();
        SCRATCH.with(|s| *s.borrow_mut() = Some(scratch));
    }));
    if built.is_err() && !fired.get() {
        // Building the view panicked before the callback ran: report that, with static strings only.
        let result = jina_net_send_result {
            struct_size: std::mem::size_of::<jina_net_send_result>(),
            send_id,
            status: jina_net_result::JINA_NET_PANIC,
            error_message: c"libjina_net panicked while building a send result".as_ptr(),
            targets_len: 0,
            internal: std::ptr::null(),
        };
        // SAFETY: the callback was checked non-NULL when the send started; `result` lives across the call.
        unsafe { callback(user_data, &result) };
    }
}

type CallbackFn = unsafe extern "C" fn(*mut c_void, *const jina_net_send_result);

/// The bytes of NUL-terminated strings (address, metadata keys) and the metadata entries that the
/// view of [`call_with_one_answer`] holds on the stack.
const STACK_STRINGS: usize = 256;
const STACK_METADATA: usize = 4;

/// The usual outcome, one target that answered with a few trailing metadata entries (Jina's
/// runtimes send `is-error`): its view is built on the stack (no thread-local buffers; nothing
/// copied but the address and the keys) and the callback called. `false` (and nothing called) for
/// any other outcome.
fn call_with_one_answer(
    callback: CallbackFn,
    user_data: *mut c_void,
    send_id: u64,
    outcome: &Outcome,
    fired: &std::cell::Cell<bool>,
) -> bool {
    let (Some(view), 1) = (outcome.view(0), outcome.len()) else {
        return false;
    };
    let Ok(response) = view.result else {
        return false;
    };
    if response.trailers.len() > STACK_METADATA {
        return false;
    }
    let mut strings = [0u8; STACK_STRINGS];
    let mut used = 0;
    // Copies `s` and a NUL into `strings`; its offset, or `None` when it does not fit or holds a NUL.
    let mut push = |s: &[u8]| {
        let end = used + s.len();
        if end >= STACK_STRINGS || has_nul(s) {
            return None;
        }
        strings[used..end].copy_from_slice(s);
        let at = used;
        used = end + 1;
        Some(at)
    };
    let Some(address) = push(view.address.as_bytes()) else {
        return false;
    };
    let mut entries = [(0usize, std::ptr::null::<u8>(), 0usize); STACK_METADATA];
    let mut metadata_len = 0;
    for entry in response.trailers.iter() {
        let (key, value) = key_value(entry);
        let Some(key) = push(key.as_bytes()) else {
            return false;
        };
        entries[metadata_len] = (key, value.as_ptr(), value.len());
        metadata_len += 1;
    }
    let at = |offset: usize| -> *const c_char { strings[offset..].as_ptr().cast() };
    let metadata = entries.map(|(key, value, value_len)| jina_net_metadata {
        key: at(key),
        value,
        value_len,
    });
    let target = jina_net_target_result {
        struct_size: std::mem::size_of::<jina_net_target_result>(),
        status: jina_net_result::JINA_NET_OK,
        grpc_code: 0,
        head: is_head(view.replica_set),
        shard_id: shard_id(view.replica_set),
        address: at(address),
        grpc_message: c"".as_ptr(),
        error_message: c"".as_ptr(),
        response: response.body.as_ptr(),
        response_len: response.body.len(),
        metadata_len,
        internal: if metadata_len == 0 {
            std::ptr::null()
        } else {
            metadata.as_ptr().cast()
        },
    };
    let targets = [target];
    let internals = ResultInternals {
        outcome,
        targets: &targets,
    };
    let result = jina_net_send_result {
        struct_size: std::mem::size_of::<jina_net_send_result>(),
        send_id,
        status: jina_net_result::JINA_NET_OK,
        error_message: c"".as_ptr(),
        targets_len: 1,
        internal: (&internals as *const ResultInternals<'_>).cast(),
    };
    fired.set(true);
    // SAFETY: the callback was checked non-NULL; everything `result` points to outlives the call.
    unsafe { callback(user_data, &result) };
    true
}

/// Whether `s` holds a NUL byte, eight bytes at a time (addresses and keys are short: the standard
/// library searches slices under 16 bytes a byte at a time, about 6 instructions each).
fn has_nul(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    s.chunks(8).any(|chunk| {
        // The bytes past the chunk's end are not NUL.
        let mut word = [0xffu8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        word.wrapping_sub(ONES) & !word & HIGHS != 0
    })
}

/// A metadata entry's key and its value as on the wire.
fn key_value(entry: tonic::metadata::KeyAndValueRef<'_>) -> (&str, &[u8]) {
    match entry {
        tonic::metadata::KeyAndValueRef::Ascii(k, v) => (k.as_str(), v.as_encoded_bytes()),
        tonic::metadata::KeyAndValueRef::Binary(k, v) => (k.as_str(), v.as_encoded_bytes()),
    }
}

/// Whether a target is the deployment's head.
fn is_head(replica_set: Option<ReplicaSet>) -> bool {
    replica_set == Some(ReplicaSet::Head)
}

/// A target's shard as C reads it: -1 for a head or a one-shot send to an address.
fn shard_id(replica_set: Option<ReplicaSet>) -> i64 {
    match replica_set {
        Some(ReplicaSet::Shard(id)) => i64::from(id),
        _ => -1,
    }
}

/// First pass: every string of `outcome` into `scratch.strings`, with offsets kept per target
/// (metadata values and response bodies point into `outcome` directly). Returns the overall status
/// and the offset of its message.
fn write_strings(scratch: &mut Scratch, outcome: &Outcome) -> (jina_net_result, usize) {
    let Scratch {
        strings,
        pending,
        pending_metadata,
        ..
    } = scratch;
    let mut overall: Option<(jina_net_result, usize)> = None;
    for i in 0..outcome.len() {
        let Some(view) = outcome.view(i) else { break };
        let address = push_str(strings, view.address.as_bytes());
        let meta_start = pending_metadata.len();
        let (status, grpc_code, grpc_message, error_message, response, map) = match view.result {
            Ok(r) => {
                let empty = push_str(strings, b"");
                let body = (r.body.as_ptr(), r.body.len());
                (jina_net_result::JINA_NET_OK, 0, empty, empty, body, Some(&r.trailers))
            }
            Err(e) => {
                let status = jina_net_result::of(e);
                let (code, msg, map) = match e {
                    Error::Rpc(rpc) => (rpc.code as i32, rpc.message.as_bytes(), Some(&rpc.metadata)),
                    _ => (-1, &b""[..], None),
                };
                let grpc_message = push_str(strings, msg);
                let error_message = push_str(strings, e.to_string().as_bytes());
                overall.get_or_insert((status, error_message));
                (status, code, grpc_message, error_message, (std::ptr::null(), 0), map)
            }
        };
        for entry in map.into_iter().flat_map(|m| m.iter()) {
            let (key, value) = key_value(entry);
            let key = push_str(strings, key.as_bytes());
            pending_metadata.push((key, value.as_ptr(), value.len()));
        }
        pending.push(PendingTarget {
            status,
            grpc_code,
            head: is_head(view.replica_set),
            shard_id: shard_id(view.replica_set),
            address,
            grpc_message,
            error_message,
            response,
            metadata: meta_start..pending_metadata.len(),
        });
    }
    match outcome {
        Outcome::Failed(f) => (f.code, push_str(strings, f.message.as_bytes())),
        _ => overall.unwrap_or_else(|| (jina_net_result::JINA_NET_OK, push_str(strings, b""))),
    }
}

fn call_with_view(
    scratch: &mut Scratch,
    callback: CallbackFn,
    user_data: *mut c_void,
    send_id: u64,
    outcome: &Outcome,
    fired: &std::cell::Cell<bool>,
) {
    let (status, message) = write_strings(scratch, outcome);
    // Second pass: `strings` no longer grows; make the pointers C reads.
    let Scratch {
        strings,
        pending,
        pending_metadata,
        targets,
        metadata,
    } = scratch;
    metadata.extend(
        pending_metadata
            .iter()
            .map(|&(key, value, value_len)| jina_net_metadata {
                key: string_at(strings, key),
                value,
                value_len,
            }),
    );
    targets.extend(pending.iter().map(|p| jina_net_target_result {
        struct_size: std::mem::size_of::<jina_net_target_result>(),
        status: p.status,
        grpc_code: p.grpc_code,
        head: p.head,
        shard_id: p.shard_id,
        address: string_at(strings, p.address),
        grpc_message: string_at(strings, p.grpc_message),
        error_message: string_at(strings, p.error_message),
        response: p.response.0,
        response_len: p.response.1,
        metadata_len: p.metadata.len(),
        internal: if p.metadata.is_empty() {
            std::ptr::null()
        } else {
            metadata[p.metadata.clone()].as_ptr().cast()
        },
    }));
    let internals = ResultInternals { outcome, targets };
    let result = jina_net_send_result {
        struct_size: std::mem::size_of::<jina_net_send_result>(),
        send_id,
        status,
        error_message: string_at(strings, message),
        targets_len: targets.len(),
        internal: (&internals as *const ResultInternals<'_>).cast(),
    };
    fired.set(true);
    // SAFETY: the callback was checked non-NULL; everything `result` points to outlives the call.
    unsafe { callback(user_data, &result) };
}

/// What `jina_net_send_result.internal` points to during the callback.
struct ResultInternals<'a> {
    outcome: &'a Outcome,
    targets: &'a [jina_net_target_result],
}

/// # Safety
/// `result` is NULL or the pointer a callback received, used during the callback.
unsafe fn internals<'a>(result: *const jina_net_send_result) -> Option<&'a ResultInternals<'a>> {
    // SAFETY: the caller's promise; `internal` is NULL or points to the `ResultInternals` that lives
    // for the duration of the callback.
    unsafe { result.as_ref()?.internal.cast::<ResultInternals<'a>>().as_ref() }
}

/// Target `index` of a send result (`index < result->targets_len`), valid during the callback; NULL
/// when `result` is NULL or `index` is out of range.
///
/// # Safety
/// `result` must be NULL or the pointer the callback received, used during the callback.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_result_target(
    result: *const jina_net_send_result,
    index: usize,
) -> *const jina_net_target_result {
    super::result::boundary_value(std::ptr::null(), || {
        // SAFETY: as documented.
        unsafe { internals(result) }
            .and_then(|i| i.targets.get(index))
            .map_or(std::ptr::null(), |t| t as *const jina_net_target_result)
    })
}

/// Trailing metadata entry `index` of a target (`index < target->metadata_len`), valid during the
/// callback: `key` is NUL-terminated and lower-case, `value` is as on the wire (base64 for `-bin`
/// keys). NULL when `target` is NULL or `index` is out of range.
///
/// # Safety
/// `target` must be NULL or come from `jina_net_send_result_target`, used during the callback.
#[no_mangle]
pub unsafe extern "C" fn jina_net_target_result_metadata(
    target: *const jina_net_target_result,
    index: usize,
) -> *const jina_net_metadata {
    super::result::boundary_value(std::ptr::null(), || {
        // SAFETY: as documented: a target the library made, whose `internal` points to its
        // `metadata_len` entries.
        let Some(t) = (unsafe { target.as_ref() }) else {
            return std::ptr::null();
        };
        if index >= t.metadata_len || t.internal.is_null() {
            return std::ptr::null();
        }
        // SAFETY: `index < metadata_len` entries start at `internal`.
        unsafe { t.internal.cast::<jina_net_metadata>().add(index) }
    })
}

/// Keeps the response of target `index` of a send result beyond the callback, without copying its
/// bytes. Only during the callback. `JINA_NET_INVALID_ARGUMENT` when the target has no response
/// (it failed) or `index` is out of range. Free the response with `jina_net_response_free`.
///
/// # Safety
/// `result` must be the pointer the callback received, used during the callback.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_result_retain_response(
    result: *const jina_net_send_result,
    index: usize,
    out_response: *mut *mut jina_net_response,
) -> jina_net_result {
    super::result::boundary("jina_net_send_result_retain_response", || {
        // SAFETY: the caller passes the result of the running callback.
        let result = unsafe { result.as_ref() }.ok_or_else(|| Failure::null("result"))?;
        let out = super::args::out(out_response, "out_response")?;
        // SAFETY: the caller passes the result of the running callback.
        let outcome = unsafe { internals(result) }
            .map(|i| i.outcome)
            .ok_or_else(|| Failure::new(jina_net_result::JINA_NET_INVALID_ARGUMENT, "result has no responses"))?;
        let view = outcome.view(index).ok_or_else(|| {
            Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                format!("target index {index} out of range ({} targets)", outcome.len()),
            )
        })?;
        let response = view.result.as_ref().map_err(|e| {
            Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                format!("target {index} has no response: {e}"),
            )
        })?;
        *out = Box::into_raw(jina_net_response::new(response.clone()));
        Ok(())
    })
}

/// `user_data` crosses threads: the C caller owns its thread safety (documented in the header).
struct UserData(*mut c_void);
// SAFETY: the library only hands the pointer back to the caller's callback; the header documents that
// the callback runs on another thread.
unsafe impl Send for UserData {}

/// Called when a send completes (or is dropped), before its callback: e.g. to unregister it from
/// its pool (`registered`: it was registered for cancellation) or to count it.
pub(crate) trait OnComplete: Send + Sync {
    fn completed(&self, send_id: u64, registered: bool);
}

/// Where a completed send's callback runs when not on the thread that completed it: a pool with
/// `callbacks_in_poll` queues it for `jina_net_pool_poll`. Gives the completion back when it does not
/// take it (the pool is freed): it then fires at once.
pub(crate) trait Handoff: Send + Sync {
    fn hand_over(self: Arc<Self>, completion: Completion, outcome: Outcome) -> Option<(Completion, Outcome)>;
}

thread_local! {
    /// Set while a send's task is dropped because it panicked (`drop_after_panic`).
    static AFTER_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `drop_task`, which drops a send's task that panicked: the completion dropped with it fires
/// with `JINA_NET_PANIC`.
pub(super) fn drop_after_panic(drop_task: impl FnOnce()) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            AFTER_PANIC.with(|a| a.set(false));
        }
    }
    AFTER_PANIC.with(|a| a.set(true));
    let _reset = Reset;
    drop_task();
}

/// Fires the callback exactly once: explicitly with [`Completion::complete`], or on drop (a task that
/// was dropped by a runtime shutdown or a panic) with `JINA_NET_RUNTIME_ERROR`.
pub(crate) struct Completion {
    callback: CallbackFn,
    user_data: UserData,
    send_id: u64,
    on_complete: Option<Arc<dyn OnComplete>>,
    registered: bool,
    done: bool,
    /// Set: the callback runs where this hands it over (the hooks above run at completion).
    handoff: Option<Arc<dyn Handoff>>,
}

impl Completion {
    pub(crate) fn new(
        callback: jina_net_send_callback,
        user_data: *mut c_void,
        send_id: u64,
        on_complete: Option<Arc<dyn OnComplete>>,
        registered: bool,
    ) -> Result<Completion, Failure> {
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        Ok(Completion {
            callback,
            user_data: UserData(user_data),
            send_id,
            on_complete,
            registered,
            done: false,
            handoff: None,
        })
    }

    /// The callback will run where `handoff` hands it over (`None`: where the send completes).
    pub(crate) fn handed_over_to(mut self, handoff: Option<Arc<dyn Handoff>>) -> Completion {
        self.handoff = handoff;
        self
    }

    pub(crate) fn complete(mut self, outcome: Outcome) {
        match self.handoff.take() {
            Some(handoff) => {
                self.run_hook();
                if let Some((completion, outcome)) = handoff.hand_over(self, outcome) {
                    completion.complete(outcome);
                }
            }
            None => self.fire(&outcome),
        }
    }

    fn run_hook(&mut self) {
        if let Some(hook) = self.on_complete.take() {
            hook.completed(self.send_id, self.registered);
        }
    }

    fn fire(&mut self, outcome: &Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        self.run_hook();
        deliver(self.callback, self.user_data.0, self.send_id, outcome);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.done {
            let failure = if std::thread::panicking() || AFTER_PANIC.with(|a| a.get()) {
                Failure::new(
                    jina_net_result::JINA_NET_PANIC,
                    "libjina_net panicked while the send was running",
                )
            } else {
                Failure::new(
                    jina_net_result::JINA_NET_RUNTIME_ERROR,
                    "the send was stopped before completing (the runtime was shut down)",
                )
            };
            let outcome = Outcome::Failed(failure);
            if self.handoff.is_some() {
                // Handed over like a completion: the callback runs where the others of its pool do.
                self.done = true;
                let pending = Completion {
                    callback: self.callback,
                    user_data: UserData(self.user_data.0),
                    send_id: self.send_id,
                    on_complete: self.on_complete.take(),
                    registered: self.registered,
                    done: false,
                    handoff: self.handoff.take(),
                };
                pending.complete(outcome);
            } else {
                self.fire(&outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::TargetResult;
    use std::ffi::CStr;

    /// What a callback can read of a result, copied out.
    #[derive(Debug, PartialEq)]
    struct Seen {
        status: jina_net_result,
        message: String,
        targets: Vec<SeenTarget>,
    }

    #[derive(Debug, PartialEq)]
    struct SeenTarget {
        status: jina_net_result,
        grpc_code: i32,
        head: bool,
        shard_id: i64,
        address: String,
        grpc_message: String,
        error_message: String,
        response: Vec<u8>,
        metadata: Vec<(String, Vec<u8>)>,
    }

    /// # Safety
    /// `p` NUL-terminated.
    unsafe fn text(p: *const c_char) -> String {
        // SAFETY: the caller's promise.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    unsafe extern "C" fn record(user_data: *mut c_void, result: *const jina_net_send_result) {
        // SAFETY: the tests pass an `Option<Seen>` and the library a live result; every pointer
        // is read as the header documents, during the callback.
        unsafe {
            let r = &*result;
            let targets = (0..r.targets_len)
                .map(|i| {
                    let t = &*jina_net_send_result_target(result, i);
                    let metadata = (0..t.metadata_len)
                        .map(|j| {
                            let m = &*jina_net_target_result_metadata(t, j);
                            (text(m.key), std::slice::from_raw_parts(m.value, m.value_len).to_vec())
                        })
                        .collect();
                    SeenTarget {
                        status: t.status,
                        grpc_code: t.grpc_code,
                        head: t.head,
                        shard_id: t.shard_id,
                        address: text(t.address),
                        grpc_message: text(t.grpc_message),
                        error_message: text(t.error_message),
                        response: std::slice::from_raw_parts(t.response, t.response_len).to_vec(),
                        metadata,
                    }
                })
                .collect();
            *(user_data as *mut Option<Seen>) = Some(Seen {
                status: r.status,
                message: text(r.error_message),
                targets,
            });
        }
    }

    fn one_answer(address: &str, trailers: &[(&'static str, &'static str)]) -> Outcome {
        let mut map = tonic::metadata::MetadataMap::new();
        for (k, v) in trailers {
            map.append(*k, v.parse().unwrap());
        }
        let address: Arc<str> = Arc::from(address);
        Outcome::Targets(vec![TargetResult {
            replica_set: ReplicaSet::Shard(2),
            address: address.clone(),
            result: Ok(Response {
                address,
                body: bytes::Bytes::from_static(b"response bytes"),
                trailers: map,
            }),
        }])
    }

    /// The result as the stack-built view shows it (`None`: that view declined the outcome) and
    /// as the general one does.
    fn both_views(outcome: &Outcome) -> (Option<Seen>, Seen) {
        let fired = std::cell::Cell::new(false);
        let mut fast: Option<Seen> = None;
        let fast_data = &mut fast as *mut Option<Seen> as *mut c_void;
        let taken = call_with_one_answer(record, fast_data, 9, outcome, &fired);
        assert_eq!(taken, fast.is_some());
        assert_eq!(fired.get(), taken);
        let mut general: Option<Seen> = None;
        let general_data = &mut general as *mut Option<Seen> as *mut c_void;
        call_with_view(&mut Scratch::default(), record, general_data, 9, outcome, &fired);
        (fast, general.unwrap())
    }

    #[test]
    fn the_stack_built_view_of_one_answer_reads_as_the_general_one() {
        let outcome = one_answer("127.0.0.1:50051", &[("is-error", "false"), ("x-b", "2")]);
        let (fast, general) = both_views(&outcome);
        assert_eq!(fast.as_ref(), Some(&general));
        let t = &general.targets[0];
        assert_eq!((t.address.as_str(), t.shard_id, t.head), ("127.0.0.1:50051", 2, false));
        let keys: Vec<_> = t.metadata.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        assert_eq!(keys, [("is-error", &b"false"[..]), ("x-b", b"2")]);
        assert_eq!(t.response, b"response bytes");
        // No metadata at all.
        let (fast, general) = both_views(&one_answer("h:1", &[]));
        assert_eq!(fast, Some(general));
    }

    #[test]
    fn has_nul_finds_a_nul_at_every_place_and_length() {
        for len in 0..40 {
            let clean: Vec<u8> = (0..len).map(|i| 1 + (i as u8 % 255)).collect();
            assert!(!has_nul(&clean), "{len}");
            for at in 0..len {
                let mut with = clean.clone();
                with[at] = 0;
                assert!(has_nul(&with), "{len} {at}");
            }
        }
        assert!(!has_nul(&[0x80, 0xff, 0x01, 0x7f, 0x81, 0x80, 0x80, 0x01, 0x80]));
    }

    #[test]
    fn the_general_view_takes_what_the_stack_cannot_hold() {
        let many = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")];
        let (fast, general) = both_views(&one_answer("h:1", &many));
        assert_eq!((fast, general.targets[0].metadata.len()), (None, 5));
        let long = "h".repeat(STACK_STRINGS);
        let (fast, general) = both_views(&one_answer(&long, &[]));
        assert_eq!((fast, general.targets[0].address.len()), (None, STACK_STRINGS));
        // A NUL in the address becomes `?` in the general view.
        let (fast, general) = both_views(&one_answer("h\0:1", &[("k", "v")]));
        assert_eq!((fast, general.targets[0].address.as_str()), (None, "h?:1"));
    }

    #[test]
    fn push_str_appends_nul_terminated_strings_and_replaces_inner_nuls() {
        let mut strings = Vec::new();
        assert_eq!(push_str(&mut strings, b"127.0.0.1:1"), 0);
        assert_eq!(push_str(&mut strings, b""), 12);
        assert_eq!(push_str(&mut strings, b"a\0b\0"), 13);
        assert_eq!(strings, b"127.0.0.1:1\0\0a?b?\0");
    }
}
