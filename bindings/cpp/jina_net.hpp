/*
 * jina_net.hpp — a header-only C++17 wrapper of libjina_net's C ABI (include/jina_net.h), ABI 0.2.4.
 *
 * Build: add `-I<repo>/include -I<repo>/bindings/cpp` and link libjina_net (.so, or .a plus
 * `-lpthread -ldl -lm`). Everything lives in namespace `jina_net`; the C names stay global.
 * The header needs include/jina_net.h of 0.2.4 or a later 0.2.x (checked when it compiles). The
 * 0.2.2 settings are passed only when set (left at their defaults they stay the zero bytes an older
 * library expects), so a program that uses none of them also runs with libjina_net 0.2.1; a 0.2.x
 * library refuses a setting it does not know with JINA_NET_UNSUPPORTED naming the struct, and a
 * function it lacks (wait_ready, add_connection with AddOptions, compression_from_name) fails to
 * link. route_table() of a 0.2.1 library has no states (ReplicaState::Unknown).
 *
 * Changes for C ABI 0.2.4 (compatible)
 * - PoolOptions::callbacks_in_poll: the library threads run the pool, its callbacks fire inside
 *   Pool::poll() on the polling thread (every send completed since the last poll, one wake-up of
 *   the poller per burst of completions). Left false it stays the zero byte an older library expects.
 * - version() is "0.2.4".
 *
 * Changes for C ABI 0.2.3 (compatible)
 * - runtime_set_busy_poll_us(us): the most a library worker busy-polls before it sleeps (default 100,
 *   0 off; any time). A program that does not call it also runs with a 0.2.2 library.
 * - version() is "0.2.3".
 *
 * Changes for C ABI 0.2.2 (compatible: code written for 0.2.1 compiles and behaves as before)
 * - Transport options of PoolOptions: tls_identity (std::optional<TlsIdentity>{cert_chain_pem,
 *   private_key_pem}: the client certificate chain and key for mutual TLS, PEM), tls_server_name
 *   (std::optional<std::string>: the name every replica's certificate must carry instead of the
 *   host, as gRPC's ssl_target_name_override), compression (enum class Compression {None, Gzip,
 *   Deflate}; compression_from_name() takes "none"/"gzip"/"deflate" and jina's "NoCompression"/
 *   "Gzip"/"Deflate", any case) and dns_refresh (std::optional<milliseconds>: how often `dns:`
 *   names are resolved again; none = the library's 30 s, 0 = never). OneShotOptions has
 *   tls_identity, tls_server_name and compression too. Bad PEM, an unknown compression or a server
 *   name that is no name throw Error (JINA_NET_TLS_ERROR / JINA_NET_INVALID_ARGUMENT) from the Pool
 *   constructor or the one-shot call, naming what is wrong.
 * - Pool::add_connection(deployment, address, AddOptions{head, shard_id, tls_server_name})
 *   (jina_net_pool_add_connection_ex): per-address settings; the address's tls_server_name wins
 *   over the pool's. Addresses may be `unix:/abs/path` / `unix:///abs/path` (Unix domain socket,
 *   plaintext) and `dns:///host:port` (every A/AAAA record is a replica, shown as ip:port).
 * - Pool::wait_ready(timeout) / wait_ready(deployment, timeout) (jina_net_pool_wait_ready): connects
 *   every replica and returns once each answered a STATUS probe; else throws Error
 *   (JINA_NET_DEADLINE_EXCEEDED) whose message names each replica not ready (deployment, head or
 *   shard, address, state). Blocks the calling thread; not from a callback (JINA_NET_RUNTIME_ERROR).
 * - Pool::route_table() (and parse_routes() for the text of Pool::routes()): the routing table as
 *   std::vector<Route>{deployment, head, shard_id, replicas}, each RouteReplica{address, state,
 *   state_name} with ReplicaState Idle (not connected yet), Ready, Failing, Unresponsive (Unknown
 *   for a state this header does not know, or a library older than 0.2.2 that gives none).
 *   Pool::routes() now returns the library's 4-column text
 *   (`<deployment>\t<head|shard N>\t<addr>,<addr>...\t<state>,<state>...`).
 * - TLS handshake failures of sends are JINA_NET_TLS_ERROR in SendResult / TargetResult, the message
 *   saying why (untrusted certificate, wrong name, client certificate required or refused, ...).
 * - version() is "0.2.2"; the shared library is still libjina_net.so.0.2.
 *
 * Changes for C ABI 0.2.1 (compatible: code written for 0.2.0 compiles and behaves as before, except
 * that a default pool now detects gray failures, see below)
 * - PoolOptions has the gray-failure settings of jina_net_pool_options: connect_timeout,
 *   tcp_user_timeout, keepalive (std::optional<Keepalive>{interval, timeout}; none = no PINGs),
 *   probe_after / probe_timeout (liveness probes; probe_after 0 = none), fail_over_unanswered,
 *   eject_on_deadline, per_attempt_timeout and retry_budget (std::optional<RetryBudget>{max_tokens,
 *   token_ratio}; none = no budget). PoolOptions{} and PoolOptions::resilient() take the library's
 *   defaults and preset for each (jina_net_pool_options_init / _init_resilient). In particular a
 *   default pool probes a replica that answered nothing for 2 s while calls are outstanding: a call
 *   pending on a replica that stopped answering (a hung or frozen process) ends with UNAVAILABLE
 *   "the replica stopped answering ..." within about 7 s instead of waiting for its deadline.
 * - version() is "0.2.1"; the shared library is still libjina_net.so.0.2.
 *
 * Changes for C ABI 0.2.0
 * - The wrapper follows the 0.2 ABI: options structs are initialised with their size
 *   (jina_net_*_options_init(&o, sizeof o), result checked), send results are read through
 *   jina_net_send_result_target / jina_net_target_result_metadata, and every pool send goes through
 *   jina_net_pool_send_ex / jina_net_pool_send_owned_ex (one jina_net_send_options per send).
 * - PoolOptions has the resilient settings (fail_over, initial_backoff, backoff_multiplier,
 *   max_backoff, eject_after_failures, base_ejection, max_ejection, max_ejection_percent) and
 *   PoolOptions::resilient(), the library's production preset (jina_net_pool_options_init_resilient).
 * - SendOptions::metadata (RequestMetadata): request metadata sent with every attempt of a pool send
 *   (plain, owned, cancellable; retries, fail-over and hedges included); `-bin` values are any bytes.
 * - Bytes no longer converts from `const char *` / string literals (that conversion stopped at the
 *   first NUL byte): it is made from what carries its length (std::string, std::string_view, byte
 *   vectors, std::array, spans) or explicitly from (pointer, length). Pass a literal as `"..."sv`.
 * - An exception thrown by a callback goes to that send's own `on_exception` handler (an optional
 *   argument of every callback form); take_callback_exception() and callback_exception_count() are
 *   gone. See "Errors and exceptions".
 * - version() is "0.2.0"; the installed shared library is libjina_net.so.0.2.
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
 * - Request buffers (`Bytes`), request metadata and strings are only borrowed for the call (the library
 *   copies them before the send function returns).
 * - `Pool::send_owned` sends without that copy: it takes `OwnedBytes` (made by moving a
 *   std::vector<uint8_t>/<char>, a std::string, a std::unique_ptr<uint8_t[]> + size, or any contiguous
 *   byte container with OwnedBytes::from) and hands their memory to jina_net_pool_send_owned_ex inside
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
 *   Argument problems the wrapper detects itself (a string or metadata key with an embedded NUL, a
 *   negative duration, an empty callback, a NUL-terminated value for a `-bin` metadata key) throw
 *   `Error` with JINA_NET_INVALID_ARGUMENT / JINA_NET_NULL_ARGUMENT. Request metadata the library
 *   refuses (reserved or malformed keys, bytes not allowed in a text value) throws
 *   Error(JINA_NET_INVALID_ARGUMENT) from the send call, before anything is sent.
 * - A send that threw never completes: no callback, no future, no `on_exception`.
 * - The outcome of an asynchronous send is not thrown: it is a `SendResult` whose `status` is
 *   JINA_NET_OK or the failure (gRPC errors, deadline, cancel, pool closed, ...). `SendResult::check()`
 *   throws it as an `Error` if you prefer.
 * - No C++ exception ever crosses into the C library: the trampoline is noexcept and catches
 *   everything. In the future form, a failure to build the SendResult (e.g. std::bad_alloc) is stored
 *   in that send's future with promise::set_exception. In the callback form, such a failure is reported
 *   to the callback as a SendResult whose status is the error code (JINA_NET_PANIC for a C++ exception).
 * - CHOICE: an exception thrown by *your* callback belongs to its send. Every callback form takes an
 *   optional `ExceptionHandler on_exception` after the callback: when the callback throws, the
 *   wrapper catches the exception and calls that send's `on_exception(std::exception_ptr)` with it,
 *   once, on the same thread, right after the callback left (before the send's completion object is
 *   freed). Sends never share it: two sends whose callbacks throw at the same time each get their
 *   own exception in their own handler. The handler must not throw (an exception it throws is
 *   discarded). Without a handler the exception is discarded — catch inside the callback, or pass a
 *   handler, if you need it. Either way the process is not terminated and the library and other sends
 *   carry on. (The future form has no user callback, hence nothing of yours to throw.)
 */
