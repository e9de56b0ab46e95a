/*
 * jina_net.hpp — a header-only C++17 wrapper of libjina_net's C ABI (include/jina_net.h).
 *
 * Build: add `-I<repo>/include -I<repo>/bindings/cpp` and link libjina_net (.so, or .a plus
 * `-lpthread -ldl -lm`). Everything lives in namespace `jina_net`; the C names stay global.
 *
 * Ownership
 * - `Pool` owns a `jina_net_pool` and `Response` owns a `jina_net_response`, each through a
 *   std::unique_ptr with a deleter calling the library's own _free function. Both are move-only.
 * - Destroying a `Pool` closes and frees it without waiting: sends still pending complete (their
 *   callback runs / their future becomes ready) with JINA_NET_POOL_CLOSED shortly afterwards, on a
 *   library thread. The wrapper keeps everything such a completion needs on the heap, so this is safe.
 * - A `SendResult` owns copies of the strings and metadata of the C result, and keeps each response
 *   body with jina_net_send_result_retain_response: the body bytes are not copied, `body()` is a view
 *   into the library's buffer that stays valid as long as the `SendResult` (its `Response`) lives.
 * - Request buffers (`Bytes`) and strings are only borrowed for the call (the library copies them).
 * - `Pool::send_owned` sends without that copy: it takes `OwnedBytes` (made by moving a
 *   std::vector<uint8_t>/<char>, a std::string, a std::unique_ptr<uint8_t[]> + size, or any contiguous
 *   byte container with OwnedBytes::from) and hands their memory to jina_net_pool_send_owned inside
 *   heap holders; the library destroys them exactly once, on a library thread, when the send no
 *   longer needs them (retries included), or before send_owned returns or throws when the send
 *   failed to start. When the wrapper itself throws before the library got them (an argument it
 *   refuses), the buffers are destroyed as the call unwinds. Either way they are gone afterwards.
 * - Each asynchronous send allocates one completion object, handed to the C library as `user_data`.
 *   It is freed exactly once: by the C trampoline after the callback has run, or, when the C send
 *   function returned an error (the callback then never runs), by the wrapper before it throws.
 *   Defensive: after jina_net_runtime_shutdown(), jina_net_send_request_async,
 *   jina_net_activate_worker and jina_net_deactivate_worker return JINA_NET_RUNTIME_ERROR *and* fire
 *   their callback (with JINA_NET_RUNTIME_ERROR) on the calling thread during the call, although the
 *   C contract says a failed send never calls back. The wrapper notices a callback that ran during the
 *   call and then does not free the completion a second time; your callback does run in that case,
 *   and the function still throws.
 *
 * Threads
 * - All network work runs on the library's runtime threads. A `Pool` may be used from several threads
 *   at once, but must not be destroyed while another thread uses it.
 * - Callbacks (the std::function given to `send(...)` and friends) run on a library runtime thread.
 *   Exceptions: sends pending at runtime_shutdown() complete on the thread calling it, and a pool send
 *   started after the shutdown completes (JINA_NET_RUNTIME_ERROR) on the calling thread, during the
 *   send call itself — do not hold a lock there that the callback takes. They must return promptly and
 *   must not call the blocking helpers (`*_sync`), which fail there with JINA_NET_RUNTIME_ERROR.
 *   They may start other asynchronous sends. A `std::future` returned by the wrapper becomes ready on
 *   such a thread; waiting on it from a callback would deadlock the runtime thread — don't.
 *
 * Errors and exceptions
 * - A failing C call throws `jina_net::Error` (a std::runtime_error) with its jina_net_result code and
 *   the message of jina_net_last_error_message(), read on the failing thread right after the call.
 *   Argument problems the wrapper detects itself (a string with an embedded NUL, a negative timeout, an
 *   empty callback) throw `Error` with JINA_NET_INVALID_ARGUMENT / JINA_NET_NULL_ARGUMENT.
 * - The outcome of an asynchronous send is not thrown: it is a `SendResult` whose `status` is
 *   JINA_NET_OK or the failure (gRPC errors, deadline, cancel, pool closed, ...). `SendResult::check()`
 *   throws it as an `Error` if you prefer. A send that threw never completes (no callback, no future).
 * - No C++ exception ever crosses into the C library: the trampoline is noexcept and catches
 *   everything. In the future form, a failure to build the SendResult (e.g. std::bad_alloc) is stored
 *   in the future with promise::set_exception. In the callback form, such a failure is reported to the
 *   callback as a SendResult whose status is the error code (JINA_NET_PANIC for a C++ exception).
 *   CHOICE: an exception thrown by *your* callback is caught, stored (the most recent one can be taken
 *   with jina_net::take_callback_exception(); jina_net::callback_exception_count() counts them all)
 *   and otherwise swallowed — the process is not terminated and the library is not disturbed.
 */
#ifndef JINA_NET_HPP
#define JINA_NET_HPP

#include "jina_net.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace jina_net {

/// How many shards a pool send goes to.
enum class Polling : uint32_t {
  Any = JINA_NET_SHARDS_ANY,  ///< one target: the head, the given shard, or the shards in turn
  All = JINA_NET_SHARDS_ALL,  ///< one send per shard (head and shard id are ignored)
};

/// What the request bytes are.
enum class RequestKind : uint32_t {
  Data = JINA_NET_REQUEST_DATA,       ///< serialized jina.DataRequestProto(s)
  Control = JINA_NET_REQUEST_CONTROL, ///< one serialized jina.ControlRequestProto
};

/// The name of a result code, e.g. "JINA_NET_POOL_CLOSED" (static string, never NULL).
inline const char *result_name(jina_net_result code) noexcept {
  return jina_net_result_name(static_cast<uint32_t>(code));
}

/// The message of the last failed library call on the calling thread ("" if none).
inline std::string last_error_message() {
  const size_t n = jina_net_last_error_message(nullptr, 0);
  if (n == 0) return std::string();
  std::string s(n + 1, '\0');
  const size_t m = jina_net_last_error_message(&s[0], s.size());
  s.resize(m < n ? m : n);
  return s;
}

/// A failed library call: its code and message.
class Error : public std::runtime_error {
 public:
  Error(jina_net_result code, const std::string &message)
      : std::runtime_error(std::string(result_name(code)) + ": " + message), code_(code), message_(message) {}

  /// The error of the call that just failed with `code` on this thread (reads the thread's last message).
  static Error last(jina_net_result code) { return Error(code, last_error_message()); }

  jina_net_result code() const noexcept { return code_; }
  /// The library's message (without the code name that what() prepends).
  const std::string &message() const noexcept { return message_; }

 private:
  jina_net_result code_;
  std::string message_;
};

/// A send target refused because every replica of its head or shard had its in-flight limit and the
/// queue was full (JINA_NET_RESOURCE_EXHAUSTED); thrown by SendResult::check().
class ResourceExhaustedError : public Error {
 public:
  explicit ResourceExhaustedError(const std::string &message) : Error(JINA_NET_RESOURCE_EXHAUSTED, message) {}
};

namespace detail {

inline void check(jina_net_result r) {
  if (r != JINA_NET_OK) throw Error::last(r);
}

/// `s` as a C string, refusing embedded NULs (the C side would silently truncate).
inline const char *cstr(const std::string &s, const char *what) {
  if (s.find('\0') != std::string::npos)
    throw Error(JINA_NET_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte");
  return s.c_str();
}

inline int64_t shard(const std::optional<uint32_t> &id) noexcept {
  return id ? static_cast<int64_t>(*id) : static_cast<int64_t>(JINA_NET_NO_SHARD);
}

inline uint64_t millis(std::chrono::milliseconds ms, const char *what) {
  if (ms.count() < 0) throw Error(JINA_NET_INVALID_ARGUMENT, std::string(what) + " is negative");
  return static_cast<uint64_t>(ms.count());
}

struct PoolDeleter {
  void operator()(jina_net_pool *p) const noexcept { jina_net_pool_free(p); }
};
struct ResponseDeleter {
  void operator()(jina_net_response *r) const noexcept { jina_net_response_free(r); }
};
struct StringDeleter {
  void operator()(char *s) const noexcept { jina_net_string_free(s); }
};

}  // namespace detail

/// Owning handles.
using PoolPtr = std::unique_ptr<jina_net_pool, detail::PoolDeleter>;
using ResponsePtr = std::unique_ptr<jina_net_response, detail::ResponseDeleter>;

/// One trailing metadata entry (value as on the wire; base64 for `-bin` keys).
struct MetadataEntry {
  std::string key;
  std::string value;
};
using Metadata = std::vector<MetadataEntry>;

/// The value of the first entry called `key`, if any.
inline std::optional<std::string> find_metadata(const Metadata &metadata, std::string_view key) {
  for (const auto &e : metadata)
    if (e.key == key) return e.value;
  return std::nullopt;
}

/// A borrowed byte buffer (a request). Pass one request directly (a std::string, std::string_view,
/// std::vector<uint8_t>/<char>, or Bytes(ptr, len)), or several as a std::vector<Bytes> / `{a, b, ...}`
/// (a braced list of exactly one element is ambiguous: pass that request directly).
class Bytes {
 public:
  Bytes(const void *data, size_t size) noexcept : data_(static_cast<const uint8_t *>(data)), size_(size) {}
  // Implicit on purpose, so that a request can be passed as it is.
  Bytes(std::string_view s) noexcept : Bytes(s.data(), s.size()) {}
  Bytes(const std::string &s) noexcept : Bytes(s.data(), s.size()) {}
  Bytes(const char *s) noexcept : Bytes(s ? std::string_view(s) : std::string_view()) {}  ///< up to the first NUL
  Bytes(const std::vector<uint8_t> &v) noexcept : Bytes(v.data(), v.size()) {}
  Bytes(const std::vector<char> &v) noexcept : Bytes(v.data(), v.size()) {}
  const uint8_t *data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  const uint8_t *data_;
  size_t size_;
};

namespace detail {
/// The heap home of one owned request buffer; the library destroys it through the free function.
struct OwnedHolder {
  virtual ~OwnedHolder() = default;
  const uint8_t *data = nullptr;
  size_t size = 0;
};

template <class Container>
struct OwnedContainer final : OwnedHolder {
  explicit OwnedContainer(Container &&c) : value(std::move(c)) {
    data = reinterpret_cast<const uint8_t *>(value.data());
    size = value.size();
  }
  Container value;
};

struct OwnedArray final : OwnedHolder {
  OwnedArray(std::unique_ptr<uint8_t[]> p, size_t n) : value(std::move(p)) {
    data = value.get();
    size = value ? n : 0;
  }
  std::unique_ptr<uint8_t[]> value;
};
}  // namespace detail

/// A request buffer given away to Pool::send_owned (zero copy): it owns the bytes in a heap holder
/// that the library frees exactly once. Move-only. Make one by moving a container in:
/// `OwnedBytes(std::move(vec))`, `OwnedBytes(std::move(str))`, `OwnedBytes(std::move(array), size)`,
/// or `OwnedBytes::from(std::move(c))` for any container of 1-byte elements with data() and size()
/// whose data does not move with the container object (the holder is not moved again, so a
/// std::string's short-string buffer is fine).
class OwnedBytes {
 public:
  OwnedBytes() noexcept = default;
  // Implicit on purpose: pass std::move(buffer) where a request is expected.
  OwnedBytes(std::vector<uint8_t> &&v) : OwnedBytes(from(std::move(v))) {}
  OwnedBytes(std::vector<char> &&v) : OwnedBytes(from(std::move(v))) {}
  OwnedBytes(std::string &&s) : OwnedBytes(from(std::move(s))) {}
  OwnedBytes(std::unique_ptr<uint8_t[]> data, size_t size)
      : holder_(std::make_unique<detail::OwnedArray>(std::move(data), size)) {}

  /// Takes any contiguous container of 1-byte elements (moved into the holder).
  template <class Container, class = std::enable_if_t<!std::is_lvalue_reference_v<Container>>>
  static OwnedBytes from(Container &&c) {
    static_assert(sizeof(*std::declval<Container &>().data()) == 1, "OwnedBytes needs 1-byte elements");
    OwnedBytes b;
    b.holder_ = std::make_unique<detail::OwnedContainer<std::decay_t<Container>>>(std::move(c));
    return b;
  }

  const uint8_t *data() const noexcept { return holder_ ? holder_->data : nullptr; }
  size_t size() const noexcept { return holder_ ? holder_->size : 0; }
  /// False once given to send_owned (or when default-constructed).
  explicit operator bool() const noexcept { return holder_ != nullptr; }