#ifndef JINA_NET_HPP
#define JINA_NET_HPP

#include "jina_net.h"

static_assert(JINA_NET_VERSION_MAJOR == 0 && JINA_NET_VERSION_MINOR == 2 && JINA_NET_VERSION_PATCH >= 4,
              "jina_net.hpp needs include/jina_net.h of C ABI 0.2.3 or a later 0.2.x");

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

/// How many shards a pool send goes to (jina's `polling`; the C ABI's jina_net_shards).
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

/// Whether `C` is a contiguous container of 1-byte elements: `c.data()` a pointer to them, `c.size()`
/// their count (std::vector<uint8_t>/<char>/<std::byte>, std::array, std::span, ...). Plain arrays
/// (a string literal is one) are not: they have no data() member.
template <class C, class = void>
struct is_byte_container : std::false_type {};
template <class C>
struct is_byte_container<C, std::void_t<decltype(std::declval<const C &>().data()),
                                        decltype(std::declval<const C &>().size())>>
    : std::bool_constant<std::is_pointer_v<decltype(std::declval<const C &>().data())> &&
                         sizeof(*std::declval<const C &>().data()) == 1 &&
                         std::is_trivially_copyable_v<
                             std::remove_pointer_t<decltype(std::declval<const C &>().data())>> &&
                         std::is_convertible_v<decltype(std::declval<const C &>().size()), size_t>> {};

}  // namespace detail

/// Owning handles.
using PoolPtr = std::unique_ptr<jina_net_pool, detail::PoolDeleter>;
using ResponsePtr = std::unique_ptr<jina_net_response, detail::ResponseDeleter>;

/// One metadata entry. In a response (trailing metadata) the value is as on the wire (base64 for
/// `-bin` keys); in RequestMetadata it is the value itself (any bytes for `-bin` keys).
struct MetadataEntry {
  std::string key;
  std::string value;
};
/// Trailing metadata of a response.
using Metadata = std::vector<MetadataEntry>;

/// The value of the first entry called `key`, if any.
inline std::optional<std::string> find_metadata(const Metadata &metadata, std::string_view key) {
  for (const auto &e : metadata)
    if (e.key == key) return e.value;
  return std::nullopt;
}

/// A borrowed byte buffer (a request, a binary metadata value): a pointer and a length, never a
/// NUL-terminated string. Made implicitly from what carries its own length — a std::string, a
/// std::string_view, a std::vector<uint8_t>/<char>/<std::byte>, a std::array, a std::span (C++20) or
/// any contiguous container of 1-byte elements with data() and size() — and explicitly from
/// `Bytes(pointer, length)`. There is no conversion from `const char *` or a string literal (it would
/// stop at the first NUL byte, silently): pass a literal deliberately with its length, e.g.
/// `"\x0a\x00..."sv` (using namespace std::literals) or `std::string_view(p, n)`.
/// A view: the bytes must outlive it (a temporary passed straight to a send call does).
/// Pass one request directly, or several as a std::vector<Bytes> / `{a, b, ...}` (a braced list of
/// exactly one element is ambiguous: pass that request directly).
class Bytes {
 public:
  constexpr Bytes() noexcept = default;
  /// `size` bytes at `data` (NULL only with size 0).
  explicit Bytes(const void *data, size_t size) noexcept : data_(static_cast<const uint8_t *>(data)), size_(size) {}
  Bytes(std::string_view s) noexcept : Bytes(s.data(), s.size()) {}
  Bytes(const std::string &s) noexcept : Bytes(s.data(), s.size()) {}
  /// Any contiguous container of 1-byte elements (see above).
  template <class C, std::enable_if_t<detail::is_byte_container<C>::value && !std::is_same_v<C, Bytes>, int> = 0>
  Bytes(const C &c) noexcept : Bytes(c.data(), static_cast<size_t>(c.size())) {}
  /// Refused: a NUL-terminated string has no length of its own. Use `"..."sv` or Bytes(p, n).
  Bytes(const char *) = delete;

  const uint8_t *data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  const uint8_t *data_ = nullptr;
  size_t size_ = 0;
};

/// Request metadata of one pool send (SendOptions::metadata), sent with every attempt of the send
/// (retries, fail-over, hedges): an `authorization` header, a request id, `traceparent`, ... Entries
/// go out in the order added; a key may be added more than once. Keys are lower-case ASCII (digits,
/// a-z, `_`, `-`, `.`). A key ending in `-bin` takes any bytes, NUL included (the library
/// base64-encodes them on the wire); other values are printable ASCII (0x20-0x7e). The library
/// checks every entry when the send starts: reserved names (`grpc-*`, `te`, `content-type`,
/// `user-agent`, HTTP/2 connection headers such as `connection` or `host`, and `endpoint` when
/// SendOptions::endpoint is set) and bytes not allowed make the send throw
/// Error(JINA_NET_INVALID_ARGUMENT) naming the key, before anything is sent.
class RequestMetadata {
 public:
  /// Adds `key: value`; the value keeps all its bytes (a std::string, std::string_view, byte vector,
  /// Bytes(p, n), ... — embedded NUL bytes included, for `-bin` keys).
  RequestMetadata &add(std::string key, Bytes value) {
    entries_.push_back(MetadataEntry{std::move(key), value.empty() ? std::string()
                                                                   : std::string(reinterpret_cast<const char *>(
                                                                                     value.data()),
                                                                                 value.size())});
    return *this;
  }
  /// Adds `key: value` for a NUL-terminated text value (a string literal). Throws
  /// Error(JINA_NET_INVALID_ARGUMENT) for a `-bin` key — binary bytes may contain NULs, pass them with
  /// their length — and Error(JINA_NET_NULL_ARGUMENT) for NULL.
  RequestMetadata &add(std::string key, const char *value) {
    if (value == nullptr) throw Error(JINA_NET_NULL_ARGUMENT, "metadata value of \"" + key + "\" is NULL");
    constexpr std::string_view bin = "-bin";
    if (key.size() >= bin.size() && key.compare(key.size() - bin.size(), bin.size(), bin) == 0)
      throw Error(JINA_NET_INVALID_ARGUMENT, "metadata value of \"" + key +
                                                 "\": a -bin value needs its length (pass a std::string, "
                                                 "std::string_view or Bytes(data, size), not a const char *)");
    return add(std::move(key), Bytes(std::string_view(value)));
  }