 private:
  friend class Pool;
  std::unique_ptr<detail::OwnedHolder> holder_;
};

/// An owned response: body, trailing metadata and the address that answered. Move-only.
class Response {
 public:
  Response() noexcept = default;
  explicit Response(ResponsePtr p) noexcept : ptr_(std::move(p)) {}

  /// Whether it holds a response.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

  /// The serialized body; a view into the response, valid while it lives. Empty for an empty Response.
  std::string_view body() const {
    if (!ptr_) return std::string_view();
    const uint8_t *data = nullptr;
    size_t len = 0;
    detail::check(jina_net_response_body(ptr_.get(), &data, &len));
    return len == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char *>(data), len);
  }

  /// `host:port` of the replica that answered ("" for an empty Response).
  std::string address() const {
    const char *a = jina_net_response_address(ptr_.get());
    return a ? std::string(a) : std::string();
  }

  size_t metadata_count() const noexcept { return jina_net_response_metadata_count(ptr_.get()); }

  /// A copy of the trailing metadata.
  Metadata metadata() const {
    Metadata out;
    const size_t n = metadata_count();
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const char *key = nullptr;
      const uint8_t *value = nullptr;
      size_t len = 0;
      detail::check(jina_net_response_metadata(ptr_.get(), i, &key, &value, &len));
      out.push_back(MetadataEntry{key, std::string(reinterpret_cast<const char *>(value), len)});
    }
    return out;
  }

  std::optional<std::string> metadata_value(std::string_view key) const { return find_metadata(metadata(), key); }

  jina_net_response *get() const noexcept { return ptr_.get(); }
  jina_net_response *release() noexcept { return ptr_.release(); }

 private:
  ResponsePtr ptr_;
};

/// The outcome of a send at one target.
struct TargetResult {
  jina_net_result status = JINA_NET_OK;
  int32_t grpc_code = 0;                ///< gRPC code (0 = OK), -1 when the failure had no gRPC status
  bool head = false;                    ///< the target was the deployment's head
  std::optional<uint32_t> shard_id;     ///< none for a head or a one-shot send to an address
  std::string address;                  ///< host:port of the replica
  std::string grpc_message;             ///< "" when OK
  std::string error_message;            ///< names deployment, shard/head, address, gRPC status; "" when OK
  Metadata metadata;                    ///< trailing metadata (on failure: of the error status)
  Response response;                    ///< retained, not copied; empty when the target failed

  bool ok() const noexcept { return status == JINA_NET_OK; }
  std::string_view body() const { return response.body(); }
  std::optional<std::string> metadata_value(std::string_view key) const { return find_metadata(metadata, key); }
};

/// The outcome of a send (move-only: it owns retained responses).
struct SendResult {
  uint64_t send_id = 0;  ///< the id of the send (0 for the one-shot helpers)
  jina_net_result status = JINA_NET_OK;
  std::string error_message;  ///< "" when OK
  std::vector<TargetResult> targets;  ///< one per target reached (ALL: one per shard), in shard order

  bool ok() const noexcept { return status == JINA_NET_OK; }
  /// Throws the failure as an Error; does nothing when ok().
  void check() const {
    if (status == JINA_NET_RESOURCE_EXHAUSTED) throw ResourceExhaustedError(error_message);
    if (!ok()) throw Error(status, error_message);
  }
};

using Callback = std::function<void(const SendResult &)>;

/// A send started with Pool::send_cancellable (future form).
struct PendingSend {
  uint64_t id = 0;
  std::future<SendResult> result;
};

// ---------------------------------------------------------------------------------------------
// Callback exceptions (see "Errors and exceptions" above)

namespace detail {
inline std::mutex callback_exception_mutex;
inline std::exception_ptr callback_exception;
inline std::atomic<uint64_t> callback_exception_counter{0};

inline void store_callback_exception(std::exception_ptr e) noexcept {
  callback_exception_counter.fetch_add(1, std::memory_order_relaxed);
  try {
    std::lock_guard<std::mutex> lock(callback_exception_mutex);
    callback_exception = std::move(e);
  } catch (...) {  // a failing lock: keep counting, drop the exception
  }
}
}  // namespace detail

/// Takes (and clears) the most recent exception thrown by a callback; nullptr if none.
inline std::exception_ptr take_callback_exception() {
  std::lock_guard<std::mutex> lock(detail::callback_exception_mutex);
  std::exception_ptr e = std::move(detail::callback_exception);
  detail::callback_exception = nullptr;
  return e;
}

/// How many exceptions callbacks have thrown (and the wrapper swallowed) so far.
inline uint64_t callback_exception_count() noexcept {
  return detail::callback_exception_counter.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Completions: the heap objects handed to C as user_data

namespace detail {

/// Builds the owning C++ copy of a C send result; responses are retained, not copied.
inline SendResult convert(const jina_net_send_result *r) {
  SendResult out;
  if (r == nullptr) {
    out.status = JINA_NET_PANIC;
    out.error_message = "jina_net C++ wrapper: the library passed a NULL send result";
    return out;
  }
  out.send_id = r->send_id;
  out.status = r->status;
  out.error_message = r->error_message ? r->error_message : "";
  out.targets.reserve(r->targets_len);
  for (size_t i = 0; i < r->targets_len; ++i) {
    const jina_net_target_result &t = r->targets[i];
    TargetResult tr;
    tr.status = t.status;
    tr.grpc_code = t.grpc_code;
    tr.head = t.head;
    if (t.shard_id >= 0) tr.shard_id = static_cast<uint32_t>(t.shard_id);
    tr.address = t.address ? t.address : "";
    tr.grpc_message = t.grpc_message ? t.grpc_message : "";
    tr.error_message = t.error_message ? t.error_message : "";
    tr.metadata.reserve(t.metadata_len);
    for (size_t j = 0; j < t.metadata_len; ++j) {
      const jina_net_metadata &m = t.metadata[j];
      tr.metadata.push_back(MetadataEntry{m.key ? m.key : "",
                                          m.value_len ? std::string(reinterpret_cast<const char *>(m.value), m.value_len)
                                                      : std::string()});
    }
    if (t.status == JINA_NET_OK) {
      jina_net_response *resp = nullptr;
      check(jina_net_send_result_retain_response(r, i, &resp));
      tr.response = Response(ResponsePtr(resp));
    }
    out.targets.push_back(std::move(tr));
  }
  return out;
}

/// The user_data of one send. complete() never throws.
struct Completion {
  virtual ~Completion() = default;
  virtual void complete(const jina_net_send_result *result) noexcept = 0;
};

struct CallbackCompletion final : Completion {
  explicit CallbackCompletion(Callback cb) : callback(std::move(cb)) {}
  void complete(const jina_net_send_result *r) noexcept override {
    try {
      SendResult result;
      try {
        result = convert(r);
      } catch (const Error &e) {
        result = SendResult{};
        result.send_id = r ? r->send_id : 0;
        result.status = e.code();
        result.error_message = "jina_net C++ wrapper: could not build the send result: " + e.message();
      } catch (const std::exception &e) {
        result = SendResult{};
        result.send_id = r ? r->send_id : 0;
        result.status = JINA_NET_PANIC;
        result.error_message = std::string("jina_net C++ wrapper: could not build the send result: ") + e.what();
      }
      callback(result);
    } catch (...) {
      store_callback_exception(std::current_exception());
    }
  }
  Callback callback;
};

struct PromiseCompletion final : Completion {
  void complete(const jina_net_send_result *r) noexcept override {
    try {
      promise.set_value(convert(r));
    } catch (...) {
      try {
        promise.set_exception(std::current_exception());
      } catch (...) {  // no state / already satisfied: nothing left to tell
      }
    }
  }
  std::promise<SendResult> promise;
};

/// Set while this thread is inside a C send function, to notice a callback that fires during it.
inline thread_local const Completion *starting = nullptr;
inline thread_local bool fired_while_starting = false;

}  // namespace detail
}  // namespace jina_net

/// The C callback of every wrapper send: runs the completion, then frees it (exactly once).
extern "C" inline void jina_net_cpp_trampoline(void *user_data, const jina_net_send_result *result) noexcept {
  auto *completion = static_cast<jina_net::detail::Completion *>(user_data);
  if (completion == nullptr) return;
  if (jina_net::detail::starting == completion) jina_net::detail::fired_while_starting = true;
  completion->complete(result);
  delete completion;
}

namespace jina_net {
namespace detail {
/// The owned buffers of one send (several): each buffer the library holds is given back once; the
/// last one destroys them all.
struct OwnedSet {
  std::vector<std::unique_ptr<OwnedHolder>> holders;
  std::atomic<size_t> held{0};
};
}  // namespace detail
}  // namespace jina_net

/// free_fn of a send with one owned buffer: free_ctx is its holder.
extern "C" inline void jina_net_cpp_free_owned_one(void *free_ctx, const uint8_t *, size_t) noexcept {
  delete static_cast<jina_net::detail::OwnedHolder *>(free_ctx);
}

/// free_fn of a send with several owned buffers: free_ctx is their OwnedSet.
extern "C" inline void jina_net_cpp_free_owned_set(void *free_ctx, const uint8_t *, size_t) noexcept {
  auto *set = static_cast<jina_net::detail::OwnedSet *>(free_ctx);
  if (set->held.fetch_sub(1, std::memory_order_acq_rel) == 1) delete set;
}