  const std::vector<MetadataEntry> &entries() const noexcept { return entries_; }
  std::vector<MetadataEntry>::const_iterator begin() const noexcept { return entries_.begin(); }
  std::vector<MetadataEntry>::const_iterator end() const noexcept { return entries_.end(); }
  size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  void clear() noexcept { entries_.clear(); }

 private:
  std::vector<MetadataEntry> entries_;
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

  /// A copy of the trailing metadata (values as on the wire: base64 for `-bin` keys).
  Metadata metadata() const {
    Metadata out;
    const size_t n = metadata_count();
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const char *key = nullptr;
      const uint8_t *value = nullptr;
      size_t len = 0;
      detail::check(jina_net_response_metadata(ptr_.get(), i, &key, &value, &len));
      out.push_back(MetadataEntry{key ? key : "",
                                  len ? std::string(reinterpret_cast<const char *>(value), len) : std::string()});
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

/// The callback of a send: runs once, on a library thread, with the outcome.
using Callback = std::function<void(const SendResult &)>;

/// Receives the exception a send's callback threw (see "Errors and exceptions"): called once, on the
/// thread that ran the callback, right after it. Must not throw.
using ExceptionHandler = std::function<void(std::exception_ptr)>;

/// A send started with Pool::send_cancellable (future form).
struct PendingSend {
  uint64_t id = 0;
  std::future<SendResult> result;
};

// ---------------------------------------------------------------------------------------------
// Completions: the heap objects handed to C as user_data

namespace detail {

inline std::string target_missing(const char *what, size_t index, size_t len) {
  return std::string("jina_net C++ wrapper: the library gave no ") + what + " " + std::to_string(index) + " of " +
         std::to_string(len);
}

/// Builds the owning C++ copy of a C send result, reading targets and metadata through the library's
/// accessors (the C structs may grow: never indexed as arrays); responses are retained, not copied.
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
    const jina_net_target_result *t = jina_net_send_result_target(r, i);
    if (t == nullptr) throw Error(JINA_NET_PANIC, target_missing("target", i, r->targets_len));
    TargetResult tr;
    tr.status = t->status;
    tr.grpc_code = t->grpc_code;
    tr.head = t->head;
    if (t->shard_id >= 0) tr.shard_id = static_cast<uint32_t>(t->shard_id);
    tr.address = t->address ? t->address : "";
    tr.grpc_message = t->grpc_message ? t->grpc_message : "";
    tr.error_message = t->error_message ? t->error_message : "";
    tr.metadata.reserve(t->metadata_len);
    for (size_t j = 0; j < t->metadata_len; ++j) {
      const jina_net_metadata *m = jina_net_target_result_metadata(t, j);
      if (m == nullptr) throw Error(JINA_NET_PANIC, target_missing("metadata entry", j, t->metadata_len));
      tr.metadata.push_back(MetadataEntry{m->key ? m->key : "",
                                          m->value_len ? std::string(reinterpret_cast<const char *>(m->value),
                                                                     m->value_len)
                                                       : std::string()});
    }
    if (t->status == JINA_NET_OK) {
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

/// The callback form: the callback, and the handler of the exceptions it throws (this send's only).
struct CallbackCompletion final : Completion {
  CallbackCompletion(Callback cb, ExceptionHandler handler)
      : callback(std::move(cb)), on_exception(std::move(handler)) {}

  static SendResult failed_result(const jina_net_send_result *r, jina_net_result code, const char *what) {
    SendResult result;
    result.send_id = r ? r->send_id : 0;
    result.status = code;
    result.error_message = std::string("jina_net C++ wrapper: could not build the send result: ") + what;
    return result;
  }

  void complete(const jina_net_send_result *r) noexcept override {
    std::exception_ptr thrown;
    try {
      SendResult result;
      try {
        result = convert(r);
      } catch (const Error &e) {
        result = failed_result(r, e.code(), e.message().c_str());
      } catch (const std::exception &e) {
        result = failed_result(r, JINA_NET_PANIC, e.what());
      }
      callback(result);
    } catch (...) {  // the callback threw (or, out of memory, the error result could not be built)
      thrown = std::current_exception();
    }
    if (thrown && on_exception) {
      try {
        on_exception(std::move(thrown));
      } catch (...) {  // a handler must not throw: nowhere left to send it
      }
    }
  }
  Callback callback;
  ExceptionHandler on_exception;
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

inline std::unique_ptr<Completion> callback_completion(Callback cb, ExceptionHandler on_exception) {
  if (!cb) throw Error(JINA_NET_NULL_ARGUMENT, "callback is empty");
  return std::unique_ptr<Completion>(new CallbackCompletion(std::move(cb), std::move(on_exception)));
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

/// How requests are compressed (PoolOptions::compression, OneShotOptions::compression; the C ABI's
/// jina_net_compression). Responses are decoded whatever their encoding.
enum class Compression : uint32_t {
  None = JINA_NET_COMPRESSION_NONE,        ///< uncompressed (jina's `NoCompression`), the default
  Gzip = JINA_NET_COMPRESSION_GZIP,        ///< gzip (jina's `Gzip`)
  Deflate = JINA_NET_COMPRESSION_DEFLATE,  ///< deflate (jina's `Deflate`)
};

/// The Compression of a name (jina_net_compression_from_name): "none", "gzip", "deflate" or jina's
/// "NoCompression", "Gzip", "Deflate", or gRPC's "identity" (= None), in any case. Throws Error(JINA_NET_INVALID_ARGUMENT) naming it for another name, and for a name with
/// a NUL byte.
inline Compression compression_from_name(const std::string &name) {
  uint32_t out = 0;
  detail::check(jina_net_compression_from_name(detail::cstr(name, "compression name"), &out));
  return static_cast<Compression>(out);
}

/// "none", "gzip" or "deflate" ("unknown" for a value that is none of them).
inline const char *compression_name(Compression c) noexcept {
  switch (c) {
    case Compression::None: return "none";
    case Compression::Gzip: return "gzip";
    case Compression::Deflate: return "deflate";
  }
  return "unknown";
}

/// A client identity for mutual TLS (PoolOptions::tls_identity, OneShotOptions::tls_identity): the
/// certificate chain (leaf first) and its private key, both PEM text (e.g. the contents of
/// client.pem and client.key). Both are required: an empty one throws Error(JINA_NET_TLS_ERROR)
/// naming it; PEM without a certificate or a key throws JINA_NET_TLS_ERROR from the library
/// (the Pool constructor, the one-shot call). The library copies them.
struct TlsIdentity {
  std::string cert_chain_pem;
  std::string private_key_pem;
};

/// HTTP/2 keepalive of a pool's connections (PoolOptions::keepalive).
struct Keepalive {
  std::chrono::milliseconds interval{300000};  ///< a PING every this long while calls are outstanding (>= 10 s)
  std::chrono::milliseconds timeout{20000};    ///< a PING not acknowledged within this closes the connection
};

/// Retry throttling per head or shard (PoolOptions::retry_budget), gRFC A6's token bucket, kept per
/// send: a send that fails for good although its failure could be retried takes a token, a send that
/// succeeds gives `token_ratio` back; at or below half of `max_tokens`, no retry, fail-over or hedge
/// starts. A brown-out then stops multiplying the load within a few sends.
struct RetryBudget {
  uint32_t max_tokens = 10;  ///< tokens of a full budget, 1..1000 (0 is refused: leave retry_budget empty)
  double token_ratio = 0.1;  ///< tokens a successful send gives back; a number > 0
};

/// Options of a Pool. A default PoolOptions{} is the library's default (jina_net_pool_options_init):
/// jina 3.1.0's behaviour — 3 attempts on UNAVAILABLE on the same replica, back to back, no
/// ejection, round robin — with balancing, limits, hedging and metrics off, and the connection's own
/// failure detection on (5 s connect timeout, 20 s TCP_USER_TIMEOUT, 5 min keepalive, liveness
/// probes after 2 s answered within 5 s). PoolOptions::resilient() is the library's production
/// preset. See jina_net.h's jina_net_pool_options for what each setting does.
struct PoolOptions {
  std::optional<uint32_t> max_attempts;         ///< attempts per send on UNAVAILABLE (none = library default, 3)
  std::chrono::milliseconds default_timeout{0};  ///< deadline of sends that give none (0 = none)
  bool tls = false;                              ///< TLS for every address
  std::string root_certificates_pem;             ///< PEM roots to trust ("" = system roots)
  /// Run the pool on the threads that call Pool::poll instead of library threads: no library thread,
  /// no thread hop per request; callbacks fire inside poll() on the polling thread.
  bool caller_driven = false;
  /// Library threads run the pool, but its callbacks fire inside Pool::poll on the polling thread:
  /// each poll runs the callbacks of every send completed since the last one, and a thread waiting
  /// in poll is woken once per burst of completions (fewer thread switches than a wake-up per
  /// callback). No effect with caller_driven. C ABI 0.2.4.
  bool callbacks_in_poll = false;
  Balance balance = Balance::RoundRobin;         ///< replica picking
  std::chrono::milliseconds p2c_default_rtt{30};  ///< p2c: estimate of a replica not heard from yet
  std::chrono::milliseconds p2c_decay{10000};     ///< p2c: decay time of the latency estimate
  uint32_t max_in_flight_per_replica = 0;        ///< 0 = no limit
  uint32_t max_queued_sends = 1000;              ///< per head or shard, with a limit; beyond: RESOURCE_EXHAUSTED
  std::chrono::milliseconds hedge_delay{0};      ///< hedging of idempotent sends: wait before the next hedge
  uint32_t max_hedges = 0;                       ///< 0 = never hedge
  bool metrics = false;                          ///< keep metrics (Pool::metrics_text)

  // --- resilience (off by default, as jina 3.1; on in resilient()) ---
  /// Retry on the next replica of the shard instead of the same one; every replica is tried before
  /// giving up (the attempts are then at least the number of replicas).
  bool fail_over = false;
  /// Backoff before a retry that goes back to a replica already tried: the wait is uniformly random
  /// in [0, cap], the cap `initial_backoff * backoff_multiplier^(attempt-1)`, at most
  /// max(max_backoff, initial_backoff). 0 = retry at once.
  std::chrono::milliseconds initial_backoff{0};
  double backoff_multiplier = 1.0;               ///< >= 1 (else the Pool throws JINA_NET_INVALID_ARGUMENT)
  std::chrono::milliseconds max_backoff{0};      ///< see initial_backoff
  /// Consecutive UNAVAILABLE failures that eject a replica: it is skipped while healthy ones exist
  /// (0 = never eject).
  uint32_t eject_after_failures = 0;
  std::chrono::milliseconds base_ejection{100};  ///< first ejection; doubles per consecutive ejection...
  std::chrono::milliseconds max_ejection{800};   ///< ...up to this
  uint32_t max_ejection_percent = 50;            ///< at most this share of a replica list ejected at once (<= 100)

  // --- gray failures: connections that hang, replicas that stop answering (C ABI 0.2.1) ---
  /// Time allowed to establish a connection (TCP and TLS); 0 = no limit.
  std::chrono::milliseconds connect_timeout{5000};
  /// TCP_USER_TIMEOUT: a connection whose sent data stays unacknowledged this long is closed, failing
  /// its calls; 0 = the system's.
  std::chrono::milliseconds tcp_user_timeout{20000};
  /// HTTP/2 keepalive while calls are outstanding (never on an idle connection): a PING every
  /// `interval` (at least 10 s, gRFC A8's minimum; else the Pool throws JINA_NET_INVALID_ARGUMENT),
  /// and a PING not acknowledged within `timeout` closes the connection. The default is 5 min / 20 s
  /// (what gRPC servers accept without strikes); std::nullopt = no keepalive PINGs.
  std::optional<Keepalive> keepalive = Keepalive{};
  /// Liveness probes: a replica with calls outstanding that has answered nothing for `probe_after`
  /// gets a STATUS control request on the same connection; no answer within `probe_timeout` marks it
  /// unresponsive: the calls pending on it end with UNAVAILABLE "the replica stopped answering ..."
  /// (naming it), sends avoid it until it answers a probe again. 0 = no probes (default 2 s,
  /// resilient 500 ms).
  std::chrono::milliseconds probe_after{2000};
  /// See probe_after (default 5 s, resilient 1 s; at least 1 ms when probes are on).
  std::chrono::milliseconds probe_timeout{5000};
  /// Sends NOT marked idempotent also go on to another replica when theirs stopped answering (or their
  /// attempt timed out). Off by default: the replica may have received the request. Idempotent sends
  /// always go on.
  bool fail_over_unanswered = false;
  /// Attempts ending DEADLINE_EXCEEDED (per_attempt_timeout included) count toward ejection
  /// (eject_after_failures). Off by default, on in resilient().
  bool eject_on_deadline = false;
  /// Time one attempt may take before the send gives up on it and, where it may (idempotent sends, or
  /// fail_over_unanswered), tries another replica; 0 = only the send's deadline.
  std::chrono::milliseconds per_attempt_timeout{0};
  /// Retry throttling per head or shard (gRFC A6); std::nullopt = none (the default; resilient():
  /// RetryBudget{}). See RetryBudget.
  std::optional<RetryBudget> retry_budget;

  // --- transport (C ABI 0.2.2) ---
  /// The client certificate chain and key presented to servers that ask (mutual TLS); none = no
  /// client identity. A server that requires one fails the sends of a pool without it with
  /// JINA_NET_TLS_ERROR "the server requires a client certificate ...", naming the address.
  std::optional<TlsIdentity> tls_identity;
  /// The name every replica's TLS certificate must carry (and the SNI sent) instead of the host of
  /// its address, as gRPC's `grpc.ssl_target_name_override` (none = the host): for replicas reached by
  /// IP whose certificates name a service. Per address: AddOptions::tls_server_name (wins over this).
  /// A name that is neither a DNS name nor an IP address ("" included) throws JINA_NET_TLS_ERROR.
  std::optional<std::string> tls_server_name;
  /// How requests are compressed (default none, as jina 3.1); responses are decoded whatever their
  /// encoding. A value outside the enum throws JINA_NET_INVALID_ARGUMENT.
  Compression compression = Compression::None;
  /// How often the names of `dns:///host:port` addresses are resolved again (none = the library's
  /// default, 30 s; 0 = never): each A/AAAA record is a replica, added and removed as the name
  /// changes, and re-resolved within a second when one of its replicas fails.
  std::optional<std::chrono::milliseconds> dns_refresh;

  /// The library's recommended settings for production (jina_net_pool_options_init_resilient):
  /// fail-over to the next replica, jittered exponential backoff (10 ms doubling up to 1 s) when a
  /// replica is tried again, passive outlier ejection (after 1 failure, 100 ms doubling up to
  /// 800 ms, at most half of a list, deadlines counted), liveness probes after 500 ms answered
  /// within 1 s, a retry budget of 10 tokens; everything else as the defaults. Change what you need
  /// after.
  static PoolOptions resilient();
};

namespace detail {
/// The C++ view of a C options struct (as filled by an _init function).
inline PoolOptions pool_options_from_c(const jina_net_pool_options &c) {
  using std::chrono::milliseconds;
  auto ms = [](uint64_t v) { return milliseconds(static_cast<milliseconds::rep>(v)); };
  PoolOptions o;
  o.max_attempts = c.max_attempts;
  o.default_timeout = ms(c.default_timeout_ms);
  o.tls = c.tls;
  if (c.root_certificates_pem != nullptr && c.root_certificates_pem_len > 0)
    o.root_certificates_pem.assign(reinterpret_cast<const char *>(c.root_certificates_pem), c.root_certificates_pem_len);
  o.caller_driven = c.caller_driven;
  o.callbacks_in_poll = c.callbacks_in_poll;
  o.balance = static_cast<Balance>(c.balance);
  o.p2c_default_rtt = ms(c.p2c_default_rtt_ms);
  o.p2c_decay = ms(c.p2c_decay_ms);
  o.max_in_flight_per_replica = c.max_in_flight_per_replica;
  o.max_queued_sends = c.max_queued_sends;
  o.hedge_delay = ms(c.hedge_delay_ms);
  o.max_hedges = c.max_hedges;
  o.metrics = c.metrics;
  o.fail_over = c.fail_over;
  o.initial_backoff = ms(c.initial_backoff_ms);
  o.backoff_multiplier = c.backoff_multiplier;
  o.max_backoff = ms(c.max_backoff_ms);
  o.eject_after_failures = c.eject_after_failures;
  o.base_ejection = ms(c.base_ejection_ms);
  o.max_ejection = ms(c.max_ejection_ms);
  o.max_ejection_percent = c.max_ejection_percent;
  o.connect_timeout = ms(c.connect_timeout_ms);
  o.tcp_user_timeout = ms(c.tcp_user_timeout_ms);
  if (c.keepalive_interval_ms == 0)
    o.keepalive.reset();
  else
    o.keepalive = Keepalive{ms(c.keepalive_interval_ms), ms(c.keepalive_timeout_ms)};
  o.probe_after = ms(c.probe_after_ms);
  o.probe_timeout = ms(c.probe_timeout_ms);
  o.fail_over_unanswered = c.fail_over_unanswered;
  o.eject_on_deadline = c.eject_on_deadline;
  o.per_attempt_timeout = ms(c.per_attempt_timeout_ms);
  if (c.retry_budget_max_tokens == 0)
    o.retry_budget.reset();
  else
    o.retry_budget = RetryBudget{c.retry_budget_max_tokens, c.retry_budget_token_ratio};
  if (c.tls_cert_chain_pem != nullptr || c.tls_private_key_pem != nullptr) {
    TlsIdentity id;
    if (c.tls_cert_chain_pem != nullptr && c.tls_cert_chain_pem_len > 0)
      id.cert_chain_pem.assign(reinterpret_cast<const char *>(c.tls_cert_chain_pem), c.tls_cert_chain_pem_len);
    if (c.tls_private_key_pem != nullptr && c.tls_private_key_pem_len > 0)
      id.private_key_pem.assign(reinterpret_cast<const char *>(c.tls_private_key_pem), c.tls_private_key_pem_len);
    o.tls_identity = std::move(id);
  }
  if (c.tls_server_name != nullptr) o.tls_server_name = std::string(c.tls_server_name);
  o.compression = static_cast<Compression>(c.compression);
  o.dns_refresh = ms(c.dns_refresh_ms);
  return o;
}

/// Points the identity fields of a C options struct at `id` (borrowed); refuses an empty part (the
/// library would take two empty parts for "no identity" and one for a half identity).
template <class COptions>
void c_identity(COptions &c, const std::optional<TlsIdentity> &id) {
  if (!id) return;  // the _init default: no identity
  if (id->cert_chain_pem.empty())
    throw Error(JINA_NET_TLS_ERROR, "tls_identity.cert_chain_pem is empty (a client identity needs the PEM "
                                    "certificate chain and its private key; leave tls_identity empty for none)");
  if (id->private_key_pem.empty())
    throw Error(JINA_NET_TLS_ERROR, "tls_identity.private_key_pem is empty (a client identity needs the PEM "
                                    "certificate chain and its private key; leave tls_identity empty for none)");
  c.tls_cert_chain_pem = reinterpret_cast<const uint8_t *>(id->cert_chain_pem.data());
  c.tls_cert_chain_pem_len = id->cert_chain_pem.size();
  c.tls_private_key_pem = reinterpret_cast<const uint8_t *>(id->private_key_pem.data());
  c.tls_private_key_pem_len = id->private_key_pem.size();
}

/// Initialises `c` with jina_net_pool_options_init, then sets every field from `options` (the C
/// struct jina_net_pool_new gets); `c` borrows options.root_certificates_pem, tls_identity and
/// tls_server_name. Throws Error(JINA_NET_INVALID_ARGUMENT) for a negative duration, a keepalive
/// interval of 0, a retry budget of 0 tokens (an empty optional says "none") or a server name with a
/// NUL byte, Error(JINA_NET_TLS_ERROR) for an identity with an empty part; every other value is
/// checked by jina_net_pool_new. The 0.2.2 fields keep their _init values (zero bytes for an older
/// library) unless set, so a default PoolOptions works with any 0.2.x library that knows the rest.
inline void c_pool_options(jina_net_pool_options &c, const PoolOptions &options) {
  check(jina_net_pool_options_init(&c, sizeof c));
  if (options.max_attempts) c.max_attempts = *options.max_attempts;
  c.default_timeout_ms = millis(options.default_timeout, "default_timeout");
  c.tls = options.tls;
  c.caller_driven = options.caller_driven;
  c.callbacks_in_poll = options.callbacks_in_poll;
  if (!options.root_certificates_pem.empty()) {
    c.root_certificates_pem = reinterpret_cast<const uint8_t *>(options.root_certificates_pem.data());
    c.root_certificates_pem_len = options.root_certificates_pem.size();
  }
  c.balance = static_cast<uint32_t>(options.balance);
  c.p2c_default_rtt_ms = millis(options.p2c_default_rtt, "p2c_default_rtt");
  c.p2c_decay_ms = millis(options.p2c_decay, "p2c_decay");
  c.max_in_flight_per_replica = options.max_in_flight_per_replica;
  c.max_queued_sends = options.max_queued_sends;
  c.hedge_delay_ms = millis(options.hedge_delay, "hedge_delay");
  c.max_hedges = options.max_hedges;
  c.metrics = options.metrics;
  c.fail_over = options.fail_over;
  c.initial_backoff_ms = millis(options.initial_backoff, "initial_backoff");
  c.backoff_multiplier = options.backoff_multiplier;
  c.max_backoff_ms = millis(options.max_backoff, "max_backoff");
  c.eject_after_failures = options.eject_after_failures;
  c.base_ejection_ms = millis(options.base_ejection, "base_ejection");
  c.max_ejection_ms = millis(options.max_ejection, "max_ejection");
  c.max_ejection_percent = options.max_ejection_percent;
  c.connect_timeout_ms = millis(options.connect_timeout, "connect_timeout");
  c.tcp_user_timeout_ms = millis(options.tcp_user_timeout, "tcp_user_timeout");
  if (options.keepalive) {
    if (options.keepalive->interval.count() == 0)
      throw Error(JINA_NET_INVALID_ARGUMENT,
                  "keepalive.interval must be at least 10 s (leave keepalive empty for no keepalive)");
    c.keepalive_interval_ms = millis(options.keepalive->interval, "keepalive.interval");
    c.keepalive_timeout_ms = millis(options.keepalive->timeout, "keepalive.timeout");
  } else {
    c.keepalive_interval_ms = 0;
  }
  c.probe_after_ms = millis(options.probe_after, "probe_after");
  c.probe_timeout_ms = millis(options.probe_timeout, "probe_timeout");
  c.fail_over_unanswered = options.fail_over_unanswered;
  c.eject_on_deadline = options.eject_on_deadline;
  c.per_attempt_timeout_ms = millis(options.per_attempt_timeout, "per_attempt_timeout");
  if (options.retry_budget) {
    if (options.retry_budget->max_tokens == 0)
      throw Error(JINA_NET_INVALID_ARGUMENT,
                  "retry_budget.max_tokens must be at least 1 (leave retry_budget empty for no budget)");
    c.retry_budget_max_tokens = options.retry_budget->max_tokens;
    c.retry_budget_token_ratio = options.retry_budget->token_ratio;
  } else {
    c.retry_budget_max_tokens = 0;
  }
  c_identity(c, options.tls_identity);
  if (options.tls_server_name) c.tls_server_name = cstr(*options.tls_server_name, "tls_server_name");
  if (options.compression != Compression::None) c.compression = static_cast<uint32_t>(options.compression);
  if (options.dns_refresh) c.dns_refresh_ms = millis(*options.dns_refresh, "dns_refresh");
}
}  // namespace detail

inline PoolOptions PoolOptions::resilient() {
  jina_net_pool_options c{};
  detail::check(jina_net_pool_options_init_resilient(&c, sizeof c));
  return detail::pool_options_from_c(c);
}

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
  /// The send may be performed more than once: hedged when the pool hedges (PoolOptions::max_hedges),
  /// and it goes on to another replica when its attempt got no answer (PoolOptions::per_attempt_timeout
  /// passed, or the replica stopped answering a liveness probe) — without it, only with
  /// PoolOptions::fail_over_unanswered.
  bool idempotent = false;
  /// Request metadata sent with every attempt of the send (see RequestMetadata), e.g.
  /// `options.metadata.add("authorization", "Bearer " + token).add("trace-bin", trace_bytes)`.
  RequestMetadata metadata;
};

namespace detail {
/// The C options of a send, borrowing `endpoint` and `metadata` (both must outlive the C call).
struct CSendOptions {
  jina_net_send_options options{};
  std::vector<jina_net_metadata> metadata;
};

inline void c_send_options(CSendOptions &out, const SendOptions &o) {
  check(jina_net_send_options_init(&out.options, sizeof out.options));
  out.options.kind = static_cast<uint32_t>(o.kind);
  out.options.head = o.head;
  out.options.shard_id = shard(o.shard_id);
  out.options.shards = static_cast<uint32_t>(o.polling);
  out.options.endpoint = o.endpoint ? cstr(*o.endpoint, "endpoint") : nullptr;
  out.options.timeout_ms = millis(o.timeout, "timeout");
  out.options.idempotent = o.idempotent;
  if (!o.metadata.empty()) {
    out.metadata.reserve(o.metadata.size());
    for (const MetadataEntry &e : o.metadata) {
      if (e.key.find('\0') != std::string::npos)
        throw Error(JINA_NET_INVALID_ARGUMENT, "metadata key \"" + e.key.substr(0, e.key.find('\0')) +
                                                   "\\0...\" contains a NUL byte");
      out.metadata.push_back(jina_net_metadata{e.key.c_str(), reinterpret_cast<const uint8_t *>(e.value.data()),
                                               e.value.size()});
    }
    out.options.metadata = out.metadata.data();
    out.options.metadata_len = out.metadata.size();
  }
}
}  // namespace detail

/// Where a replica goes and how it is reached (Pool::add_connection with options; the C ABI's
/// jina_net_add_options).
struct AddOptions {
  bool head = false;                           ///< the deployment's head instead of a shard
  std::optional<uint32_t> shard_id;            ///< the shard (none = shard 0); ignored for a head
  /// The name this replica's TLS certificate must carry (and the SNI sent) instead of the host of
  /// its address; none = PoolOptions::tls_server_name, else the host. A name that is neither a DNS
  /// name nor an IP address ("" included) throws JINA_NET_TLS_ERROR.
  std::optional<std::string> tls_server_name;
};

/// The state of a replica in the routing table (the 4th column of jina_net_pool_routes).
enum class ReplicaState {
  Idle,          ///< `idle`: not connected yet (also: connected, but nothing answered yet)
  Ready,         ///< `ready`: it answered
  Failing,       ///< `failing`: its connection fails
  Unresponsive,  ///< `unresponsive`: it stopped answering (liveness probe)
  Unknown,       ///< a state this header does not know, or none given (a library before 0.2.2)
};

/// "idle", "ready", "failing", "unresponsive" or "unknown".
inline const char *replica_state_name(ReplicaState s) noexcept {
  switch (s) {
    case ReplicaState::Idle: return "idle";
    case ReplicaState::Ready: return "ready";
    case ReplicaState::Failing: return "failing";
    case ReplicaState::Unresponsive: return "unresponsive";
    case ReplicaState::Unknown: break;
  }
  return "unknown";
}

/// The ReplicaState of a routes state name (Unknown for another name).
inline ReplicaState replica_state_from_name(std::string_view name) noexcept {
  if (name == "idle") return ReplicaState::Idle;
  if (name == "ready") return ReplicaState::Ready;
  if (name == "failing") return ReplicaState::Failing;
  if (name == "unresponsive") return ReplicaState::Unresponsive;
  return ReplicaState::Unknown;
}

/// One replica of a head or shard in the routing table.
struct RouteReplica {
  std::string address;     ///< as the pool keys it: host:port, `unix:...` as given, a dns: name's ip:port
  ReplicaState state = ReplicaState::Unknown;
  std::string state_name;  ///< the library's word for the state ("" when it gave none)
};

/// One head or shard of a deployment in the routing table.
struct Route {
  std::string deployment;
  bool head = false;
  std::optional<uint32_t> shard_id;  ///< the shard; none for the head
  std::vector<RouteReplica> replicas;
};

namespace detail {
/// "head" -> head; "shard N" -> N; else nothing.
inline bool route_set(std::string_view label, bool &head, std::optional<uint32_t> &shard_id) {
  constexpr std::string_view shard = "shard ";
  if (label == "head") {
    head = true;
    shard_id.reset();
    return true;
  }
  if (label.substr(0, shard.size()) != shard || label.size() == shard.size() || label.size() > shard.size() + 10)
    return false;
  uint64_t id = 0;
  for (const char ch : label.substr(shard.size())) {
    if (ch < '0' || ch > '9') return false;
    id = id * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (id > UINT32_MAX) return false;
  head = false;
  shard_id = static_cast<uint32_t>(id);
  return true;
}

inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}
}  // namespace detail

/// Parses the text of Pool::routes() (jina_net_pool_routes): one line per head or shard,
/// `<deployment>\t<head|shard N>\t<addr>,<addr>...\t<state>,<state>...`. Each line is read from
/// the right, so a deployment name holding tabs or newlines (the library allows them) comes back
/// whole. The states column may be missing (libraries before 0.2.2: every state is then Unknown).
/// When the number of states differs from the number of addresses (an address holding a comma,
/// which the text cannot tell apart), the addresses are kept as split and their states are Unknown.
/// Throws Error(JINA_NET_INVALID_ARGUMENT) naming the line for text that is not a routing table.
inline std::vector<Route> parse_routes(std::string_view text) {
  std::vector<Route> out;
  std::string pending;  // lines of a deployment name that holds newlines
  size_t number = 0, pending_from = 0;
  bool has_pending = false;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    const std::vector<std::string_view> columns = detail::split(line, '\t');
    Route route;
    size_t set_at = 0;  // the column of "head" / "shard N"; the deployment is everything before it
    bool four = false;
    if (columns.size() >= 4 &&
        detail::route_set(columns[columns.size() - 3], route.head, route.shard_id)) {
      set_at = columns.size() - 3;
      four = true;
    } else if (columns.size() >= 3 &&
               detail::route_set(columns[columns.size() - 2], route.head, route.shard_id)) {
      set_at = columns.size() - 2;
    } else {  // not a route (yet): the first line(s) of a deployment name with a newline
      if (!has_pending) pending_from = number;
      pending.append(line.data(), line.size()).push_back('\n');
      has_pending = true;
      continue;
    }
    route.deployment = std::move(pending);
    for (size_t i = 0; i < set_at; ++i) {
      if (i > 0) route.deployment.push_back('\t');
      route.deployment.append(columns[i].data(), columns[i].size());
    }
    pending.clear();
    has_pending = false;
    const std::string_view address_text = columns[set_at + 1];
    std::vector<std::string_view> addresses, states;
    if (!address_text.empty()) addresses = detail::split(address_text, ',');
    if (four && !columns[set_at + 2].empty()) states = detail::split(columns[set_at + 2], ',');
    const bool paired = states.size() == addresses.size();
    route.replicas.reserve(addresses.size());
    for (size_t i = 0; i < addresses.size(); ++i) {
      RouteReplica r;
      r.address = std::string(addresses[i]);
      if (paired) {
        r.state_name = std::string(states[i]);
        r.state = replica_state_from_name(states[i]);
      }
      route.replicas.push_back(std::move(r));
    }
    out.push_back(std::move(route));
  }
  if (has_pending) {
    pending.pop_back();
    throw Error(JINA_NET_INVALID_ARGUMENT, "routes line " + std::to_string(pending_from) + " (\"" +
                                               pending.substr(0, pending.find('\n')) +
                                               "\"): not a route (<deployment>\\t<head|shard N>\\t<addresses>"
                                               "\\t<states>)");
  }
  return out;
}

/// A connection pool (thread-safe; move-only).
class Pool {
 public:
  explicit Pool(const PoolOptions &options = PoolOptions{}) {
    jina_net_pool_options o{};
    detail::c_pool_options(o, options);
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

  /// Adds a replica with per-address settings (jina_net_pool_add_connection_ex): head or shard, and
  /// the TLS server name of this address. A `dns:///host:port` address adds one replica per address
  /// the name resolves to (shown as ip:port) and follows the name (PoolOptions::dns_refresh); a name
  /// that does not resolve throws JINA_NET_INVALID_ADDRESS naming it. A `unix:/abs/path` address is a
  /// Unix domain socket (plaintext). Returns whether anything was added.
  bool add_connection(const std::string &deployment, const std::string &address, const AddOptions &options) {
    jina_net_add_options o{};
    detail::check(jina_net_add_options_init(&o, sizeof o));
    o.head = options.head;
    o.shard_id = detail::shard(options.shard_id);
    if (options.tls_server_name) o.tls_server_name = detail::cstr(*options.tls_server_name, "tls_server_name");
    bool added = false;
    detail::check(jina_net_pool_add_connection_ex(ptr_.get(), detail::cstr(deployment, "deployment"),
                                                  detail::cstr(address, "address"), &o, &added));
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
  /// completed. For a pool with PoolOptions::callbacks_in_poll (library threads run it), waits the
  /// same way, then runs the callbacks of every send completed since the last poll. Throws
  /// JINA_NET_INVALID_ARGUMENT for a pool whose callbacks run on library threads, and
  /// JINA_NET_RUNTIME_ERROR from inside a callback.
  size_t poll(std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    const uint64_t ms = timeout == std::chrono::milliseconds::max() ? UINT64_MAX : detail::millis(timeout, "timeout");
    size_t completed = 0;
    detail::check(jina_net_pool_poll(ptr_.get(), ms, &completed));
    return completed;
  }

  /// The routing table as the library's text: one line per head or shard, deployments sorted,
  /// `<deployment>\t<head|shard N>\t<addr>,<addr>...\t<state>,<state>...` (see route_table()).
  std::string routes() const {
    char *table = nullptr;
    detail::check(jina_net_pool_routes(ptr_.get(), &table));
    std::unique_ptr<char, detail::StringDeleter> owned(table);
    return std::string(owned.get());
  }

  /// The routing table, parsed (parse_routes(routes())): every head and shard with its replicas and
  /// their states (Idle until connected, Ready once answering, Failing, Unresponsive).
  std::vector<Route> route_table() const { return parse_routes(routes()); }

  /// Connects every replica of every deployment and returns once each has answered a STATUS control
  /// request on its connection (jina_net_pool_wait_ready): what a gateway checks before it declares
  /// itself ready. Throws Error(JINA_NET_DEADLINE_EXCEEDED) when `timeout` passed first, its message
  /// naming each replica not ready (deployment, head or shard, address, state; route_table() shows
  /// the states afterwards), JINA_NET_POOL_CLOSED, and JINA_NET_RUNTIME_ERROR from a callback.
  /// Blocks the calling thread (a caller-driven pool runs on it meanwhile). milliseconds::max() = no
  /// limit.
  void wait_ready(std::chrono::milliseconds timeout) { wait_ready_impl(nullptr, timeout); }

  /// wait_ready for the replicas of one deployment; JINA_NET_UNKNOWN_DEPLOYMENT when it has none.
  void wait_ready(const std::string &deployment, std::chrono::milliseconds timeout) {
    wait_ready_impl(detail::cstr(deployment, "deployment"), timeout);
  }

  // --- sends: callback form (the callback runs once, on a library thread; an exception it throws
  //     goes to `on_exception`, see "Errors and exceptions") ---
  void send(const std::string &deployment, Bytes request, const SendOptions &options, Callback callback,
            ExceptionHandler on_exception = nullptr) {
    send(deployment, std::vector<Bytes>{request}, options, std::move(callback), std::move(on_exception));
  }
  void send(const std::string &deployment, const std::vector<Bytes> &requests, const SendOptions &options,
            Callback callback, ExceptionHandler on_exception = nullptr) {
    start(deployment, requests, options, detail::callback_completion(std::move(callback), std::move(on_exception)),
          false);
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
                            const SendOptions &options, Callback callback, ExceptionHandler on_exception = nullptr) {
    return start(deployment, requests, options,
                 detail::callback_completion(std::move(callback), std::move(on_exception)), true);
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
  void send_owned(const std::string &deployment, OwnedBytes request, const SendOptions &options, Callback callback,
                  ExceptionHandler on_exception = nullptr) {
    std::vector<OwnedBytes> requests;
    requests.push_back(std::move(request));
    send_owned(deployment, std::move(requests), options, std::move(callback), std::move(on_exception));
  }
  void send_owned(const std::string &deployment, std::vector<OwnedBytes> requests, const SendOptions &options,
                  Callback callback, ExceptionHandler on_exception = nullptr) {
    start_owned(deployment, requests, options,
                detail::callback_completion(std::move(callback), std::move(on_exception)), false);
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
  void wait_ready_impl(const char *deployment, std::chrono::milliseconds timeout) {
    const uint64_t ms = timeout == std::chrono::milliseconds::max() ? UINT64_MAX : detail::millis(timeout, "timeout");
    detail::check(jina_net_pool_wait_ready(ptr_.get(), deployment, ms));
  }

  uint64_t start(const std::string &deployment, const std::vector<Bytes> &requests, const SendOptions &options,
                 std::unique_ptr<detail::Completion> completion, bool want_id) {
    // Everything that can throw happens before the completion is handed over.
    const std::vector<jina_net_bytes> items = detail::c_requests(requests);
    const char *dep = detail::cstr(deployment, "deployment");
    detail::CSendOptions so;
    detail::c_send_options(so, options);
    uint64_t id = 0;
    detail::start(std::move(completion), [&](void *user_data) noexcept {
      return jina_net_pool_send_ex(ptr_.get(), items.data(), items.size(), dep, &so.options, &jina_net_cpp_trampoline,
                                   user_data, want_id ? &id : nullptr);
    });
    return id;
  }

  /// The owned form of start(): the holders leave `requests` only right before the C call, so any
  /// exception before it leaves them to the caller's vector (destroyed as the call unwinds).
  uint64_t start_owned(const std::string &deployment, std::vector<OwnedBytes> &requests, const SendOptions &options,
                       std::unique_ptr<detail::Completion> completion, bool want_id) {
    const char *dep = detail::cstr(deployment, "deployment");
    detail::CSendOptions so;
    detail::c_send_options(so, options);
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
    (void)raw_set;
    uint64_t id = 0;
    detail::start(std::move(completion), [&](void *user_data) noexcept {
      return jina_net_pool_send_owned_ex(ptr_.get(), items.data(), items.size(), free_fn, free_ctx, dep, &so.options,
                                         &jina_net_cpp_trampoline, user_data, want_id ? &id : nullptr);
    });
    return id;
  }

  PoolPtr ptr_;
};

// ---------------------------------------------------------------------------------------------
// One-shot sends to an address (no pool)

/// Options of the one-shot helpers (they take no request metadata: the C ABI has none for them).
struct OneShotOptions {
  std::chrono::milliseconds timeout{0};  ///< 0 = the helper's default (100 s blocking, 1 s async)
  bool tls = false;
  std::string root_certificates_pem;     ///< "" = system roots
  std::optional<std::string> endpoint;   ///< `endpoint` metadata of data requests
  RequestKind kind = RequestKind::Data;
  // --- transport (C ABI 0.2.2), as in PoolOptions ---
  std::optional<TlsIdentity> tls_identity;     ///< client certificate chain and key (mutual TLS); none = none
  std::optional<std::string> tls_server_name;  ///< the name the server's certificate must carry (none = the host)
  Compression compression = Compression::None; ///< how the request is compressed
};

namespace detail {
/// The C view of OneShotOptions; borrows from `o` (endpoint, roots, identity, server name).
inline jina_net_oneshot_options c_oneshot(const OneShotOptions &o) {
  jina_net_oneshot_options c{};
  check(jina_net_oneshot_options_init(&c, sizeof c));
  c.timeout_ms = millis(o.timeout, "timeout");
  c.tls = o.tls;
  if (!o.root_certificates_pem.empty()) {
    c.root_certificates_pem = reinterpret_cast<const uint8_t *>(o.root_certificates_pem.data());
    c.root_certificates_pem_len = o.root_certificates_pem.size();
  }
  c.endpoint = o.endpoint ? cstr(*o.endpoint, "endpoint") : nullptr;
  c_identity(c, o.tls_identity);
  if (o.tls_server_name) c.tls_server_name = cstr(*o.tls_server_name, "tls_server_name");
  if (o.compression != Compression::None) c.compression = static_cast<uint32_t>(o.compression);
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

/// Callback form of send_request_async; an exception the callback throws goes to `on_exception`.
inline void send_request_async(Bytes request, const std::string &target, const OneShotOptions &options,
                               Callback callback, ExceptionHandler on_exception = nullptr) {
  detail::oneshot_async(request, target, options,
                        detail::callback_completion(std::move(callback), std::move(on_exception)));
}

/// ACTIVATE `worker_host:worker_port` (shard `shard_id`, none = no shard sent) at the head `target_head`;
/// one attempt, 1 s. The result's one target holds the head's echo of the control request.
inline std::future<SendResult> activate_worker(const std::string &worker_host, uint16_t worker_port,
                                               const std::string &target_head,
                                               std::optional<uint32_t> shard_id = std::nullopt) {
  return detail::control_future(&jina_net_activate_worker, worker_host, worker_port, target_head, shard_id);
}
/// Callback form; an exception the callback throws goes to `on_exception`.
inline void activate_worker(const std::string &worker_host, uint16_t worker_port, const std::string &target_head,
                            std::optional<uint32_t> shard_id, Callback callback,
                            ExceptionHandler on_exception = nullptr) {
  detail::control_async(&jina_net_activate_worker, worker_host, worker_port, target_head, shard_id,
                        detail::callback_completion(std::move(callback), std::move(on_exception)));
}

/// DEACTIVATE; otherwise as activate_worker.
inline std::future<SendResult> deactivate_worker(const std::string &worker_host, uint16_t worker_port,
                                                 const std::string &target_head,
                                                 std::optional<uint32_t> shard_id = std::nullopt) {
  return detail::control_future(&jina_net_deactivate_worker, worker_host, worker_port, target_head, shard_id);
}
/// Callback form; an exception the callback throws goes to `on_exception`.
inline void deactivate_worker(const std::string &worker_host, uint16_t worker_port, const std::string &target_head,
                              std::optional<uint32_t> shard_id, Callback callback,
                              ExceptionHandler on_exception = nullptr) {
  detail::control_async(&jina_net_deactivate_worker, worker_host, worker_port, target_head, shard_id,
                        detail::callback_completion(std::move(callback), std::move(on_exception)));
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

/// Sizes the library runtime; only before it starts (else Error JINA_NET_ALREADY_STARTED). Default:
/// half the cores the process may use, at least 1 and at most 4.
inline void runtime_init(uint32_t worker_threads) { detail::check(jina_net_runtime_init(worker_threads)); }

/// The most a library worker busy-polls before it sleeps, in microseconds (default 100; 0: off);
/// any time. Over 10000: Error JINA_NET_INVALID_ARGUMENT. (C ABI 0.2.3; see the README's "Busy polling".)
inline void runtime_set_busy_poll_us(uint32_t busy_poll_us) {
    detail::check(jina_net_runtime_set_busy_poll_us(busy_poll_us));
}

/// Shuts the library runtime down (pending sends complete with JINA_NET_RUNTIME_ERROR). Not from a
/// callback. Afterwards every call that needs the runtime throws JINA_NET_RUNTIME_ERROR.
inline void runtime_shutdown(std::chrono::milliseconds timeout) {
  detail::check(jina_net_runtime_shutdown(detail::millis(timeout, "timeout")));
}

}  // namespace jina_net

#endif  // JINA_NET_HPP