namespace jina_net {
namespace detail {

/// Hands `completion` to `call(user_data)` (a C send function taking jina_net_cpp_trampoline).
/// On JINA_NET_OK the trampoline owns it; on an error the callback does not run (per the C contract)
/// and it is freed here before the Error is thrown — unless it already ran during the call.
template <class Call>
void start(std::unique_ptr<Completion> completion, Call &&call) {
  Completion *raw = completion.release();
  const Completion *saved = starting;
  const bool saved_fired = fired_while_starting;
  starting = raw;
  fired_while_starting = false;
  const jina_net_result r = call(static_cast<void *>(raw));
  const bool fired = fired_while_starting;
  starting = saved;
  fired_while_starting = saved_fired;
  if (r != JINA_NET_OK) {
    std::unique_ptr<Completion> owned(fired ? nullptr : raw);
    throw Error::last(r);
  }
}

inline std::unique_ptr<Completion> callback_completion(Callback cb) {
  if (!cb) throw Error(JINA_NET_NULL_ARGUMENT, "callback is empty");
  return std::unique_ptr<Completion>(new CallbackCompletion(std::move(cb)));
}

inline std::vector<jina_net_bytes> c_requests(const std::vector<Bytes> &requests) {
  std::vector<jina_net_bytes> out;
  out.reserve(requests.size());
  for (const Bytes &b : requests) out.push_back(jina_net_bytes{b.data(), b.size()});
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Pool

/// How a pool picks a replica of a head or shard.
enum class Balance : uint32_t {
  RoundRobin = JINA_NET_BALANCE_ROUND_ROBIN,      ///< jina 3.1's order (the default)
  P2cPeakEwma = JINA_NET_BALANCE_P2C_PEAK_EWMA,   ///< power of two choices over PeakEWMA costs
};

/// Options of a Pool. Everything below `root_certificates_pem` is off by default (see jina_net.h's
/// jina_net_pool_options for what each does).
struct PoolOptions {
  std::optional<uint32_t> max_attempts;         ///< attempts per send on UNAVAILABLE (none = library default, 3)
  std::chrono::milliseconds default_timeout{0};  ///< deadline of sends that give none (0 = none)
  bool tls = false;                              ///< TLS for every address
  std::string root_certificates_pem;             ///< PEM roots to trust ("" = system roots)
  /// Run the pool on the threads that call Pool::poll instead of library threads: no library thread,
  /// no thread hop per request; callbacks fire inside poll() on the polling thread.
  bool caller_driven = false;
  Balance balance = Balance::RoundRobin;         ///< replica picking
  std::chrono::milliseconds p2c_default_rtt{30};  ///< p2c: estimate of a replica not heard from yet
  std::chrono::milliseconds p2c_decay{10000};     ///< p2c: decay time of the latency estimate
  uint32_t max_in_flight_per_replica = 0;        ///< 0 = no limit
  uint32_t max_queued_sends = 1000;              ///< per head or shard, with a limit; beyond: RESOURCE_EXHAUSTED
  std::chrono::milliseconds hedge_delay{0};      ///< hedging of idempotent sends: wait before the next hedge
  uint32_t max_hedges = 0;                       ///< 0 = never hedge
  bool metrics = false;                          ///< keep metrics (Pool::metrics_text)
};

/// Routing and options of one pool send.
struct SendOptions {
  bool head = false;                   ///< send to the deployment's head
  std::optional<uint32_t> shard_id;    ///< a shard (none = the deployment's shards in turn)
  Polling polling = Polling::Any;      ///< All = one send per shard
  std::optional<std::string> endpoint; ///< `endpoint` metadata of data requests
  /// Deadline of the whole send (0 = the pool's default). A value beyond what a deadline can express
  /// (up to milliseconds::max()) means no deadline.
  std::chrono::milliseconds timeout{0};
  RequestKind kind = RequestKind::Data;
  /// The send may be performed more than once: hedged when the pool hedges (PoolOptions::max_hedges).
  bool idempotent = false;
};

/// A connection pool (thread-safe; move-only).
class Pool {
 public:
  explicit Pool(const PoolOptions &options = PoolOptions{}) {
    jina_net_pool_options o;
    jina_net_pool_options_init(&o);
    if (options.max_attempts) o.max_attempts = *options.max_attempts;
    o.default_timeout_ms = detail::millis(options.default_timeout, "default_timeout");
    o.tls = options.tls;
    o.caller_driven = options.caller_driven;
    if (!options.root_certificates_pem.empty()) {
      o.root_certificates_pem = reinterpret_cast<const uint8_t *>(options.root_certificates_pem.data());
      o.root_certificates_pem_len = options.root_certificates_pem.size();
    }
    o.balance = static_cast<uint32_t>(options.balance);
    o.p2c_default_rtt_ms = detail::millis(options.p2c_default_rtt, "p2c_default_rtt");
    o.p2c_decay_ms = detail::millis(options.p2c_decay, "p2c_decay");
    o.max_in_flight_per_replica = options.max_in_flight_per_replica;
    o.max_queued_sends = options.max_queued_sends;
    o.hedge_delay_ms = detail::millis(options.hedge_delay, "hedge_delay");
    o.max_hedges = options.max_hedges;
    o.metrics = options.metrics;
    jina_net_pool *p = nullptr;
    detail::check(jina_net_pool_new(&o, &p));
    ptr_.reset(p);
  }

  /// Adds a replica (head, or shard `shard_id`; none = shard 0). Returns whether it was new.
  bool add_connection(const std::string &deployment, const std::string &address, bool head = false,
                      std::optional<uint32_t> shard_id = std::nullopt) {
    bool added = false;
    detail::check(jina_net_pool_add_connection(ptr_.get(), detail::cstr(deployment, "deployment"),
                                               detail::cstr(address, "address"), head, detail::shard(shard_id),
                                               &added));
    return added;
  }

  /// Removes a replica. Returns whether there was one.
  bool remove_connection(const std::string &deployment, const std::string &address, bool head = false,
                         std::optional<uint32_t> shard_id = std::nullopt) {
    bool removed = false;
    detail::check(jina_net_pool_remove_connection(ptr_.get(), detail::cstr(deployment, "deployment"),
                                                  detail::cstr(address, "address"), head, detail::shard(shard_id),
                                                  &removed));
    return removed;
  }

  /// Closes the pool: pending sends complete with JINA_NET_POOL_CLOSED; later calls throw it. For a
  /// caller-driven pool, every poll() returns at once from then on.
  void close() { detail::check(jina_net_pool_close(ptr_.get())); }

  /// Runs a caller-driven pool (PoolOptions::caller_driven) on this thread: its I/O, timers and the
  /// callbacks of completed sends, until one send completed, `timeout` passed (0 = only what is
  /// ready; milliseconds::max() = no limit) or the pool is closed. Returns the number of sends
  /// completed. Throws JINA_NET_INVALID_ARGUMENT for a pool run by library threads, and
  /// JINA_NET_RUNTIME_ERROR from inside a callback.
  size_t poll(std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    const uint64_t ms = timeout == std::chrono::milliseconds::max() ? UINT64_MAX : detail::millis(timeout, "timeout");
    size_t completed = 0;
    detail::check(jina_net_pool_poll(ptr_.get(), ms, &completed));
    return completed;
  }

  /// The routing table: one line per head or shard, `<deployment>\t<head|shard N>\t<addr>,<addr>`.
  std::string routes() const {
    char *table = nullptr;
    detail::check(jina_net_pool_routes(ptr_.get(), &table));
    std::unique_ptr<char, detail::StringDeleter> owned(table);
    return std::string(owned.get());
  }

  // --- sends: callback form (the callback runs once, on a library thread) ---
  void send(const std::string &deployment, Bytes request, const SendOptions &options, Callback callback) {
    send(deployment, std::vector<Bytes>{request}, options, std::move(callback));
  }
  void send(const std::string &deployment, const std::vector<Bytes> &requests, const SendOptions &options,
            Callback callback) {
    start(deployment, requests, options, detail::callback_completion(std::move(callback)), false);
  }

  // --- sends: future form ---
  std::future<SendResult> send(const std::string &deployment, Bytes request,
                               const SendOptions &options = SendOptions{}) {
    return send(deployment, std::vector<Bytes>{request}, options);
  }
  std::future<SendResult> send(const std::string &deployment, const std::vector<Bytes> &requests,
                               const SendOptions &options = SendOptions{}) {
    auto completion = std::make_unique<detail::PromiseCompletion>();
    std::future<SendResult> future = completion->promise.get_future();
    start(deployment, requests, options, std::move(completion), false);
    return future;
  }

  // --- cancellable sends: give back the id for cancel() ---
  uint64_t send_cancellable(const std::string &deployment, const std::vector<Bytes> &requests,
                            const SendOptions &options, Callback callback) {
    return start(deployment, requests, options, detail::callback_completion(std::move(callback)), true);
  }
  PendingSend send_cancellable(const std::string &deployment, const std::vector<Bytes> &requests,
                               const SendOptions &options = SendOptions{}) {
    auto completion = std::make_unique<detail::PromiseCompletion>();
    PendingSend pending;
    pending.result = completion->promise.get_future();
    pending.id = start(deployment, requests, options, std::move(completion), true);
    return pending;
  }

  // --- owned sends (no copy of the request bytes; see OwnedBytes and "Ownership" above) ---
  void send_owned(const std::string &deployment, OwnedBytes request, const SendOptions &options, Callback callback) {
    std::vector<OwnedBytes> requests;
    requests.push_back(std::move(request));
    send_owned(deployment, std::move(requests), options, std::move(callback));
  }
  void send_owned(const std::string &deployment, std::vector<OwnedBytes> requests, const SendOptions &options,
                  Callback callback) {
    start_owned(deployment, requests, options, detail::callback_completion(std::move(callback)), false);
  }
  std::future<SendResult> send_owned(const std::string &deployment, OwnedBytes request,
                                     const SendOptions &options = SendOptions{}) {
    std::vector<OwnedBytes> requests;
    requests.push_back(std::move(request));
    return send_owned(deployment, std::move(requests), options);
  }
  std::future<SendResult> send_owned(const std::string &deployment, std::vector<OwnedBytes> requests,
                                     const SendOptions &options = SendOptions{}) {
    auto completion = std::make_unique<detail::PromiseCompletion>();
    std::future<SendResult> future = completion->promise.get_future();
    start_owned(deployment, requests, options, std::move(completion), false);
    return future;
  }
  PendingSend send_owned_cancellable(const std::string &deployment, std::vector<OwnedBytes> requests,
                                     const SendOptions &options = SendOptions{}) {
    auto completion = std::make_unique<detail::PromiseCompletion>();
    PendingSend pending;
    pending.result = completion->promise.get_future();
    pending.id = start_owned(deployment, requests, options, std::move(completion), true);
    return pending;
  }

  /// Cancels a pending send (it completes once, with JINA_NET_CANCELLED). False when it already
  /// completed or the id is unknown.
  bool cancel(uint64_t send_id) {
    const jina_net_result r = jina_net_pool_cancel(ptr_.get(), send_id);
    if (r == JINA_NET_NOT_FOUND) return false;
    detail::check(r);
    return true;
  }

  /// The pool's metrics in the Prometheus text exposition format (jina_net_pool_metrics_text).
  /// Throws Error (JINA_NET_INVALID_ARGUMENT) when the pool was made without PoolOptions::metrics.
  std::string metrics_text() const {
    char *text = nullptr;
    detail::check(jina_net_pool_metrics_text(ptr_.get(), &text));
    std::unique_ptr<char, detail::StringDeleter> owned(text);
    return std::string(owned.get());
  }

  jina_net_pool *native_handle() const noexcept { return ptr_.get(); }

 private:
  uint64_t start(const std::string &deployment, const std::vector<Bytes> &requests, const SendOptions &options,
                 std::unique_ptr<detail::Completion> completion, bool want_id) {
    // Everything that can throw happens before the completion is handed over.
    const std::vector<jina_net_bytes> items = detail::c_requests(requests);
    const char *dep = detail::cstr(deployment, "deployment");
    const char *endpoint = options.endpoint ? detail::cstr(*options.endpoint, "endpoint") : nullptr;
    const uint64_t timeout = detail::millis(options.timeout, "timeout");
    uint64_t id = 0;
    if (options.idempotent) {
      const jina_net_send_options so = c_send_options(options, endpoint, timeout);
      detail::start(std::move(completion), [&](void *user_data) noexcept {
        return jina_net_pool_send_ex(ptr_.get(), items.data(), items.size(), dep, &so, &jina_net_cpp_trampoline,
                                     user_data, want_id ? &id : nullptr);
      });
      return id;
    }
    detail::start(std::move(completion), [&](void *user_data) noexcept {
      return jina_net_pool_send(ptr_.get(), static_cast<uint32_t>(options.kind), items.data(), items.size(), dep,
                                options.head, detail::shard(options.shard_id),
                                static_cast<uint32_t>(options.polling), endpoint, timeout, &jina_net_cpp_trampoline,
                                user_data, want_id ? &id : nullptr);
    });
    return id;
  }

  /// The C options of an idempotent send (endpoint and timeout already converted).
  static jina_net_send_options c_send_options(const SendOptions &options, const char *endpoint, uint64_t timeout) {
    jina_net_send_options so;
    jina_net_send_options_init(&so);
    so.kind = static_cast<uint32_t>(options.kind);
    so.head = options.head;
    so.shard_id = detail::shard(options.shard_id);
    so.shards = static_cast<uint32_t>(options.polling);
    so.endpoint = endpoint;
    so.timeout_ms = timeout;
    so.idempotent = options.idempotent;
    return so;
  }

  /// The owned form of start(): the holders leave `requests` only right before the C call, so any
  /// exception before it leaves them to the caller's vector (destroyed as the call unwinds).
  uint64_t start_owned(const std::string &deployment, std::vector<OwnedBytes> &requests, const SendOptions &options,
                       std::unique_ptr<detail::Completion> completion, bool want_id) {
    const char *dep = detail::cstr(deployment, "deployment");
    const char *endpoint = options.endpoint ? detail::cstr(*options.endpoint, "endpoint") : nullptr;
    const uint64_t timeout = detail::millis(options.timeout, "timeout");
    std::vector<jina_net_bytes> items;
    items.reserve(requests.size());
    size_t held = 0;  // buffers the library will give back (it never frees a NULL data pointer)
    for (const OwnedBytes &b : requests) {
      items.push_back(jina_net_bytes{b.data(), b.size()});
      if (b.data() != nullptr) ++held;
    }
    // Which free function and context: one holder, or a set of them. Nothing throws after this.
    jina_net_free_fn free_fn = &jina_net_cpp_free_owned_one;
    void *free_ctx = nullptr;
    std::unique_ptr<detail::OwnedSet> set;
    if (requests.size() == 1 && held == 1) {
      free_ctx = requests[0].holder_.get();
    } else {
      set = std::make_unique<detail::OwnedSet>();
      set->holders.reserve(requests.size());
      free_fn = &jina_net_cpp_free_owned_set;
      free_ctx = set.get();
    }
    for (OwnedBytes &b : requests) {
      if (set) {
        set->holders.push_back(std::move(b.holder_));
      } else {
        (void)b.holder_.release();  // the library owns it now (free_ctx)
      }
    }
    if (set) set->held.store(held, std::memory_order_relaxed);
    detail::OwnedSet *raw_set = held > 0 ? set.release() : nullptr;  // else: nothing to give back, freed here
    uint64_t id = 0;
    if (options.idempotent) {  // only jina_net_pool_send_owned_ex carries `idempotent`
      const jina_net_send_options so = c_send_options(options, endpoint, timeout);
      detail::start(std::move(completion), [&](void *user_data) noexcept {
        return jina_net_pool_send_owned_ex(ptr_.get(), items.data(), items.size(), free_fn, free_ctx, dep, &so,
                                           &jina_net_cpp_trampoline, user_data, want_id ? &id : nullptr);
      });
      (void)raw_set;
      return id;
    }
    detail::start(std::move(completion), [&](void *user_data) noexcept {
      return jina_net_pool_send_owned(ptr_.get(), static_cast<uint32_t>(options.kind), items.data(), items.size(),
                                      free_fn, free_ctx, dep, options.head, detail::shard(options.shard_id),
                                      static_cast<uint32_t>(options.polling), endpoint, timeout,
                                      &jina_net_cpp_trampoline, user_data, want_id ? &id : nullptr);
    });
    (void)raw_set;
    return id;
  }

  PoolPtr ptr_;
};

// ---------------------------------------------------------------------------------------------
// One-shot sends to an address (no pool)

/// Options of the one-shot helpers.
struct OneShotOptions {
  std::chrono::milliseconds timeout{0};  ///< 0 = the helper's default (100 s blocking, 1 s async)
  bool tls = false;
  std::string root_certificates_pem;     ///< "" = system roots
  std::optional<std::string> endpoint;   ///< `endpoint` metadata of data requests
  RequestKind kind = RequestKind::Data;
};

namespace detail {
/// The C view of OneShotOptions; borrows from `o`.
inline jina_net_oneshot_options c_oneshot(const OneShotOptions &o) {
  jina_net_oneshot_options c{};
  c.timeout_ms = millis(o.timeout, "timeout");
  c.tls = o.tls;
  if (!o.root_certificates_pem.empty()) {
    c.root_certificates_pem = reinterpret_cast<const uint8_t *>(o.root_certificates_pem.data());
    c.root_certificates_pem_len = o.root_certificates_pem.size();
  }
  c.endpoint = o.endpoint ? cstr(*o.endpoint, "endpoint") : nullptr;
  return c;
}

inline void oneshot_async(Bytes request, const std::string &target, const OneShotOptions &options,
                          std::unique_ptr<Completion> completion) {
  const jina_net_oneshot_options o = c_oneshot(options);
  const char *t = cstr(target, "target");
  start(std::move(completion), [&](void *user_data) noexcept {
    return jina_net_send_request_async(static_cast<uint32_t>(options.kind), request.data(), request.size(), t, &o,
                                       &jina_net_cpp_trampoline, user_data);
  });
}

using ControlFn = jina_net_result (*)(const char *, uint16_t, const char *, int64_t, jina_net_send_callback, void *);
using ControlSyncFn = jina_net_result (*)(const char *, uint16_t, const char *, uint64_t, int64_t,
                                          jina_net_response **);

inline void control_async(ControlFn fn, const std::string &host, uint16_t port, const std::string &head,
                          std::optional<uint32_t> shard_id, std::unique_ptr<Completion> completion) {
  const char *h = cstr(host, "worker_host");
  const char *t = cstr(head, "target_head");
  start(std::move(completion), [&](void *user_data) noexcept {
    return fn(h, port, t, shard(shard_id), &jina_net_cpp_trampoline, user_data);
  });
}

inline std::future<SendResult> control_future(ControlFn fn, const std::string &host, uint16_t port,
                                              const std::string &head, std::optional<uint32_t> shard_id) {
  auto completion = std::make_unique<PromiseCompletion>();
  std::future<SendResult> future = completion->promise.get_future();
  control_async(fn, host, port, head, shard_id, std::move(completion));
  return future;
}

inline Response control_sync(ControlSyncFn fn, const std::string &host, uint16_t port, const std::string &head,
                             std::optional<uint32_t> shard_id, std::chrono::milliseconds timeout) {
  jina_net_response *resp = nullptr;
  const uint64_t ms = millis(timeout, "timeout");
  check(fn(cstr(host, "worker_host"), port, cstr(head, "target_head"), ms, shard(shard_id), &resp));
  return Response(ResponsePtr(resp));
}
}  // namespace detail

/// Sends requests to `target` and blocks for the response (up to 3 attempts on UNAVAILABLE).
/// Throws Error on failure (also JINA_NET_RUNTIME_ERROR when called from a callback).
inline Response send_requests_sync(const std::vector<Bytes> &requests, const std::string &target,
                                   const OneShotOptions &options = OneShotOptions{}) {
  const std::vector<jina_net_bytes> items = detail::c_requests(requests);
  const jina_net_oneshot_options o = detail::c_oneshot(options);
  jina_net_response *resp = nullptr;
  detail::check(jina_net_send_requests_sync(static_cast<uint32_t>(options.kind), items.data(), items.size(),
                                            detail::cstr(target, "target"), &o, &resp));
  return Response(ResponsePtr(resp));
}

/// One request; otherwise as send_requests_sync.
inline Response send_request_sync(Bytes request, const std::string &target,
                                  const OneShotOptions &options = OneShotOptions{}) {
  return send_requests_sync(std::vector<Bytes>{request}, target, options);
}

/// Sends one request to `target` without retry (1 s default timeout); the future holds the outcome.
inline std::future<SendResult> send_request_async(Bytes request, const std::string &target,
                                                  const OneShotOptions &options = OneShotOptions{}) {
  auto completion = std::make_unique<detail::PromiseCompletion>();
  std::future<SendResult> future = completion->promise.get_future();
  detail::oneshot_async(request, target, options, std::move(completion));
  return future;
}

/// Callback form of send_request_async.
inline void send_request_async(Bytes request, const std::string &target, const OneShotOptions &options,
                               Callback callback) {
  detail::oneshot_async(request, target, options, detail::callback_completion(std::move(callback)));
}

/// ACTIVATE `worker_host:worker_port` (shard `shard_id`, none = no shard sent) at the head `target_head`;
/// one attempt, 1 s. The result's one target holds the head's echo of the control request.
inline std::future<SendResult> activate_worker(const std::string &worker_host, uint16_t worker_port,
                                               const std::string &target_head,
                                               std::optional<uint32_t> shard_id = std::nullopt) {
  return detail::control_future(&jina_net_activate_worker, worker_host, worker_port, target_head, shard_id);
}
inline void activate_worker(const std::string &worker_host, uint16_t worker_port, const std::string &target_head,
                            std::optional<uint32_t> shard_id, Callback callback) {
  detail::control_async(&jina_net_activate_worker, worker_host, worker_port, target_head, shard_id,
                        detail::callback_completion(std::move(callback)));
}

/// DEACTIVATE; otherwise as activate_worker.
inline std::future<SendResult> deactivate_worker(const std::string &worker_host, uint16_t worker_port,
                                                 const std::string &target_head,
                                                 std::optional<uint32_t> shard_id = std::nullopt) {
  return detail::control_future(&jina_net_deactivate_worker, worker_host, worker_port, target_head, shard_id);
}
inline void deactivate_worker(const std::string &worker_host, uint16_t worker_port, const std::string &target_head,
                              std::optional<uint32_t> shard_id, Callback callback) {
  detail::control_async(&jina_net_deactivate_worker, worker_host, worker_port, target_head, shard_id,
                        detail::callback_completion(std::move(callback)));
}

/// Blocking ACTIVATE (timeout 0 = 100 s; up to 3 attempts on UNAVAILABLE); returns the head's echo.
inline Response activate_worker_sync(const std::string &worker_host, uint16_t worker_port,
                                     const std::string &target_head, std::optional<uint32_t> shard_id = std::nullopt,
                                     std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
  return detail::control_sync(&jina_net_activate_worker_sync, worker_host, worker_port, target_head, shard_id,
                              timeout);
}

/// Blocking DEACTIVATE; otherwise as activate_worker_sync.
inline Response deactivate_worker_sync(const std::string &worker_host, uint16_t worker_port,
                                       const std::string &target_head,
                                       std::optional<uint32_t> shard_id = std::nullopt,
                                       std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
  return detail::control_sync(&jina_net_deactivate_worker_sync, worker_host, worker_port, target_head, shard_id,
                              timeout);
}

// ---------------------------------------------------------------------------------------------
// Hosts, options, version, runtime

/// Whether `host` is this machine (localhost, 0.0.0.0, loopback IPs). Throws Error
/// (JINA_NET_INVALID_HOST) for a name that is neither an IP address nor `localhost`.
inline bool host_is_local(const std::string &host) {
  bool local = false;
  detail::check(jina_net_host_is_local(detail::cstr(host, "host"), &local));
  return local;
}

/// jina's is_remote_local_connection(first, second).
inline bool is_remote_local_connection(const std::string &first, const std::string &second) {
  bool result = false;
  detail::check(jina_net_is_remote_local_connection(detail::cstr(first, "first"), detail::cstr(second, "second"),
                                                    &result));
  return result;
}

/// One gRPC channel option (name is static).
struct GrpcOption {
  std::string_view name;
  int64_t value;  ///< -1 = unlimited
};

/// jina's default gRPC options.
inline std::vector<GrpcOption> default_grpc_options() {
  size_t n = 0;
  const jina_net_grpc_option *opts = jina_net_default_grpc_options(&n);
  std::vector<GrpcOption> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(GrpcOption{opts[i].name, opts[i].value});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Log callback

/// Log levels (jina_net_log_level), most severe first.
enum class LogLevel : uint32_t {
  Off = JINA_NET_LOG_OFF,
  Error = JINA_NET_LOG_ERROR,
  Warn = JINA_NET_LOG_WARN,
  Info = JINA_NET_LOG_INFO,
  Debug = JINA_NET_LOG_DEBUG,
  Trace = JINA_NET_LOG_TRACE,
};

/// Receives the library's log events: level, target (e.g. "jina_net::send") and message, valid
/// during the call. Runs on the library thread that emitted the event (several at once), must
/// return promptly and must not call set_log_callback; an exception it throws is swallowed.
using LogCallback = std::function<void(LogLevel, std::string_view target, std::string_view message)>;

namespace detail {
inline std::mutex log_mutex;                      // serialises set_log_callback
inline std::unique_ptr<LogCallback> log_callback;  // the one installed (owned here)

extern "C" inline void jina_net_cpp_log_trampoline(void *user_data, uint32_t level, const char *target,
                                                   const char *message) noexcept {
  auto *cb = static_cast<LogCallback *>(user_data);
  if (cb == nullptr || !*cb) return;
  try {
    (*cb)(static_cast<LogLevel>(level), target ? target : "", message ? message : "");
  } catch (...) {  // must not unwind into the library
  }
}
}  // namespace detail

/// Sets (or, with an empty callback or LogLevel::Off, removes) the process's log callback
/// (jina_net_log_set_callback): events at `max_level` and more severe. When it returns, the previous
/// callback is no longer called.
inline void set_log_callback(LogCallback callback, LogLevel max_level = LogLevel::Info) {
  std::lock_guard<std::mutex> lock(detail::log_mutex);
  std::unique_ptr<LogCallback> next;
  if (callback && max_level != LogLevel::Off) next = std::make_unique<LogCallback>(std::move(callback));
  detail::check(jina_net_log_set_callback(next ? &detail::jina_net_cpp_log_trampoline : nullptr, next.get(),
                                          static_cast<uint32_t>(next ? max_level : LogLevel::Off)));
  detail::log_callback = std::move(next);  // the previous one is no longer running: free it
}

/// "MAJOR.MINOR.PATCH" of the library that is linked.
inline std::string_view version() noexcept { return jina_net_version(); }

/// Sizes the library runtime; only before it starts (else Error JINA_NET_ALREADY_STARTED).
inline void runtime_init(uint32_t worker_threads) { detail::check(jina_net_runtime_init(worker_threads)); }

/// Shuts the library runtime down (pending sends complete with JINA_NET_RUNTIME_ERROR). Not from a
/// callback. Afterwards every call that needs the runtime throws JINA_NET_RUNTIME_ERROR.
inline void runtime_shutdown(std::chrono::milliseconds timeout) {
  detail::check(jina_net_runtime_shutdown(detail::millis(timeout, "timeout")));
}

}  // namespace jina_net

#endif  // JINA_NET_HPP
