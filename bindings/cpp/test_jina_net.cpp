// Tests of the C++ wrapper (bindings/cpp/jina_net.hpp) against real test servers.
// Run from the repository root (the test-server binary is target/debug/jina-net-test-server, or
// $JINA_NET_TEST_SERVER). Prints "N passed, M failed" and exits non-zero on any failure.

#include "jina_net.hpp"

#include "../../tests/c/test_servers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using jina_net::Error;
using jina_net::SendOptions;
using jina_net::SendResult;

// ---------------------------------------------------------------------------------------------
// Checks

static std::atomic<int> g_passed{0};
static std::atomic<int> g_failed{0};

static void check(bool ok, const char *expr, const char *file, int line, const std::string &info) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::fprintf(stderr, "FAILED %s:%d: %s%s%s\n", file, line, expr, info.empty() ? "" : "  -- ", info.c_str());
  }
}
#define CHECK(cond) check(static_cast<bool>(cond), #cond, __FILE__, __LINE__, std::string())
#define CHECK_MSG(cond, info) check(static_cast<bool>(cond), #cond, __FILE__, __LINE__, (info))

static bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// Runs f; returns the jina_net::Error it threw, or nothing (another exception is a failure).
template <class F>
static std::optional<Error> catch_error(F &&f) {
  try {
    f();
  } catch (const Error &e) {
    return e;
  } catch (const std::exception &e) {
    check(false, "unexpected exception", __FILE__, __LINE__, e.what());
  }
  return std::nullopt;
}

static std::string code_of(const std::optional<Error> &e) {
  return e ? std::string(e->what()) : std::string("no Error thrown");
}

// Waits (bounded) for a future; nothing on timeout or on an exception stored in it.
static std::optional<SendResult> wait_result(std::future<SendResult> &f, std::chrono::milliseconds limit = 20s) {
  if (!f.valid() || f.wait_for(limit) != std::future_status::ready) {
    check(false, "future ready in time", __FILE__, __LINE__, std::string());
    return std::nullopt;
  }
  try {
    return f.get();
  } catch (const std::exception &e) {
    check(false, "future holds a value", __FILE__, __LINE__, e.what());
    return std::nullopt;
  }
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format, by hand (schema: proto/jina.proto)

namespace pb {

static void varint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

static void field_bytes(std::string &out, uint32_t field, std::string_view bytes) {
  varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

static void field_varint(std::string &out, uint32_t field, uint64_t v) {
  varint(out, static_cast<uint64_t>(field) << 3);
  varint(out, v);
}

// jina.DataRequestProto { header: HeaderProto { request_id } }
static std::string data_request(const std::string &request_id) {
  std::string header, out;
  field_bytes(header, 1, request_id);
  field_bytes(out, 1, header);
  return out;
}

// jina.ControlRequestProto { header { request_id }, command }
static std::string control_request(const std::string &request_id, uint64_t command) {
  std::string header, out;
  field_bytes(header, 1, request_id);
  field_bytes(out, 1, header);
  if (command != 0) field_varint(out, 2, command);
  return out;
}

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t value = 0;      // varint / fixed
  std::string_view bytes;  // length-delimited
};

static bool read_varint(std::string_view &in, uint64_t &v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// All top-level fields of a message; nothing when it is not valid protobuf.
static std::optional<std::vector<Field>> parse(std::string_view in) {
  std::vector<Field> out;
  while (!in.empty()) {
    uint64_t tag = 0;
    if (!read_varint(in, tag)) return std::nullopt;
    Field f;
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<uint32_t>(tag & 7);
    if (f.number == 0) return std::nullopt;
    switch (f.wire) {
      case 0:
        if (!read_varint(in, f.value)) return std::nullopt;
        break;
      case 1:
        if (in.size() < 8) return std::nullopt;
        in.remove_prefix(8);
        break;
      case 2: {
        uint64_t len = 0;
        if (!read_varint(in, len) || len > in.size()) return std::nullopt;
        f.bytes = in.substr(0, len);
        in.remove_prefix(len);
        break;
      }
      case 5:
        if (in.size() < 4) return std::nullopt;
        in.remove_prefix(4);
        break;
      default:
        return std::nullopt;
    }
    out.push_back(f);
  }
  return out;
}

static std::optional<std::string_view> first_bytes(std::string_view msg, uint32_t number) {
  auto fields = parse(msg);
  if (!fields) return std::nullopt;
  for (const Field &f : *fields)
    if (f.number == number && f.wire == 2) return f.bytes;
  return std::nullopt;
}

// header.request_id of a DataRequestProto or ControlRequestProto.
static std::optional<std::string> request_id(std::string_view msg) {
  auto header = first_bytes(msg, 1);
  if (!header) return std::nullopt;
  auto id = first_bytes(*header, 1);
  if (!id) return std::string();  // proto3 default
  return std::string(*id);
}

// routes[].executor of a DataRequestProto, in order.
static std::vector<std::string> route_executors(std::string_view msg) {
  std::vector<std::string> out;
  auto fields = parse(msg);
  if (!fields) return out;
  for (const Field &f : *fields) {
    if (f.number == 3 && f.wire == 2) {
      auto executor = first_bytes(f.bytes, 1);
      out.push_back(executor ? std::string(*executor) : std::string());
    }
  }
  return out;
}

struct Control {
  uint64_t command = 0;
  std::string address;
  uint64_t port = 0;
  std::optional<uint64_t> shard_id;
  size_t entities = 0;
};

// A ControlRequestProto: command and its first related entity.
static std::optional<Control> control(std::string_view msg) {
  auto fields = parse(msg);
  if (!fields) return std::nullopt;
  Control c;
  for (const Field &f : *fields) {
    if (f.number == 2 && f.wire == 0) c.command = f.value;
    if (f.number == 3 && f.wire == 2) {
      if (c.entities++ > 0) continue;
      auto entity = parse(f.bytes);
      if (!entity) return std::nullopt;
      for (const Field &e : *entity) {
        if (e.number == 2 && e.wire == 2) c.address = std::string(e.bytes);
        if (e.number == 3 && e.wire == 0) c.port = e.value;
        if (e.number == 4 && e.wire == 0) c.shard_id = e.value;
      }
    }
  }
  return c;
}

}  // namespace pb

// ---------------------------------------------------------------------------------------------
// Callback collection (the callback runs on a library thread: record, check on the main thread)

struct TargetSummary {
  jina_net_result status = JINA_NET_OK;
  int32_t grpc_code = 0;
  bool head = false;
  std::optional<uint32_t> shard_id;
  std::string address, error_message, replica, request_id;
  std::string body;
  bool has_response = false;
  jina_net::Metadata metadata;
};

struct Summary {
  uint64_t send_id = 0;
  jina_net_result status = JINA_NET_OK;
  std::string message;
  std::vector<TargetSummary> targets;
  std::thread::id thread;
};

static Summary summarize(const SendResult &r) {
  Summary s;
  s.send_id = r.send_id;
  s.status = r.status;
  s.message = r.error_message;
  s.thread = std::this_thread::get_id();
  for (const auto &t : r.targets) {
    TargetSummary ts;
    ts.status = t.status;
    ts.grpc_code = t.grpc_code;
    ts.head = t.head;
    ts.shard_id = t.shard_id;
    ts.address = t.address;
    ts.error_message = t.error_message;
    ts.replica = t.metadata_value("replica").value_or("");
    ts.has_response = static_cast<bool>(t.response);
    ts.body = std::string(t.body());
    ts.request_id = pb::request_id(ts.body).value_or("");
    ts.metadata = t.metadata;
    s.targets.push_back(ts);
  }
  return s;
}

struct Collector {
  std::mutex m;
  std::condition_variable cv;
  std::vector<Summary> done;

  jina_net::Callback callback() {
    return [this](const SendResult &r) {
      Summary s = summarize(r);
      std::lock_guard<std::mutex> lock(m);
      done.push_back(std::move(s));
      cv.notify_all();
    };
  }
  // Waits until n callbacks have run; returns what they saw (fewer on timeout).
  std::vector<Summary> wait(size_t n, std::chrono::milliseconds limit = 20s) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait_for(lock, limit, [&] { return done.size() >= n; });
    return done;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(m);
    return done.size();
  }
};

// The exceptions one send's on_exception received, with the threads it ran on. Shared with the
// handler, so that a late handler (after a failed wait) never touches a dead stack frame.
struct ExceptionSlot : std::enable_shared_from_this<ExceptionSlot> {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::exception_ptr> got;
  std::vector<std::thread::id> threads;

  jina_net::ExceptionHandler handler() {
    auto self = shared_from_this();
    return [self](std::exception_ptr e) {
      std::lock_guard<std::mutex> lock(self->m);
      self->got.push_back(std::move(e));
      self->threads.push_back(std::this_thread::get_id());
      self->cv.notify_all();
    };
  }
  bool wait(size_t n, std::chrono::milliseconds limit = 20s) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, limit, [&] { return got.size() >= n; });
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(m);
    return got.size();
  }
  std::exception_ptr first() {
    std::lock_guard<std::mutex> lock(m);
    return got.empty() ? nullptr : got.front();
  }
};

// An exception type that is not a std::exception.
struct Thrown {
  int id;
};

// What an exception_ptr holds: what() of a std::exception, "Thrown N", "none" or "other".
static std::string what_of(const std::exception_ptr &e) {
  if (!e) return "none";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception &ex) {
    return ex.what();
  } catch (const Thrown &t) {
    return "Thrown " + std::to_string(t.id);
  } catch (...) {
    return "other";
  }
}

// Base64 without padding, as gRPC puts a -bin value on the wire (and the test server echoes it).
static std::string base64_unpadded(std::string_view in) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (const char ch : in) {
    acc = (acc << 8) | static_cast<uint8_t>(ch);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  return out;
}

// The value of one series (`name{labels}`) in Prometheus text; -1 when absent.
static long metric(const std::string &text, const std::string &series) {
  const std::string key = series + " ";
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, key.size(), key) == 0) return std::strtol(text.c_str() + at + key.size(), nullptr, 10);
    at = end + 1;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------

static jn_servers g_servers;

static std::string addr(const char *name) {
  const char *a = jn_servers_address(&g_servers, name);
  CHECK_MSG(a != nullptr, name);
  return a ? a : "";
}

static std::string replica_of(const jina_net::TargetResult &t) { return t.metadata_value("replica").value_or("?"); }

static void test_basics() {
  std::printf("-- basics\n");
  // before anything starts the runtime
  auto e = catch_error([] { jina_net::runtime_init(0); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
  CHECK(!catch_error([] { jina_net::runtime_init(2); }));

  CHECK(jina_net::version() == "0.2.4");
  // busy polling: 0 (off) to 10000 us, any time
  e = catch_error([] { jina_net::runtime_set_busy_poll_us(10001); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
  CHECK_MSG(e && std::string(e->what()).find("10001") != std::string::npos, e ? e->what() : "");
  CHECK(!catch_error([] { jina_net::runtime_set_busy_poll_us(0); }));
  CHECK(!catch_error([] { jina_net::runtime_set_busy_poll_us(100); }));
  CHECK(jina_net::version() == std::to_string(JINA_NET_VERSION_MAJOR) + "." +
                                   std::to_string(JINA_NET_VERSION_MINOR) + "." +
                                   std::to_string(JINA_NET_VERSION_PATCH));
  auto opts = jina_net::default_grpc_options();
  CHECK(opts.size() == 2);
  CHECK(opts.size() == 2 && opts[0].name == "grpc.max_send_message_length" && opts[0].value == -1);
  CHECK(opts.size() == 2 && opts[1].name == "grpc.max_receive_message_length" && opts[1].value == -1);
  CHECK(std::string(jina_net::result_name(JINA_NET_POOL_CLOSED)) == "JINA_NET_POOL_CLOSED");

  // Error carries code and message
  Error err(JINA_NET_CANCELLED, "x");
  CHECK(err.code() == JINA_NET_CANCELLED && err.message() == "x" && std::string(err.what()) == "JINA_NET_CANCELLED: x");

  // an empty Response
  jina_net::Response empty;
  CHECK(!empty);
  CHECK(empty.body().empty() && empty.address().empty() && empty.metadata_count() == 0 && empty.metadata().empty());

  jina_net::PoolOptions bad;
  bad.max_attempts = 0;
  e = catch_error([&] { jina_net::Pool p(bad); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "max_attempts"), code_of(e));
  bad.max_attempts = 1;
  bad.default_timeout = -1ms;
  e = catch_error([&] { jina_net::Pool p(bad); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));

  {
    jina_net::Pool started;  // the runtime is running now
    e = catch_error([] { jina_net::runtime_init(2); });
    CHECK_MSG(e && e->code() == JINA_NET_ALREADY_STARTED, code_of(e));
  }
}

static void test_hosts() {
  std::printf("-- host checks\n");
  CHECK(jina_net::host_is_local("localhost"));
  CHECK(jina_net::host_is_local("127.0.0.1"));
  CHECK(jina_net::host_is_local("0.0.0.0"));
  CHECK(!jina_net::host_is_local("8.8.8.8"));
  auto e = catch_error([] { jina_net::host_is_local("jina.ai"); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_HOST, code_of(e));
  CHECK_MSG(e && contains(e->message(), "jina.ai") && contains(e->message(), "jina_net_host_is_local"), code_of(e));
  e = catch_error([] { jina_net::host_is_local(std::string("local\0host", 10)); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
  CHECK(jina_net::is_remote_local_connection("1.2.3.4", "localhost"));
  CHECK(jina_net::is_remote_local_connection("8.8.8.8", "192.168.0.1"));
  CHECK(!jina_net::is_remote_local_connection("127.0.0.1", "1.2.3.4"));
  CHECK(!jina_net::is_remote_local_connection("192.168.0.1", "10.0.0.1"));
}

// ---------------------------------------------------------------------------------------------
// Bytes: a pointer and a length, never a NUL-terminated string

// No conversion from a C string or a string literal (it would stop at the first NUL byte).
static_assert(!std::is_convertible_v<const char *, jina_net::Bytes>, "no Bytes from const char *");
static_assert(!std::is_constructible_v<jina_net::Bytes, const char *>, "no Bytes from const char *, even explicitly");
static_assert(!std::is_convertible_v<char *, jina_net::Bytes>, "no Bytes from char *");
static_assert(!std::is_convertible_v<const char (&)[4], jina_net::Bytes>, "no Bytes from a string literal");
static_assert(!std::is_constructible_v<jina_net::Bytes, const char (&)[4]>, "no Bytes from a string literal");
// From what carries its length: implicitly; from (pointer, length): explicitly only.
static_assert(std::is_convertible_v<const std::string &, jina_net::Bytes>, "std::string");
static_assert(std::is_convertible_v<std::string_view, jina_net::Bytes>, "std::string_view");
static_assert(std::is_convertible_v<const std::vector<uint8_t> &, jina_net::Bytes>, "std::vector<uint8_t>");
static_assert(std::is_convertible_v<const std::vector<char> &, jina_net::Bytes>, "std::vector<char>");
static_assert(std::is_convertible_v<const std::vector<std::byte> &, jina_net::Bytes>, "std::vector<std::byte>");
static_assert(std::is_convertible_v<const std::array<uint8_t, 3> &, jina_net::Bytes>, "std::array");
static_assert(!std::is_convertible_v<const std::vector<uint32_t> &, jina_net::Bytes>, "only 1-byte elements");
static_assert(std::is_constructible_v<jina_net::Bytes, const void *, size_t>, "Bytes(pointer, length)");
// The request metadata API: a C string value is text; bytes go in with their length.
static_assert(std::is_same_v<decltype(std::declval<jina_net::RequestMetadata &>().add("k", std::string())),
                             jina_net::RequestMetadata &>,
              "add chains");

// A minimal span-like view (what std::span<const std::byte> is in C++20).
struct ByteSpan {
  const std::byte *p;
  size_t n;
  const std::byte *data() const noexcept { return p; }
  size_t size() const noexcept { return n; }
};

static void test_bytes() {
  std::printf("-- Bytes with embedded NUL bytes\n");
  using jina_net::Bytes;
  const std::string A = addr("a");
  // A DataRequestProto whose request id is two NUL bytes: 6 bytes, the last two NUL. As a C string it
  // would be 4 bytes and no valid protobuf; "..."sv keeps them all.
  const auto literal = "\x0a\x04\x0a\x02\x00\x00"sv;
  CHECK(literal.size() == 6);
  CHECK(Bytes(literal).size() == 6 && Bytes(literal).data() == reinterpret_cast<const uint8_t *>(literal.data()));
  CHECK(pb::request_id(literal) == std::string("\0\0", 2));
  CHECK(Bytes().size() == 0 && Bytes().data() == nullptr && Bytes().empty());

  const std::string nul_id("a\0b\0", 4);
  const std::string msg = pb::data_request(nul_id);
  const std::vector<uint8_t> vec(msg.begin(), msg.end());
  std::vector<std::byte> bytes(msg.size());
  std::memcpy(bytes.data(), msg.data(), msg.size());
  std::array<char, 6> arr{};
  std::memcpy(arr.data(), literal.data(), literal.size());
  CHECK(Bytes(vec).size() == msg.size() && Bytes(bytes).size() == msg.size() && Bytes(arr).size() == 6);
  CHECK(Bytes(ByteSpan{bytes.data(), bytes.size()}).size() == msg.size());
  CHECK(Bytes(vec.data(), vec.size()).data() == vec.data());

  jina_net::Pool pool;
  pool.add_connection("d", A);
  struct Case {
    const char *what;
    Bytes request;
    std::string id;
  };
  const Case cases[] = {
      {"string_view literal", literal, std::string("\0\0", 2)},
      {"std::string", msg, nul_id},
      {"std::vector<uint8_t>", vec, nul_id},
      {"std::vector<std::byte>", bytes, nul_id},
      {"std::array<char, 6>", arr, std::string("\0\0", 2)},
      {"a span", ByteSpan{bytes.data(), bytes.size()}, nul_id},
      {"Bytes(pointer, length)", Bytes(vec.data(), vec.size()), nul_id},
  };
  for (const Case &c : cases) {
    auto f = pool.send("d", c.request);
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1 && pb::request_id(r->targets[0].body()) == c.id,
              std::string(c.what) + (r ? ": " + r->error_message : ""));
  }
  // several at once: all bytes of each
  {
    auto f = pool.send("d", {literal, Bytes(vec), Bytes(msg)});
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && r->targets[0].metadata_value("request-count") == std::string("3"));
    CHECK(r && r->targets.size() == 1 && pb::request_id(r->targets[0].body()) == std::string("\0\0", 2));
  }
  // the one-shot helpers too
  jina_net::Response resp = jina_net::send_request_sync(literal, A);
  CHECK(pb::request_id(resp.body()) == std::string("\0\0", 2));
  jina_net::Response resp2 = jina_net::send_requests_sync({Bytes(vec), literal}, A);
  CHECK(pb::request_id(resp2.body()) == nul_id && resp2.metadata_value("request-count") == std::string("2"));
  auto af = jina_net::send_request_async(Bytes(vec), A);
  auto ar = wait_result(af);
  CHECK(ar && ar->ok() && ar->targets.size() == 1 && pb::request_id(ar->targets[0].body()) == nul_id);
  // the owned form: a moved-in vector with NULs arrives whole
  auto of = pool.send_owned("d", std::vector<uint8_t>(vec));
  auto orr = wait_result(of);
  CHECK(orr && orr->ok() && orr->targets.size() == 1 && pb::request_id(orr->targets[0].body()) == nul_id);
}

static void test_pool_routing() {
  std::printf("-- pool routing\n");
  const std::string A = addr("a"), B = addr("b"), C = addr("c"), HX = addr("hx");
  jina_net::Pool pool;
  CHECK(pool.add_connection("rr", A));
  CHECK(pool.add_connection("rr", B));
  CHECK(!pool.add_connection("rr", A));  // known address
  CHECK(pool.add_connection("all", A, false, 0u));
  CHECK(pool.add_connection("all", C, false, 1u));
  CHECK(pool.add_connection("hd", HX, true));
  CHECK(pool.add_connection("hd", A));
  // the library's text (0.2.2: a 4th column, the replicas' states; nothing is connected yet)
  const std::string routes = pool.routes();
  CHECK_MSG(contains(routes, "rr\tshard 0\t" + A + "," + B + "\tidle,idle\n"), routes);
  CHECK_MSG(contains(routes, "all\tshard 1\t" + C + "\tidle\n"), routes);
  CHECK_MSG(contains(routes, "hd\thead\t" + HX + "\tidle\n"), routes);
  // and parsed: deployments sorted, then the head before the shards
  const std::vector<jina_net::Route> table = pool.route_table();
  CHECK_MSG(table.size() == 5, routes);
  if (table.size() == 5) {
    CHECK(table[0].deployment == "all" && !table[0].head && table[0].shard_id == 0u &&
          table[0].replicas.size() == 1 && table[0].replicas[0].address == A);
    CHECK(table[1].deployment == "all" && table[1].shard_id == 1u && table[1].replicas.size() == 1 &&
          table[1].replicas[0].address == C);
    CHECK(table[2].deployment == "hd" && table[2].head && !table[2].shard_id && table[2].replicas.size() == 1 &&
          table[2].replicas[0].address == HX);
    CHECK(table[3].deployment == "hd" && table[3].shard_id == 0u);
    CHECK(table[4].deployment == "rr" && table[4].replicas.size() == 2 && table[4].replicas[0].address == A &&
          table[4].replicas[1].address == B);
    for (const auto &route : table)
      for (const auto &r : route.replicas)
        CHECK(r.state == jina_net::ReplicaState::Idle && r.state_name == "idle");
  }

  // round robin over two replicas of one shard: the replica trailer alternates
  std::vector<std::string> replicas;
  for (int i = 0; i < 4; ++i) {
    const std::string id = "rr-" + std::to_string(i);
    auto f = pool.send("rr", pb::data_request(id));
    auto r = wait_result(f);
    if (!r) continue;
    CHECK_MSG(r->ok() && r->targets.size() == 1, r->error_message);
    if (r->targets.size() != 1) continue;
    const auto &t = r->targets[0];
    replicas.push_back(replica_of(t));
    CHECK(t.ok() && t.grpc_code == 0 && t.error_message.empty() && t.grpc_message.empty());
    CHECK(t.shard_id == std::optional<uint32_t>(0u) && !t.head);
    CHECK(pb::request_id(t.body()) == id);
    CHECK(t.address == addr(replica_of(t).c_str()));
    CHECK(t.response.address() == t.address);
    const auto routes_seen = pb::route_executors(t.body());
    CHECK(!routes_seen.empty() && routes_seen.back() == replica_of(t));
    CHECK(r->send_id != 0);
  }
  CHECK(replicas.size() == 4);
  if (replicas.size() == 4) {
    CHECK_MSG(replicas[0] != replicas[1] && replicas[0] == replicas[2] && replicas[1] == replicas[3],
              replicas[0] + replicas[1] + replicas[2] + replicas[3]);
    CHECK((std::set<std::string>{replicas[0], replicas[1]} == std::set<std::string>{"a", "b"}));
  }

  // ALL over two shards
  {
    SendOptions o;
    o.polling = jina_net::Polling::All;
    auto f = pool.send("all", pb::data_request("all-1"), o);
    auto r = wait_result(f);
    if (r) {
      CHECK_MSG(r->ok() && r->error_message.empty(), r->error_message);
      CHECK(r->targets.size() == 2);
      if (r->targets.size() == 2) {
        CHECK(r->targets[0].shard_id == std::optional<uint32_t>(0u) && replica_of(r->targets[0]) == "a");
        CHECK(r->targets[1].shard_id == std::optional<uint32_t>(1u) && replica_of(r->targets[1]) == "c");
        CHECK(r->targets[0].address == A && r->targets[1].address == C);
        CHECK(pb::request_id(r->targets[1].body()) == "all-1");
      }
    }
  }
  // one given shard
  {
    SendOptions o;
    o.shard_id = 1;
    auto f = pool.send("all", pb::data_request("shard-1"), o);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == "c" &&
          r->targets[0].shard_id == std::optional<uint32_t>(1u));
  }
  // head
  {
    SendOptions o;
    o.head = true;
    auto f = pool.send("hd", pb::data_request("to-head"), o);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1);
    if (r && r->targets.size() == 1) {
      const auto &t = r->targets[0];
      CHECK(t.head && !t.shard_id && replica_of(t) == "hx" && t.address == HX);
      CHECK(pb::route_executors(t.body()) == std::vector<std::string>{"hx"});
    }
  }
  // endpoint metadata
  {
    SendOptions o;
    o.endpoint = "/foo";
    auto f = pool.send("rr", pb::data_request("ep"), o);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && r->targets[0].metadata_value("endpoint") == std::string("/foo"));
    auto f2 = pool.send("rr", pb::data_request("no-ep"));
    auto r2 = wait_result(f2);
    CHECK(r2 && r2->ok() && r2->targets.size() == 1 &&
          r2->targets[0].metadata_value("endpoint") == std::string(""));
  }
  // several requests in one call, and one
  {
    const std::string m1 = pb::data_request("m1"), m2 = pb::data_request("m2"), m3 = pb::data_request("m3");
    auto f = pool.send("rr", {m1, m2, m3});
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && r->targets[0].metadata_value("request-count") == std::string("3"));
    CHECK(r && r->targets.size() == 1 && pb::request_id(r->targets[0].body()) == std::string("m1"));
    auto f1 = pool.send("rr", m2);
    auto r1 = wait_result(f1);
    CHECK(r1 && r1->ok() && r1->targets.size() == 1 &&
          r1->targets[0].metadata_value("request-count") == std::string("1"));
  }
  // a control request through the pool (the echo worker returns it)
  {
    SendOptions o;
    o.kind = jina_net::RequestKind::Control;
    auto f = pool.send("rr", pb::control_request("ctl-1", 0), o);
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1, r ? r->error_message : "");
    if (r && r->targets.size() == 1) {
      CHECK(pb::request_id(r->targets[0].body()) == std::string("ctl-1"));
      auto c = pb::control(r->targets[0].body());
      CHECK(c && c->command == 0);
    }
  }
  // remove a replica: all sends go to the other one
  CHECK(pool.remove_connection("rr", B));
  CHECK(!pool.remove_connection("rr", B));
  for (int i = 0; i < 2; ++i) {
    auto f = pool.send("rr", pb::data_request("after-remove"));
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == "a");
  }
}

static void test_failures() {
  std::printf("-- failures\n");
  const std::string U = addr("u"), S = addr("s"), E = addr("e"), A = addr("a");
  jina_net::Pool pool;
  pool.add_connection("dep-u", U);
  {
    auto f = pool.send("dep-u", pb::data_request("x"));
    auto r = wait_result(f);
    CHECK(r.has_value());
    if (r) {
      CHECK(r->status == JINA_NET_RPC_ERROR && !r->ok());
      CHECK_MSG(contains(r->error_message, "dep-u") && contains(r->error_message, U), r->error_message);
      CHECK(r->targets.size() == 1);
      if (r->targets.size() == 1) {
        const auto &t = r->targets[0];
        CHECK(t.status == JINA_NET_RPC_ERROR && t.grpc_code == 14 && !t.response && t.body().empty());
        CHECK_MSG(contains(t.error_message, "dep-u") && contains(t.error_message, U), t.error_message);
        CHECK_MSG(contains(t.grpc_message, "unavailable"), t.grpc_message);
        CHECK(t.address == U);
      }
      auto e = catch_error([&] { r->check(); });
      CHECK_MSG(e && e->code() == JINA_NET_RPC_ERROR && contains(e->message(), "dep-u"), code_of(e));
    }
  }
  // bad address
  auto e = catch_error([&] { pool.add_connection("d", "no-port"); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS, code_of(e));
  CHECK_MSG(e && contains(e->message(), "no-port") && contains(e->message(), "jina_net_pool_add_connection"),
            code_of(e));
  // unknown deployment: synchronous, in both forms, and no callback
  e = catch_error([&] { pool.send("nope", pb::data_request("x")); });
  CHECK_MSG(e && e->code() == JINA_NET_UNKNOWN_DEPLOYMENT && contains(e->message(), "nope"), code_of(e));
  Collector never;
  e = catch_error([&] { pool.send("nope", pb::data_request("x"), SendOptions{}, never.callback()); });
  CHECK_MSG(e && e->code() == JINA_NET_UNKNOWN_DEPLOYMENT && contains(e->message(), "jina_net_pool_send"),
            code_of(e));
  // no head in the deployment
  SendOptions head;
  head.head = true;
  e = catch_error([&] { pool.send("dep-u", pb::data_request("x"), head, never.callback()); });
  CHECK_MSG(e && e->code() == JINA_NET_NO_REPLICAS, code_of(e));
  // bytes that are not protobuf
  e = catch_error([&] { pool.send("dep-u", std::string("\xff\xff\xff\xff", 4)); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_REQUEST, code_of(e));
  // the wrapper's own checks
  e = catch_error([&] { pool.send(std::string("dep\0u", 5), pb::data_request("x")); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "deployment"), code_of(e));
  SendOptions negative;
  negative.timeout = -5ms;
  e = catch_error([&] { pool.send("dep-u", pb::data_request("x"), negative); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
  e = catch_error([&] { pool.send("dep-u", pb::data_request("x"), SendOptions{}, jina_net::Callback()); });
  CHECK_MSG(e && e->code() == JINA_NET_NULL_ARGUMENT, code_of(e));
  e = catch_error([&] { pool.send("dep-u", std::vector<jina_net::Bytes>{}); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
  std::this_thread::sleep_for(100ms);
  CHECK(never.count() == 0);

  // deadline
  pool.add_connection("slow", S);
  {
    SendOptions o;
    o.timeout = 300ms;
    const auto t0 = std::chrono::steady_clock::now();
    auto f = pool.send("slow", pb::data_request("late"), o);
    auto r = wait_result(f);
    const auto took = std::chrono::steady_clock::now() - t0;
    const bool deadline = r && r->status == JINA_NET_DEADLINE_EXCEEDED && r->targets.size() == 1 &&
                          r->targets[0].status == JINA_NET_DEADLINE_EXCEEDED && r->targets[0].grpc_code == 4;
    CHECK_MSG(deadline, r ? r->error_message : "");
    CHECK(took < 2500ms);
  }
  // an executor error is in-band: gRPC OK
  pool.add_connection("err", E);
  {
    auto f = pool.send("err", pb::data_request("raise"));
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && r->targets[0].metadata_value("is-error") == std::string("true"));
  }
  // sync helper against UNAVAILABLE
  e = catch_error([&] { jina_net::send_request_sync(pb::data_request("x"), U); });
  CHECK_MSG(e && e->code() == JINA_NET_RPC_ERROR && contains(e->message(), U), code_of(e));
  (void)A;
}

static void test_callbacks() {
  std::printf("-- callbacks\n");
  const std::string A = addr("a");
  const auto main_thread = std::this_thread::get_id();
  jina_net::Pool pool;
  pool.add_connection("cb", A);

  Collector c;
  pool.send("cb", pb::data_request("cb-1"), SendOptions{}, c.callback());
  auto done = c.wait(1);
  CHECK(done.size() == 1);
  if (done.size() == 1) {
    CHECK(done[0].status == JINA_NET_OK && done[0].targets.size() == 1);
    CHECK(done[0].targets.size() == 1 && done[0].targets[0].request_id == "cb-1" &&
          done[0].targets[0].replica == "a" && done[0].targets[0].has_response);
    CHECK(done[0].thread != main_thread);  // a library runtime thread
  }
  std::this_thread::sleep_for(150ms);
  CHECK(c.count() == 1);  // exactly once

  // a callback that throws: caught, handed to that send's on_exception (once), the library carries on
  {
    auto handled = std::make_shared<ExceptionSlot>();
    pool.send(
        "cb", pb::data_request("boom"), SendOptions{},
        [](const SendResult &) { throw std::runtime_error("boom from a callback"); }, handled->handler());
    CHECK(handled->wait(1));
    CHECK(handled->count() == 1);
    CHECK(what_of(handled->first()) == "boom from a callback");
    std::this_thread::sleep_for(50ms);
    CHECK(handled->count() == 1);  // once
    auto f = pool.send("cb", pb::data_request("after-boom"));
    auto r = wait_result(f);
    CHECK(r && r->ok());
  }

  // a blocking helper from a callback is refused (JINA_NET_RUNTIME_ERROR), not a deadlock
  std::promise<std::optional<jina_net_result>> refused;
  auto refused_f = refused.get_future();
  pool.send("cb", pb::data_request("sync-inside"), SendOptions{}, [&](const SendResult &) {
    std::optional<jina_net_result> code;
    try {
      jina_net::send_request_sync(pb::data_request("inner"), A);
    } catch (const Error &ex) {
      code = ex.code();
    }
    refused.set_value(code);
  });
  CHECK(refused_f.wait_for(20s) == std::future_status::ready);
  if (refused_f.valid() && refused_f.wait_for(0s) == std::future_status::ready)
    CHECK(refused_f.get() == std::optional<jina_net_result>(JINA_NET_RUNTIME_ERROR));

  // an asynchronous send started from a callback
  Collector inner;
  std::atomic<int> outer_calls{0};
  pool.send("cb", pb::data_request("outer"), SendOptions{}, [&](const SendResult &) {
    ++outer_calls;
    pool.send("cb", pb::data_request("inner"), SendOptions{}, inner.callback());
  });
  auto inner_done = inner.wait(1);
  CHECK(inner_done.size() == 1 && inner_done[0].status == JINA_NET_OK && !inner_done[0].targets.empty() &&
        inner_done[0].targets[0].request_id == "inner");
  CHECK(outer_calls.load() == 1);
}

static void test_cancel_and_close() {
  std::printf("-- cancel and close\n");
  const std::string S = addr("s"), A = addr("a");
  jina_net::Pool pool;
  pool.add_connection("slow", S);
  pool.add_connection("fast", A);

  Collector c;
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t id = pool.send_cancellable("slow", {pb::data_request("to-cancel")}, SendOptions{}, c.callback());
  CHECK(id != 0);
  std::this_thread::sleep_for(100ms);
  CHECK(c.count() == 0);  // still pending at the slow server
  CHECK(pool.cancel(id));
  CHECK(!pool.cancel(id));
  auto done = c.wait(1);
  CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);  // did not wait for the 3 s server
  CHECK(done.size() == 1);
  if (!done.empty()) {
    CHECK_MSG(done[0].status == JINA_NET_CANCELLED, done[0].message);
    CHECK(done[0].send_id == id);
    CHECK(done[0].targets.size() == 1 && done[0].targets[0].status == JINA_NET_CANCELLED &&
          done[0].targets[0].grpc_code == 1 && !done[0].targets[0].has_response);
  }
  std::this_thread::sleep_for(200ms);
  CHECK(c.count() == 1);  // once

  // future form
  auto pending = pool.send_cancellable("slow", {pb::data_request("to-cancel-2")});
  CHECK(pending.id != 0 && pending.id != id);
  std::this_thread::sleep_for(50ms);
  CHECK(pool.cancel(pending.id));
  auto r = wait_result(pending.result, 2500ms);
  CHECK(r && r->status == JINA_NET_CANCELLED && r->send_id == pending.id);

  // cancelling a completed or unknown send
  auto quick = pool.send_cancellable("fast", {pb::data_request("quick")});
  auto qr = wait_result(quick.result);
  CHECK(qr && qr->ok());
  CHECK(!pool.cancel(quick.id));
  CHECK(!pool.cancel(987654321));

  // close with a pending send: it completes with POOL_CLOSED, at once
  {
    jina_net::Pool p2;
    p2.add_connection("slow", S);
    auto f = p2.send("slow", pb::data_request("pending"));
    Collector cc;
    p2.send("slow", pb::data_request("pending-cb"), SendOptions{}, cc.callback());
    std::this_thread::sleep_for(100ms);
    const auto t1 = std::chrono::steady_clock::now();
    p2.close();
    auto closed = wait_result(f, 2500ms);
    CHECK(closed && closed->status == JINA_NET_POOL_CLOSED);
    CHECK(closed && closed->targets.size() <= 1 &&
          (closed->targets.empty() || closed->targets[0].status == JINA_NET_POOL_CLOSED));
    auto cdone = cc.wait(1, 2500ms);
    CHECK(cdone.size() == 1 && cdone[0].status == JINA_NET_POOL_CLOSED);
    CHECK(std::chrono::steady_clock::now() - t1 < 2500ms);
    CHECK(!catch_error([&] { p2.close(); }));  // twice is harmless
    auto e = catch_error([&] { p2.add_connection("d", A); });
    CHECK_MSG(e && e->code() == JINA_NET_POOL_CLOSED, code_of(e));
    e = catch_error([&] { p2.send("slow", pb::data_request("x")); });
    CHECK_MSG(e && e->code() == JINA_NET_POOL_CLOSED, code_of(e));
    std::this_thread::sleep_for(100ms);
    CHECK(cc.count() == 1);
  }
  // destroying a pool with a pending send: it completes with POOL_CLOSED afterwards
  std::future<SendResult> orphan;
  Collector oc;
  {
    jina_net::Pool p3;
    p3.add_connection("slow", S);
    orphan = p3.send("slow", pb::data_request("orphan"));
    p3.send("slow", pb::data_request("orphan-cb"), SendOptions{}, oc.callback());
    std::this_thread::sleep_for(50ms);
  }
  auto o = wait_result(orphan, 2500ms);
  CHECK(o && o->status == JINA_NET_POOL_CLOSED);
  auto odone = oc.wait(1, 2500ms);
  CHECK(odone.size() == 1 && odone[0].status == JINA_NET_POOL_CLOSED);
}

// ---------------------------------------------------------------------------------------------
// Owned sends: every buffer is destroyed exactly once, whatever happens to the send

static std::atomic<int> g_owned_made{0};
static std::atomic<int> g_owned_destroyed{0};

// A byte container that counts its destructions (a moved-from one does not count).
struct CountedBuffer {
  explicit CountedBuffer(std::string bytes) : s(std::move(bytes)) { ++g_owned_made; }
  CountedBuffer(CountedBuffer &&o) noexcept : s(std::move(o.s)), live(o.live) { o.live = false; }
  CountedBuffer(const CountedBuffer &) = delete;
  CountedBuffer &operator=(const CountedBuffer &) = delete;
  CountedBuffer &operator=(CountedBuffer &&) = delete;
  ~CountedBuffer() {
    if (live) ++g_owned_destroyed;
  }
  const char *data() const noexcept { return s.data(); }
  size_t size() const noexcept { return s.size(); }
  std::string s;
  bool live = true;
};

static jina_net::OwnedBytes counted(const std::string &bytes) {
  return jina_net::OwnedBytes::from(CountedBuffer(bytes));
}

// Waits (bounded) until every counted buffer made so far was destroyed; true when exactly all were.
static bool all_owned_destroyed(std::chrono::milliseconds limit = 3s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (g_owned_destroyed.load() < g_owned_made.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(2ms);
  std::this_thread::sleep_for(20ms);  // a second destruction would show up here
  return g_owned_destroyed.load() == g_owned_made.load();
}

static std::string owned_counts() {
  return "made " + std::to_string(g_owned_made.load()) + ", destroyed " + std::to_string(g_owned_destroyed.load());
}

static void test_owned() {
  std::printf("-- owned sends\n");
  const std::string A = addr("a"), U = addr("u"), S = addr("s");
  jina_net::Pool pool;
  pool.add_connection("echo", A);
  pool.add_connection("down", U);
  pool.add_connection("slow", S);

  // OwnedBytes from the supported containers
  {
    const std::string msg = pb::data_request("owned-types");
    std::vector<uint8_t> v(msg.begin(), msg.end());
    const uint8_t *vdata = v.data();
    jina_net::OwnedBytes ov(std::move(v));
    CHECK(ov && ov.size() == msg.size() && ov.data() == vdata);  // moved, not copied
    std::unique_ptr<uint8_t[]> arr(new uint8_t[msg.size()]);
    std::memcpy(arr.get(), msg.data(), msg.size());
    jina_net::OwnedBytes oa(std::move(arr), msg.size());
    CHECK(oa.size() == msg.size());
    jina_net::OwnedBytes os{std::string(msg)};
    jina_net::OwnedBytes oc{std::vector<char>(msg.begin(), msg.end())};
    CHECK(os.size() == msg.size() && oc.size() == msg.size());
    CHECK(!jina_net::OwnedBytes());
    // all four in one process_data call
    std::vector<jina_net::OwnedBytes> four;
    four.push_back(std::move(ov));
    four.push_back(std::move(oa));
    four.push_back(std::move(os));
    four.push_back(std::move(oc));
    auto f = pool.send_owned("echo", std::move(four));
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1 &&
                  r->targets[0].metadata_value("request-count") == std::string("4"),
              r ? r->error_message : "");
  }

  // success, future and callback forms: the bytes arrive; each buffer destroyed once, after the send
  {
    auto f = pool.send_owned("echo", counted(pb::data_request("owned-1")));
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && pb::request_id(r->targets[0].body()) == "owned-1");
    Collector c;
    SendOptions o;
    o.endpoint = "/index";
    pool.send_owned("echo", counted(pb::data_request("owned-2")), o, c.callback());
    auto done = c.wait(1);
    CHECK(done.size() == 1 && done[0].status == JINA_NET_OK && !done[0].targets.empty() &&
          done[0].targets[0].request_id == "owned-2");
    std::vector<jina_net::OwnedBytes> two;
    two.push_back(counted(pb::data_request("m1")));
    two.push_back(counted(pb::data_request("m2")));
    auto f2 = pool.send_owned("echo", std::move(two));
    auto r2 = wait_result(f2);
    CHECK(r2 && r2->ok());
    CHECK_MSG(all_owned_destroyed(), owned_counts());
    CHECK(g_owned_made.load() == 4);
  }

  // the library refuses the send: the buffers are destroyed before the Error is thrown
  {
    struct Case {
      const char *what;
      std::string deployment;
      std::string bytes;
      SendOptions options;
      jina_net_result code;
    };
    SendOptions head;
    head.head = true;
    const Case cases[] = {
        {"unknown deployment", "nope", pb::data_request("x"), SendOptions{}, JINA_NET_UNKNOWN_DEPLOYMENT},
        {"not protobuf", "echo", std::string("\xff\xff\xff", 3), SendOptions{}, JINA_NET_INVALID_REQUEST},
        {"no head", "echo", pb::data_request("x"), head, JINA_NET_NO_REPLICAS},
    };
    for (const Case &c : cases) {
      for (int form = 0; form < 3; ++form) {
        const int before = g_owned_destroyed.load();
        Collector never;
        auto e = catch_error([&] {
          if (form == 0) {
            pool.send_owned(c.deployment, counted(c.bytes), c.options);
          } else if (form == 1) {
            pool.send_owned(c.deployment, counted(c.bytes), c.options, never.callback());
          } else {
            std::vector<jina_net::OwnedBytes> v;
            v.push_back(counted(c.bytes));
            v.push_back(counted(pb::data_request("second")));
            pool.send_owned_cancellable(c.deployment, std::move(v), c.options);
          }
        });
        CHECK_MSG(e && e->code() == c.code, std::string(c.what) + ": " + code_of(e));
        CHECK_MSG(g_owned_destroyed.load() - before == (form == 2 ? 2 : 1), std::string(c.what) + ": " + owned_counts());
        CHECK(never.count() == 0);
      }
    }
    CHECK_MSG(all_owned_destroyed(), owned_counts());
  }

  // the wrapper refuses an argument before the library sees the buffers: destroyed as the call unwinds
  {
    const int before = g_owned_destroyed.load();
    auto e = catch_error([&] { pool.send_owned(std::string("ec\0ho", 5), counted(pb::data_request("x"))); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    SendOptions negative;
    negative.timeout = -1ms;
    e = catch_error([&] { pool.send_owned("echo", counted(pb::data_request("x")), negative); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    e = catch_error([&] {
      pool.send_owned("echo", counted(pb::data_request("x")), SendOptions{}, jina_net::Callback());
    });
    CHECK_MSG(e && e->code() == JINA_NET_NULL_ARGUMENT, code_of(e));
    e = catch_error([&] { pool.send_owned("echo", std::vector<jina_net::OwnedBytes>{}); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    CHECK_MSG(g_owned_destroyed.load() - before == 3, owned_counts());
    CHECK_MSG(all_owned_destroyed(), owned_counts());
  }

  // an empty buffer (NULL data, which the library never frees) next to a real one
  {
    std::vector<jina_net::OwnedBytes> v;
    v.push_back(counted(pb::data_request("with-empty")));
    v.push_back(jina_net::OwnedBytes::from(CountedBuffer(std::string())));
    v.push_back(jina_net::OwnedBytes(std::vector<uint8_t>{}));  // data() == nullptr
    // empty messages may be refused (an Error) or sent: the buffers are destroyed once either way
    (void)catch_error([&] {
      auto f = pool.send_owned("echo", std::move(v));
      CHECK(wait_result(f).has_value());
    });
    CHECK_MSG(all_owned_destroyed(), owned_counts());
    // only empty buffers: refused or sent, and destroyed either way
    std::vector<jina_net::OwnedBytes> empty;
    empty.push_back(jina_net::OwnedBytes(std::vector<uint8_t>{}));
    (void)catch_error([&] {
      auto fe = pool.send_owned("echo", std::move(empty));
      (void)wait_result(fe);
    });
  }

  // failures after the send started: UNAVAILABLE, deadline, cancel, pool closed; destroyed after
  {
    auto f = pool.send_owned("down", counted(pb::data_request("x")));
    auto r = wait_result(f);
    CHECK(r && r->status == JINA_NET_RPC_ERROR);
    SendOptions deadline;
    deadline.timeout = 200ms;
    auto fd = pool.send_owned("slow", counted(pb::data_request("late")), deadline);
    auto rd = wait_result(fd);
    CHECK(rd && rd->status == JINA_NET_DEADLINE_EXCEEDED);
    std::vector<jina_net::OwnedBytes> v;
    v.push_back(counted(pb::data_request("to-cancel")));
    auto pending = pool.send_owned_cancellable("slow", std::move(v));
    CHECK(pending.id != 0);
    std::this_thread::sleep_for(50ms);
    CHECK(pool.cancel(pending.id));
    auto rc = wait_result(pending.result);
    CHECK(rc && rc->status == JINA_NET_CANCELLED);
    {
      jina_net::Pool p2;
      p2.add_connection("slow", S);
      auto fc = p2.send_owned("slow", counted(pb::data_request("pending-at-close")));
      std::this_thread::sleep_for(50ms);
      p2.close();
      auto rcl = wait_result(fc);
      CHECK(rcl && rcl->status == JINA_NET_POOL_CLOSED);
      auto e = catch_error([&] { p2.send_owned("slow", counted(pb::data_request("after-close"))); });
      CHECK_MSG(e && e->code() == JINA_NET_POOL_CLOSED, code_of(e));
    }
    CHECK_MSG(all_owned_destroyed(), owned_counts());
  }
}

// ---------------------------------------------------------------------------------------------
// Request metadata (SendOptions::metadata)

static bool has_seen(const jina_net::Metadata &md, const std::string &key, const std::string &value,
                     const std::string &what) {
  const auto got = jina_net::find_metadata(md, "seen-" + key);
  const bool ok = got == value;
  CHECK_MSG(ok, what + ": seen-" + key + " = " + got.value_or("(none)") + ", want " + value);
  return ok;
}

static void test_request_metadata() {
  std::printf("-- request metadata\n");
  const std::string A = addr("a"), B = addr("b"), S = addr("s"), F = addr("f");
  jina_net::Pool pool;
  pool.add_connection("d", A);
  const std::vector<uint8_t> trace{0, 1, 2, 0xff};
  const std::string nul_value("\0a\0", 3);  // a binary value with NUL bytes
  SendOptions o;
  o.metadata.add("authorization", "Bearer t0k3n")
      .add("trace-bin", trace)
      .add("nul-bin", nul_value)
      .add("x-request-id", std::string("req-") + "42");
  CHECK(o.metadata.size() == 4 && !o.metadata.empty());
  CHECK(o.metadata.entries()[2].value == nul_value);  // all three bytes
  CHECK(base64_unpadded(std::string("\0\1\2\xff", 4)) == "AAEC/w");
  const std::string nul_b64 = base64_unpadded(nul_value);
  CHECK(nul_b64 == "AGEA");
  auto expect_all = [&](const jina_net::Metadata &md, const std::string &form) {
    has_seen(md, "authorization", "Bearer t0k3n", form);
    has_seen(md, "trace-bin", "AAEC/w", form);
    has_seen(md, "nul-bin", nul_b64, form);
    has_seen(md, "x-request-id", "req-42", form);
  };
  auto expect_result = [&](std::future<SendResult> &f, const std::string &form) {
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1, form + (r ? ": " + r->error_message : ""));
    if (r && r->targets.size() == 1) expect_all(r->targets[0].metadata, form);
  };
  auto expect_collected = [&](Collector &c, const std::string &form) {
    auto done = c.wait(1);
    CHECK_MSG(done.size() == 1 && done[0].status == JINA_NET_OK && done[0].targets.size() == 1, form);
    if (done.size() == 1 && done[0].targets.size() == 1) expect_all(done[0].targets[0].metadata, form);
  };
  const std::string req = pb::data_request("md");

  // every send form of the pool
  {
    auto f = pool.send("d", req, o);
    expect_result(f, "send (future)");
    auto fv = pool.send("d", {req, req}, o);
    expect_result(fv, "send of several (future)");
    Collector c;
    pool.send("d", req, o, c.callback());
    expect_collected(c, "send (callback)");
    Collector cc;
    CHECK(pool.send_cancellable("d", {req}, o, cc.callback()) != 0);
    expect_collected(cc, "send_cancellable (callback)");
    auto pending = pool.send_cancellable("d", {req}, o);
    expect_result(pending.result, "send_cancellable (future)");
    auto fo = pool.send_owned("d", counted(req), o);
    expect_result(fo, "send_owned (future)");
    Collector co;
    pool.send_owned("d", counted(req), o, co.callback());
    expect_collected(co, "send_owned (callback)");
    std::vector<jina_net::OwnedBytes> two;
    two.push_back(counted(req));
    two.push_back(counted(req));
    auto po = pool.send_owned_cancellable("d", std::move(two), o);
    expect_result(po.result, "send_owned_cancellable");
    SendOptions idem = o;
    idem.idempotent = true;
    auto fi = pool.send("d", req, idem);
    expect_result(fi, "idempotent send");
    auto foi = pool.send_owned("d", counted(req), idem);
    expect_result(foi, "idempotent owned send");
    // without metadata: none arrives
    auto plain = pool.send("d", req);
    auto pr = wait_result(plain);
    CHECK(pr && pr->ok() && pr->targets.size() == 1 && !pr->targets[0].metadata_value("seen-authorization"));
    CHECK_MSG(all_owned_destroyed(), owned_counts());
  }
  // with an endpoint: both arrive; a key added twice arrives twice
  {
    SendOptions e = o;
    e.endpoint = "/foo";
    e.metadata.add("x-request-id", "again");
    auto f = pool.send("d", req, e);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1);
    if (r && r->targets.size() == 1) {
      CHECK(r->targets[0].metadata_value("endpoint") == std::string("/foo"));
      expect_all(r->targets[0].metadata, "with endpoint");
      size_t ids = 0;
      for (const auto &m : r->targets[0].metadata) ids += m.key == "seen-x-request-id" && (m.value == "again" || m.value == "req-42");
      CHECK_MSG(ids == 2, std::to_string(ids));
    }
  }
  // ALL over two shards: every shard gets it
  {
    pool.add_connection("all", A, false, 0u);
    pool.add_connection("all", B, false, 1u);
    SendOptions all = o;
    all.polling = jina_net::Polling::All;
    auto f = pool.send("all", req, all);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 2);
    if (r && r->targets.size() == 2) {
      expect_all(r->targets[0].metadata, "ALL, shard 0");
      expect_all(r->targets[1].metadata, "ALL, shard 1");
    }
  }
  // on every attempt: a retry (the flaky replica fails twice, the third attempt answers) and a hedge
  // (the slow replica is picked first, the hedge to the echo replica answers)
  {
    jina_net::Pool retrying;
    retrying.add_connection("flaky", F);
    auto f = retrying.send("flaky", req, o);
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1, r ? r->error_message : "");
    if (r && r->targets.size() == 1) {
      CHECK(replica_of(r->targets[0]) == "f");
      expect_all(r->targets[0].metadata, "after two retries");
    }
    jina_net::PoolOptions ho;
    ho.hedge_delay = 20ms;
    ho.max_hedges = 1;
    jina_net::Pool hedging(ho);
    hedging.add_connection("d", S);
    hedging.add_connection("d", A);
    SendOptions idem = o;
    idem.idempotent = true;
    idem.timeout = 2500ms;
    auto fh = hedging.send("d", req, idem);
    auto rh = wait_result(fh);
    CHECK(rh && rh->ok() && rh->targets.size() == 1 && replica_of(rh->targets[0]) == "a");
    if (rh && rh->targets.size() == 1) expect_all(rh->targets[0].metadata, "hedge");
  }

  // refused metadata: Error(JINA_NET_INVALID_ARGUMENT) from the send call, before anything is sent, in
  // every form; no callback, and owned buffers destroyed exactly once
  {
    struct Bad {
      const char *what;
      std::string key;
      std::string value;
      bool with_endpoint;
      const char *named;  // in the message
    };
    const Bad bads[] = {
        {"grpc- prefix", "grpc-timeout", "1S", false, "grpc-timeout"},
        {"te", "te", "trailers", false, "te"},
        {"content-type", "content-type", "application/grpc", false, "content-type"},
        {"user-agent", "user-agent", "me", false, "user-agent"},
        {"connection header", "connection", "close", false, "connection"},
        {"host", "host", "example", false, "host"},
        {"upper case key", "Authorization", "x", false, "Authorization"},
        {"space in key", "x id", "x", false, "x id"},
        {"empty key", "", "x", false, ""},
        {"newline in a text value", "x-id", "a\nb", false, "x-id"},
        {"NUL in a text value", "x-id", std::string("a\0b", 3), false, "x-id"},
        {"non-ASCII text value", "x-id", "caf\xc3\xa9", false, "x-id"},
        {"endpoint with SendOptions::endpoint", "endpoint", "/x", true, "endpoint"},
    };
    for (const Bad &bad : bads) {
      SendOptions b;
      b.metadata.add("authorization", "fine").add(bad.key, jina_net::Bytes(bad.value));
      if (bad.with_endpoint) b.endpoint = "/index";
      for (int form = 0; form < 5; ++form) {
        const int destroyed = g_owned_destroyed.load();
        Collector never;
        auto e = catch_error([&] {
          switch (form) {
            case 0: (void)pool.send("d", req, b); break;
            case 1: pool.send("d", req, b, never.callback()); break;
            case 2: (void)pool.send_cancellable("d", {req}, b); break;
            case 3: (void)pool.send_owned("d", counted(req), b); break;
            default: pool.send_owned("d", counted(req), b, never.callback()); break;
          }
        });
        const std::string what = std::string(bad.what) + " (form " + std::to_string(form) + "): " + code_of(e);
        CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, what);
        CHECK_MSG(e && contains(e->message(), bad.named), what);
        if (form >= 3) CHECK_MSG(g_owned_destroyed.load() - destroyed == 1, what + "; " + owned_counts());
        CHECK(never.count() == 0);
      }
    }
    std::this_thread::sleep_for(50ms);
    CHECK_MSG(all_owned_destroyed(), owned_counts());
    // `endpoint` as metadata is only refused together with SendOptions::endpoint; alone it is the endpoint
    SendOptions ep;
    ep.metadata.add("endpoint", "/via-metadata");
    auto f = pool.send("d", req, ep);
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1 &&
                  r->targets[0].metadata_value("endpoint") == std::string("/via-metadata"),
              r ? r->error_message : "");
  }
  // the wrapper's own checks
  {
    SendOptions nul_key;
    nul_key.metadata.add(std::string("x\0id", 4), "v");
    auto e = catch_error([&] { (void)pool.send("d", req, nul_key); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "NUL"), code_of(e));
    const int destroyed = g_owned_destroyed.load();
    e = catch_error([&] { (void)pool.send_owned("d", counted(req), nul_key); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    CHECK_MSG(g_owned_destroyed.load() - destroyed == 1, owned_counts());
    // a C string for a -bin key: refused when added (its bytes may hold NULs: give the length)
    jina_net::RequestMetadata md;
    e = catch_error([&] { md.add("trace-bin", "\x01\x02"); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "trace-bin"), code_of(e));
    const char *null_value = nullptr;
    e = catch_error([&] { md.add("x-id", null_value); });
    CHECK_MSG(e && e->code() == JINA_NET_NULL_ARGUMENT, code_of(e));
    CHECK(md.empty());
    md.add("trace-bin", "\x01\x00\x02"sv);  // with its length: all three bytes
    CHECK(md.size() == 1 && md.entries()[0].value == std::string("\x01\x00\x02", 3));
    md.clear();
    CHECK(md.empty());
  }
  // the pool still works after the refused sends
  auto f = pool.send("d", req, o);
  expect_result(f, "after refusals");
}

// ---------------------------------------------------------------------------------------------
// Exceptions thrown by callbacks: each goes to its own send's on_exception

static void test_callback_exceptions() {
  std::printf("-- callback exceptions go to their own send\n");
  const std::string A = addr("a");
  jina_net::Pool pool;
  pool.add_connection("cb", A);

  // Two concurrent sends whose callbacks throw different exceptions (a std::runtime_error and a type
  // that is no std::exception), at the same time on the two runtime threads: the first callback waits
  // (bounded) in a meeting until the second one runs too; the second send starts once the first
  // callback is running (the first send is not over until its callback returns), to another replica.
  {
    struct Meeting {
      std::mutex m;
      std::condition_variable cv;
      int arrived = 0;
      std::atomic<int> met{0};
      std::vector<std::thread::id> callback_threads;
      bool meet() {
        std::unique_lock<std::mutex> lock(m);
        ++arrived;
        callback_threads.push_back(std::this_thread::get_id());
        cv.notify_all();
        const bool both = cv.wait_for(lock, 5s, [&] { return arrived >= 2; });
        if (both) ++met;
        return both;
      }
      bool wait_first() {
        std::unique_lock<std::mutex> lock(m);
        return cv.wait_for(lock, 20s, [&] { return arrived >= 1; });
      }
    };
    pool.add_connection("cb2", addr("b"));
    auto meeting = std::make_shared<Meeting>();
    auto first = std::make_shared<ExceptionSlot>();
    auto second = std::make_shared<ExceptionSlot>();
    pool.send(
        "cb", pb::data_request("throw-1"), SendOptions{},
        [meeting](const SendResult &r) {
          (void)meeting->meet();
          throw std::runtime_error("first send: " + pb::request_id(r.targets.at(0).body()).value_or("?"));
        },
        first->handler());
    CHECK(meeting->wait_first());
    pool.send(
        "cb2", pb::data_request("throw-2"), SendOptions{},
        [meeting](const SendResult &) {
          (void)meeting->meet();
          throw Thrown{2};
        },
        second->handler());
    CHECK(first->wait(1) && second->wait(1));
    std::this_thread::sleep_for(50ms);
    CHECK(first->count() == 1 && second->count() == 1);  // once each, never the other's
    CHECK_MSG(what_of(first->first()) == "first send: throw-1", what_of(first->first()));
    CHECK_MSG(what_of(second->first()) == "Thrown 2", what_of(second->first()));
    CHECK_MSG(meeting->met.load() == 2, "the two callbacks did not run at the same time");
    std::lock_guard<std::mutex> lock(meeting->m);
    CHECK(meeting->callback_threads.size() == 2);
    if (meeting->callback_threads.size() == 2) {
      CHECK(meeting->callback_threads[0] != meeting->callback_threads[1]);
      // each handler ran on its callback's thread
      std::lock_guard<std::mutex> l1(first->m);
      std::lock_guard<std::mutex> l2(second->m);
      const std::set<std::thread::id> callbacks(meeting->callback_threads.begin(), meeting->callback_threads.end());
      std::set<std::thread::id> handlers;
      handlers.insert(first->threads.begin(), first->threads.end());
      handlers.insert(second->threads.begin(), second->threads.end());
      CHECK(first->threads.size() == 1 && second->threads.size() == 1 && handlers == callbacks);
    }
  }

  // Many sends in flight at once, each callback throwing its own index: every handler gets exactly its
  // own, across the callback forms of the pool (plain, cancellable, owned) and the one-shot helper.
  {
    const int n = 32;
    std::vector<std::shared_ptr<ExceptionSlot>> slots;
    for (int i = 0; i < n; ++i) slots.push_back(std::make_shared<ExceptionSlot>());
    for (int i = 0; i < n; ++i) {
      auto thrower = [i](const SendResult &r) {
        if (!r.ok()) throw std::runtime_error("send " + std::to_string(i) + " failed: " + r.error_message);
        throw Thrown{i};
      };
      const std::string req = pb::data_request("many-" + std::to_string(i));
      switch (i % 4) {
        case 0: pool.send("cb", req, SendOptions{}, thrower, slots[i]->handler()); break;
        case 1: (void)pool.send_cancellable("cb", {req}, SendOptions{}, thrower, slots[i]->handler()); break;
        case 2: pool.send_owned("cb", counted(req), SendOptions{}, thrower, slots[i]->handler()); break;
        default:
          jina_net::send_request_async(req, A, jina_net::OneShotOptions{}, thrower, slots[i]->handler());
          break;
      }
    }
    for (int i = 0; i < n; ++i) {
      CHECK_MSG(slots[i]->wait(1), std::to_string(i));
      CHECK_MSG(what_of(slots[i]->first()) == "Thrown " + std::to_string(i), std::to_string(i) + ": " +
                                                                                  what_of(slots[i]->first()));
    }
    std::this_thread::sleep_for(50ms);
    for (int i = 0; i < n; ++i) CHECK_MSG(slots[i]->count() == 1, std::to_string(i));
    CHECK_MSG(all_owned_destroyed(), owned_counts());
  }

  // activate_worker's callback form (an ACTIVATE to the echo worker, which answers it)
  {
    auto slot = std::make_shared<ExceptionSlot>();
    jina_net::activate_worker(
        "127.0.0.1", 1, A, std::nullopt, [](const SendResult &) { throw std::logic_error("from activate"); },
        slot->handler());
    CHECK(slot->wait(1) && what_of(slot->first()) == "from activate");
  }

  // A callback that does not throw never reaches its handler; one that throws without a handler is
  // discarded; a handler that throws is discarded too. The library and later sends carry on.
  {
    auto quiet = std::make_shared<ExceptionSlot>();
    Collector c;
    pool.send("cb", pb::data_request("no-throw"), SendOptions{}, c.callback(), quiet->handler());
    CHECK(c.wait(1).size() == 1);
    auto ran = std::make_shared<std::atomic<int>>(0);
    pool.send("cb", pb::data_request("unhandled"), SendOptions{}, [ran](const SendResult &) {
      ++*ran;
      throw std::runtime_error("nobody listens");
    });
    pool.send(
        "cb", pb::data_request("handler-throws"), SendOptions{},
        [ran](const SendResult &) {
          ++*ran;
          throw std::runtime_error("first");
        },
        [ran](std::exception_ptr) {
          ++*ran;
          throw std::runtime_error("from the handler");
        });
    for (int i = 0; i < 400 && ran->load() < 3; ++i) std::this_thread::sleep_for(5ms);
    CHECK(ran->load() == 3);
    std::this_thread::sleep_for(50ms);
    CHECK(quiet->count() == 0);
    auto f = pool.send("cb", pb::data_request("still-fine"));
    auto r = wait_result(f);
    CHECK(r && r->ok());
  }

  // A send that throws never completes: no callback, no handler.
  {
    auto never = std::make_shared<ExceptionSlot>();
    std::atomic<int> ran{0};
    auto e = catch_error([&] {
      pool.send(
          "nope", pb::data_request("x"), SendOptions{},
          [&ran](const SendResult &) {
            ++ran;
            throw Thrown{0};
          },
          never->handler());
    });
    CHECK_MSG(e && e->code() == JINA_NET_UNKNOWN_DEPLOYMENT, code_of(e));
    std::this_thread::sleep_for(50ms);
    CHECK(ran.load() == 0 && never->count() == 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Resilient pool options

// The wrapper maps every field of jina_net_pool_options: its last field is the one the wrapper knows
// last (a field appended to the C struct must be added to PoolOptions, to detail::c_pool_options,
// to detail::pool_options_from_c and to same_c_options).
static_assert((offsetof(jina_net_pool_options, callbacks_in_poll) + sizeof(bool) + alignof(jina_net_pool_options) -
               1) / alignof(jina_net_pool_options) * alignof(jina_net_pool_options) ==
                  sizeof(jina_net_pool_options),
              "jina_net_pool_options has a field that jina_net::PoolOptions does not map");
// The same for the other option structs the wrapper fills: OneShotOptions (detail::c_oneshot),
// AddOptions (Pool::add_connection) and SendOptions (detail::c_send_options).
static_assert((offsetof(jina_net_oneshot_options, compression) + sizeof(uint32_t) + alignof(jina_net_oneshot_options) -
               1) / alignof(jina_net_oneshot_options) * alignof(jina_net_oneshot_options) ==
                  sizeof(jina_net_oneshot_options),
              "jina_net_oneshot_options has a field that jina_net::OneShotOptions does not map");
static_assert(offsetof(jina_net_add_options, tls_server_name) + sizeof(const char *) == sizeof(jina_net_add_options),
              "jina_net_add_options has a field that jina_net::AddOptions does not map");
static_assert(offsetof(jina_net_send_options, metadata_len) + sizeof(size_t) == sizeof(jina_net_send_options),
              "jina_net_send_options has a field that jina_net::SendOptions does not map");

// Two C pool options, field by field (padding not compared).
static bool same_c_options(const jina_net_pool_options &a, const jina_net_pool_options &b) {
  return a.struct_size == b.struct_size && a.max_attempts == b.max_attempts &&
         a.default_timeout_ms == b.default_timeout_ms && a.tls == b.tls &&
         a.root_certificates_pem == b.root_certificates_pem &&
         a.root_certificates_pem_len == b.root_certificates_pem_len && a.fail_over == b.fail_over &&
         a.initial_backoff_ms == b.initial_backoff_ms && a.backoff_multiplier == b.backoff_multiplier &&
         a.max_backoff_ms == b.max_backoff_ms && a.eject_after_failures == b.eject_after_failures &&
         a.base_ejection_ms == b.base_ejection_ms && a.max_ejection_ms == b.max_ejection_ms &&
         a.max_ejection_percent == b.max_ejection_percent && a.balance == b.balance &&
         a.p2c_default_rtt_ms == b.p2c_default_rtt_ms && a.p2c_decay_ms == b.p2c_decay_ms &&
         a.max_in_flight_per_replica == b.max_in_flight_per_replica && a.max_queued_sends == b.max_queued_sends &&
         a.hedge_delay_ms == b.hedge_delay_ms && a.max_hedges == b.max_hedges && a.metrics == b.metrics &&
         a.caller_driven == b.caller_driven && a.connect_timeout_ms == b.connect_timeout_ms &&
         a.tcp_user_timeout_ms == b.tcp_user_timeout_ms && a.keepalive_interval_ms == b.keepalive_interval_ms &&
         a.keepalive_timeout_ms == b.keepalive_timeout_ms && a.probe_after_ms == b.probe_after_ms &&
         a.probe_timeout_ms == b.probe_timeout_ms && a.fail_over_unanswered == b.fail_over_unanswered &&
         a.eject_on_deadline == b.eject_on_deadline && a.per_attempt_timeout_ms == b.per_attempt_timeout_ms &&
         a.retry_budget_max_tokens == b.retry_budget_max_tokens &&
         a.retry_budget_token_ratio == b.retry_budget_token_ratio && a.tls_cert_chain_pem == b.tls_cert_chain_pem &&
         a.tls_cert_chain_pem_len == b.tls_cert_chain_pem_len && a.tls_private_key_pem == b.tls_private_key_pem &&
         a.tls_private_key_pem_len == b.tls_private_key_pem_len && a.tls_server_name == b.tls_server_name &&
         a.compression == b.compression && a.dns_refresh_ms == b.dns_refresh_ms &&
         a.callbacks_in_poll == b.callbacks_in_poll;
}

static void test_resilient() {
  std::printf("-- resilient pool options\n");
  const std::string A = addr("a"), B = addr("b"), U = addr("u");
  using jina_net::PoolOptions;

  // PoolOptions{} is the library's default, PoolOptions::resilient() its preset, field by field
  {
    jina_net_pool_options dc{}, rc{};
    CHECK(jina_net_pool_options_init(&dc, sizeof dc) == JINA_NET_OK);
    CHECK(jina_net_pool_options_init_resilient(&rc, sizeof rc) == JINA_NET_OK);
    const PoolOptions d;
    const PoolOptions r = PoolOptions::resilient();
    auto same = [](const PoolOptions &o, const jina_net_pool_options &c, const char *what) {
      CHECK_MSG(o.max_attempts.value_or(3) == c.max_attempts, what);
      CHECK_MSG(static_cast<uint64_t>(o.default_timeout.count()) == c.default_timeout_ms, what);
      CHECK_MSG(o.tls == c.tls && o.root_certificates_pem.empty() && c.root_certificates_pem == nullptr, what);
      CHECK_MSG(o.fail_over == c.fail_over, what);
      CHECK_MSG(static_cast<uint64_t>(o.initial_backoff.count()) == c.initial_backoff_ms, what);
      CHECK_MSG(o.backoff_multiplier == c.backoff_multiplier, what);
      CHECK_MSG(static_cast<uint64_t>(o.max_backoff.count()) == c.max_backoff_ms, what);
      CHECK_MSG(o.eject_after_failures == c.eject_after_failures, what);
      CHECK_MSG(static_cast<uint64_t>(o.base_ejection.count()) == c.base_ejection_ms, what);
      CHECK_MSG(static_cast<uint64_t>(o.max_ejection.count()) == c.max_ejection_ms, what);
      CHECK_MSG(o.max_ejection_percent == c.max_ejection_percent, what);
      CHECK_MSG(static_cast<uint32_t>(o.balance) == c.balance, what);
      CHECK_MSG(static_cast<uint64_t>(o.p2c_default_rtt.count()) == c.p2c_default_rtt_ms, what);
      CHECK_MSG(static_cast<uint64_t>(o.p2c_decay.count()) == c.p2c_decay_ms, what);
      CHECK_MSG(o.max_in_flight_per_replica == c.max_in_flight_per_replica, what);
      CHECK_MSG(o.max_queued_sends == c.max_queued_sends, what);
      CHECK_MSG(static_cast<uint64_t>(o.hedge_delay.count()) == c.hedge_delay_ms, what);
      CHECK_MSG(o.max_hedges == c.max_hedges, what);
      CHECK_MSG(o.metrics == c.metrics && o.caller_driven == c.caller_driven, what);
      CHECK_MSG(o.callbacks_in_poll == c.callbacks_in_poll, what);
      // the gray-failure settings of C ABI 0.2.1
      CHECK_MSG(static_cast<uint64_t>(o.connect_timeout.count()) == c.connect_timeout_ms, what);
      CHECK_MSG(static_cast<uint64_t>(o.tcp_user_timeout.count()) == c.tcp_user_timeout_ms, what);
      CHECK_MSG(o.keepalive.has_value() == (c.keepalive_interval_ms != 0), what);
      if (o.keepalive) {
        CHECK_MSG(static_cast<uint64_t>(o.keepalive->interval.count()) == c.keepalive_interval_ms, what);
        CHECK_MSG(static_cast<uint64_t>(o.keepalive->timeout.count()) == c.keepalive_timeout_ms, what);
      }
      CHECK_MSG(static_cast<uint64_t>(o.probe_after.count()) == c.probe_after_ms, what);
      CHECK_MSG(static_cast<uint64_t>(o.probe_timeout.count()) == c.probe_timeout_ms, what);
      CHECK_MSG(o.fail_over_unanswered == c.fail_over_unanswered, what);
      CHECK_MSG(o.eject_on_deadline == c.eject_on_deadline, what);
      CHECK_MSG(static_cast<uint64_t>(o.per_attempt_timeout.count()) == c.per_attempt_timeout_ms, what);
      CHECK_MSG(o.retry_budget.has_value() == (c.retry_budget_max_tokens != 0), what);
      if (o.retry_budget) {
        CHECK_MSG(o.retry_budget->max_tokens == c.retry_budget_max_tokens, what);
        CHECK_MSG(o.retry_budget->token_ratio == c.retry_budget_token_ratio, what);
      }
      // the transport settings of C ABI 0.2.2
      CHECK_MSG(!o.tls_identity && c.tls_cert_chain_pem == nullptr && c.tls_private_key_pem == nullptr, what);
      CHECK_MSG(!o.tls_server_name && c.tls_server_name == nullptr, what);
      CHECK_MSG(o.compression == jina_net::Compression::None && c.compression == JINA_NET_COMPRESSION_NONE, what);
      CHECK_MSG(static_cast<uint64_t>(o.dns_refresh.value_or(30000ms).count()) == c.dns_refresh_ms, what);
      // and back: the C struct the Pool makes of `o` is the C preset, field by field
      jina_net_pool_options back{};
      jina_net::detail::c_pool_options(back, o);
      CHECK_MSG(same_c_options(back, c), what);
    };
    same(d, dc, "PoolOptions{} vs jina_net_pool_options_init");
    same(r, rc, "PoolOptions::resilient() vs jina_net_pool_options_init_resilient");
    // a RetryBudget{} and a Keepalive{} are the library's own defaults (0.1 per success; 5 min / 20 s)
    CHECK(jina_net::RetryBudget{}.token_ratio == dc.retry_budget_token_ratio);
    CHECK(static_cast<uint64_t>(jina_net::Keepalive{}.interval.count()) == dc.keepalive_interval_ms &&
          static_cast<uint64_t>(jina_net::Keepalive{}.timeout.count()) == dc.keepalive_timeout_ms);
    // the documented values
    CHECK(d.connect_timeout == 5000ms && d.tcp_user_timeout == 20000ms && d.keepalive &&
          d.keepalive->interval == 300000ms && d.keepalive->timeout == 20000ms);
    CHECK(d.probe_after == 2000ms && d.probe_timeout == 5000ms && !d.fail_over_unanswered && !d.eject_on_deadline &&
          d.per_attempt_timeout == 0ms && !d.retry_budget);
    CHECK(r.probe_after == 500ms && r.probe_timeout == 1000ms && !r.fail_over_unanswered && r.eject_on_deadline &&
          r.per_attempt_timeout == 0ms && r.retry_budget && r.retry_budget->max_tokens == 10 &&
          r.retry_budget->token_ratio == 0.1);
    CHECK(r.connect_timeout == d.connect_timeout && r.tcp_user_timeout == d.tcp_user_timeout &&
          r.keepalive && r.keepalive->interval == d.keepalive->interval);
    CHECK(!d.max_attempts && r.max_attempts == std::optional<uint32_t>(3u));
    CHECK(!d.fail_over && d.initial_backoff == 0ms && d.eject_after_failures == 0);  // jina 3.1's behaviour
    CHECK(r.fail_over && r.initial_backoff == 10ms && r.backoff_multiplier == 2.0 && r.max_backoff == 1000ms);
    CHECK(r.eject_after_failures == 1 && r.base_ejection == 100ms && r.max_ejection == 800ms &&
          r.max_ejection_percent == 50);
  }

  // A dead replica among live ones: the default pool loses the sends that round robin gives it (3
  // attempts on the same dead replica); the resilient preset loses none.
  auto run = [&](const PoolOptions &o, int n, bool concurrent) {
    jina_net::Pool pool(o);
    pool.add_connection("d", A);
    pool.add_connection("d", U);
    pool.add_connection("d", B);
    std::vector<std::future<SendResult>> futures;
    int ok = 0;
    std::set<std::string> answered;
    for (int i = 0; i < n; ++i) {
      futures.push_back(pool.send("d", pb::data_request("dead-" + std::to_string(i))));
      if (concurrent) continue;
      auto r = wait_result(futures.back());
      if (r && r->ok() && r->targets.size() == 1) {
        ++ok;
        answered.insert(replica_of(r->targets[0]));
      }
    }
    if (concurrent) {
      for (auto &f : futures) {
        auto r = wait_result(f);
        if (r && r->ok() && r->targets.size() == 1) {
          ++ok;
          answered.insert(replica_of(r->targets[0]));
        }
      }
    }
    return std::make_pair(ok, answered);
  };
  {
    const auto plain = run(PoolOptions{}, 12, false);
    CHECK_MSG(plain.first == 8, std::to_string(plain.first));  // every third send went to the dead one
    const auto resilient = run(PoolOptions::resilient(), 12, false);
    CHECK_MSG(resilient.first == 12, std::to_string(resilient.first));
    CHECK((resilient.second == std::set<std::string>{"a", "b"}));
    const auto burst = run(PoolOptions::resilient(), 48, true);
    CHECK_MSG(burst.first == 48, std::to_string(burst.first));
    // fail-over alone (no backoff, no ejection) is enough not to lose a send
    PoolOptions fail_over;
    fail_over.fail_over = true;
    const auto fo = run(fail_over, 12, false);
    CHECK_MSG(fo.first == 12, std::to_string(fo.first));
  }

  // Ejection: how often the dead replica u is still called. Deployment [u, a], fail-over; `rounds`
  // rounds of two sends (round robin gives u one of them, unless it is ejected), `gap` apart. u's
  // calls are read from the metrics.
  const std::string u_calls = "jina_net_requests_total{deployment=\"d\",shard=\"0\",address=\"" + U + "\"}";
  auto calls_to_u = [&](PoolOptions o, int rounds, std::chrono::milliseconds gap) -> long {
    o.metrics = true;
    o.fail_over = true;
    jina_net::Pool pool(o);
    pool.add_connection("d", U);
    pool.add_connection("d", A);
    for (int round = 0; round < rounds; ++round) {
      if (round > 0) std::this_thread::sleep_for(gap);
      for (int i = 0; i < 2; ++i) {
        auto f = pool.send("d", pb::data_request("eject"));
        auto r = wait_result(f);
        CHECK_MSG(r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == "a",
                  r ? r->error_message : "");
      }
    }
    return metric(pool.metrics_text(), u_calls);
  };
  {
    const int rounds = 6;
    PoolOptions none;  // no ejection: u is called every round
    CHECK_MSG(calls_to_u(none, rounds, 0ms) == rounds, std::to_string(calls_to_u(none, rounds, 0ms)));
    PoolOptions once;  // ejected after its first failure, for 10 s: called once
    once.eject_after_failures = 1;
    once.base_ejection = 10000ms;
    once.max_ejection = 10000ms;
    const long one = calls_to_u(once, rounds, 0ms);
    CHECK_MSG(one == 1, std::to_string(one));
    PoolOptions twice = once;  // ejected after two consecutive failures
    twice.eject_after_failures = 2;
    const long two = calls_to_u(twice, rounds, 0ms);
    CHECK_MSG(two == 2, std::to_string(two));
    PoolOptions no_share = once;  // 0 % of a list may be ejected: never ejected
    no_share.max_ejection_percent = 0;
    const long all = calls_to_u(no_share, rounds, 0ms);
    CHECK_MSG(all == rounds, std::to_string(all));
    PoolOptions short_ejection = once;  // 40 ms, capped at 40 ms: back every round, 100 ms apart
    short_ejection.base_ejection = 40ms;
    short_ejection.max_ejection = 40ms;
    const long back = calls_to_u(short_ejection, rounds, 100ms);
    CHECK_MSG(back == rounds, std::to_string(back));
    PoolOptions growing = short_ejection;  // 40 ms doubling (80, 160, 320 ms): some rounds skip u
    growing.max_ejection = 10000ms;
    const long fewer = calls_to_u(growing, rounds, 100ms);
    CHECK_MSG(fewer >= 2 && fewer < rounds, std::to_string(fewer));
    // the resilient preset ejects too
    const long preset = calls_to_u(PoolOptions::resilient(), rounds, 0ms);
    CHECK_MSG(preset >= 1 && preset < rounds, std::to_string(preset));
  }

  // Backoff: retries in place on the dead replica wait uniformly in [0, cap]; the caps here are
  // 5 ms, then 5 x 100 = 500 ms capped at 300 ms: 5, 300, 300, 300, 300 ms for 6 attempts.
  // Four waits in [0, 300 ms] add up to less than 60 ms with a probability below 1e-4; without the
  // multiplier or the cap every cap would be 5 ms (25 ms in all), without max_backoff 500 ms, 50 s, ...
  {
    PoolOptions o;
    o.max_attempts = 6;
    o.initial_backoff = 5ms;
    o.backoff_multiplier = 100.0;
    o.max_backoff = 300ms;
    jina_net::Pool pool(o);
    pool.add_connection("down", U);
    const auto t0 = std::chrono::steady_clock::now();
    auto f = pool.send("down", pb::data_request("backoff"));
    auto r = wait_result(f);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(r && r->status == JINA_NET_RPC_ERROR && r->targets.size() == 1 && r->targets[0].grpc_code == 14);
    CHECK_MSG(r && contains(r->error_message, "after 6 attempts"), r ? r->error_message : "");
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    CHECK_MSG(took >= 60ms && took < 2500ms, std::to_string(ms) + " ms");
  }

  // Values the library refuses, and negative durations the wrapper refuses
  {
    PoolOptions o = PoolOptions::resilient();
    o.backoff_multiplier = 0.5;
    auto e = catch_error([&] { jina_net::Pool p(o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "backoff_multiplier"), code_of(e));
    o.backoff_multiplier = std::numeric_limits<double>::quiet_NaN();
    e = catch_error([&] { jina_net::Pool p(o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "backoff_multiplier"), code_of(e));
    o = PoolOptions::resilient();
    o.max_ejection_percent = 101;
    e = catch_error([&] { jina_net::Pool p(o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "max_ejection_percent"),
              code_of(e));
    for (const char *field : {"initial_backoff", "max_backoff", "base_ejection", "max_ejection"}) {
      PoolOptions n = PoolOptions::resilient();
      const std::string f = field;
      if (f == "initial_backoff") n.initial_backoff = -1ms;
      if (f == "max_backoff") n.max_backoff = -1ms;
      if (f == "base_ejection") n.base_ejection = -1ms;
      if (f == "max_ejection") n.max_ejection = -1ms;
      e = catch_error([&] { jina_net::Pool p(n); });
      CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), field), code_of(e));
    }
    // the preset with the existing options changed still makes a pool
    PoolOptions mixed = PoolOptions::resilient();
    mixed.balance = jina_net::Balance::P2cPeakEwma;
    mixed.metrics = true;
    mixed.max_attempts = 5;
    CHECK(!catch_error([&] { jina_net::Pool p(mixed); }));
  }
}

// ---------------------------------------------------------------------------------------------
// Gray failures (C ABI 0.2.1): replicas that stop answering, slow attempts, brown-outs, hung
// connections. Each option is shown to have its effect against real test servers, next to a pool
// without it.

static long ms_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

// The sum of jina_net_requests_total (calls made, retries included) to `address` in deployment `d`.
static long calls_to(const jina_net::Pool &pool, const std::string &address, const char *deployment = "d") {
  const long n = metric(pool.metrics_text(), std::string("jina_net_requests_total{deployment=\"") + deployment +
                                                 "\",shard=\"0\",address=\"" + address + "\"}");
  return n < 0 ? 0 : n;
}

// The attempts a failed send reports ("... (after N attempts)"; 1 when it says nothing).
static int attempts_of(const std::string &message) {
  const std::string key = "(after ";
  const size_t at = message.find(key);
  return at == std::string::npos ? 1 : std::atoi(message.c_str() + at + key.size());
}

// TCP_USER_TIMEOUT of this process's sockets connected to 127.0.0.1:port (the library's connections:
// the servers run in another process).
static std::vector<unsigned> tcp_user_timeouts_to(int port) {
  std::vector<unsigned> out;
  DIR *dir = opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  while (const dirent *entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const int fd = std::atoi(entry->d_name);
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &len) != 0 || peer.sin_family != AF_INET ||
        ntohs(peer.sin_port) != port || peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
      continue;
    unsigned timeout = 0;
    socklen_t size = sizeof timeout;
    if (getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, &size) == 0) out.push_back(timeout);
  }
  closedir(dir);
  return out;
}

// A listening socket that never accepts. The kernel completes the TCP handshakes and acknowledges
// the bytes sent (up to its buffers), nothing ever answers: a process that hangs, as one frozen with
// SIGSTOP, without a signal anyone else could undo. With `full`, its accept queue is full (listen
// backlog 0, one connection made here): the kernel drops further SYNs, so a connect to it hangs, as
// to a host that went away.
struct HungListener {
  int listener = -1, filler = -1;
  std::string address;
  explicit HungListener(bool full) {
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
        listen(listener, full ? 0 : 64) != 0 || getsockname(listener, reinterpret_cast<sockaddr *>(&a), &len) != 0)
      return;
    if (full) {
      filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (filler < 0 || connect(filler, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) return;
    }
    address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~HungListener() {
    if (filler >= 0) close(filler);
    if (listener >= 0) close(listener);
  }
  HungListener(const HungListener &) = delete;
  HungListener &operator=(const HungListener &) = delete;
};

// One data request to deployment "d", in the future form.
static std::future<SendResult> send_d(jina_net::Pool &pool, const std::string &id, bool idempotent,
                                      std::chrono::milliseconds timeout = 0ms) {
  SendOptions so;
  so.idempotent = idempotent;
  so.timeout = timeout;
  return pool.send("d", pb::data_request(id), so);
}

static bool answered_by(const std::optional<SendResult> &r, const char *replica) {
  return r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == replica;
}

static std::string message_of(const std::optional<SendResult> &r) {
  return r ? std::string(jina_net::result_name(r->status)) + ": " + r->error_message : std::string("no result");
}

// The call that stopped answering: UNAVAILABLE, "stopped answering", naming the replica.
static bool stopped_answering(const std::optional<SendResult> &r, const std::string &address) {
  return r && r->status == JINA_NET_RPC_ERROR && r->targets.size() == 1 && r->targets[0].grpc_code == 14 &&
         contains(r->error_message, "stopped answering") && contains(r->error_message, address) &&
         contains(r->targets[0].grpc_message, "stopped answering");
}

// Run on a thread of its own while the other gray-failure tests run (each takes seconds of waiting):
// HTTP/2 keepalive against a peer that hangs, and the default pool's liveness probes.
static void gray_slow_checks() {
  using jina_net::PoolOptions;
  const std::string Z = addr("z");

  // The default pool (probes after 2 s, answered within 5 s) ends a call pending on a silent replica
  // with UNAVAILABLE "stopped answering" well before its deadline.
  jina_net::Pool probed;  // PoolOptions{}
  probed.add_connection("d", Z);
  const auto t_probe = std::chrono::steady_clock::now();
  auto silent = send_d(probed, "default-probes", false, 60s);

  // HTTP/2 keepalive: a hung peer acknowledges no PING, and with probes off only the keepalive (a
  // PING every 10 s, unacknowledged for 1 s) ends the call; without keepalive it waits for its
  // deadline. One attempt each: a retry would wait on the hung peer again.
  HungListener hung(false);
  CHECK_MSG(!hung.address.empty(), "a listening socket");
  PoolOptions ka;
  ka.probe_after = 0ms;
  ka.max_attempts = 1;
  ka.keepalive = jina_net::Keepalive{10000ms, 1000ms};
  PoolOptions none = ka;
  none.keepalive.reset();
  jina_net::Pool with_keepalive(ka), without_keepalive(none);
  with_keepalive.add_connection("d", hung.address);
  without_keepalive.add_connection("d", hung.address);
  const auto t_hung = std::chrono::steady_clock::now();
  auto pinged = send_d(with_keepalive, "keepalive", false, 30s);
  auto waiting = send_d(without_keepalive, "no-keepalive", false, 15s);

  auto r = wait_result(silent, 20s);
  const long probe_ms = ms_since(t_probe);
  CHECK_MSG(stopped_answering(r, Z), message_of(r));
  CHECK_MSG(probe_ms >= 1900 && probe_ms < 9500, std::to_string(probe_ms) + " ms");

  r = wait_result(pinged, 25s);
  const long keepalive_ms = ms_since(t_hung);
  CHECK_MSG(r && r->status == JINA_NET_RPC_ERROR && r->targets.size() == 1 && r->targets[0].grpc_code == 14 &&
                contains(r->error_message, hung.address) && contains(r->error_message, "keep-alive"),
            message_of(r));
  CHECK_MSG(keepalive_ms >= 9000 && keepalive_ms < 14000, std::to_string(keepalive_ms) + " ms");
  CHECK(waiting.wait_for(0ms) != std::future_status::ready);  // no keepalive: still waiting
  r = wait_result(waiting, 20s);
  CHECK_MSG(r && r->status == JINA_NET_DEADLINE_EXCEEDED, message_of(r));
  CHECK_MSG(ms_since(t_hung) >= 14500, std::to_string(ms_since(t_hung)) + " ms");
}

static void test_gray() {
  std::printf("-- gray failures: probes, attempt timeouts, retry budget, connection timeouts\n");
  using jina_net::PoolOptions;
  const std::string Z = addr("z"), A = addr("a"), S = addr("s"), U = addr("u"), U2 = addr("u2"), U3 = addr("u3");
  std::thread slow_checks([] {
    try {
      gray_slow_checks();
    } catch (const std::exception &e) {
      check(false, "no unexpected exception in gray_slow_checks", __FILE__, __LINE__, e.what());
    }
  });
  struct Join {  // also when a check below throws
    std::thread &t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{slow_checks};

  // Liveness probes: a call pending on a replica that never answers (hostile:silent: the HTTP/2
  // connection lives and acknowledges PINGs) ends with UNAVAILABLE "the replica stopped answering"
  // naming it, after probe_after + probe_timeout; without probes it waits for its deadline.
  PoolOptions probes;
  probes.probe_after = 200ms;
  probes.probe_timeout = 300ms;
  {
    jina_net::Pool pool(probes);
    pool.add_connection("d", Z);
    const auto t0 = std::chrono::steady_clock::now();
    auto f = send_d(pool, "probed", false, 10s);
    auto r = wait_result(f);
    const long took = ms_since(t0);
    CHECK_MSG(stopped_answering(r, Z), message_of(r));
    CHECK_MSG(r && attempts_of(r->error_message) == 1, message_of(r));  // not idempotent: not run again
    CHECK_MSG(took >= 400 && took < 3000, std::to_string(took) + " ms");
    auto e = catch_error([&] { if (r) r->check(); });
    CHECK_MSG(e && e->code() == JINA_NET_RPC_ERROR && contains(e->what(), "stopped answering"), code_of(e));

    PoolOptions off = probes;
    off.probe_after = 0ms;
    jina_net::Pool unprobed(off);
    unprobed.add_connection("d", Z);
    const auto t1 = std::chrono::steady_clock::now();
    auto g = send_d(unprobed, "unprobed", false, 1500ms);
    r = wait_result(g);
    const long waited = ms_since(t1);
    CHECK_MSG(r && r->status == JINA_NET_DEADLINE_EXCEEDED && !contains(r->error_message, "stopped answering"),
              message_of(r));
    CHECK_MSG(waited >= 1400, std::to_string(waited) + " ms");
  }

  // fail_over_unanswered, with replicas [silent, echo]: two sends at once, round robin gives the
  // first to the silent replica. Not idempotent and without the option, that one fails ("it may
  // have received the request"); with the option, or idempotent, it goes on to the echo replica.
  // Once detected, the silent replica is avoided: later sends do not wait on it.
  auto two_sends = [&](const PoolOptions &o, bool idempotent, const char *name) {
    jina_net::Pool pool(o);
    pool.add_connection("d", Z);
    pool.add_connection("d", A);
    const auto t0 = std::chrono::steady_clock::now();
    auto f1 = send_d(pool, std::string(name) + "-1", idempotent, 10s);
    auto f2 = send_d(pool, std::string(name) + "-2", idempotent, 10s);
    std::vector<std::optional<SendResult>> results;
    results.push_back(wait_result(f1));
    results.push_back(wait_result(f2));
    const long took = ms_since(t0);
    CHECK_MSG(took < 3000, std::string(name) + ": " + std::to_string(took) + " ms");
    int ok = 0, unanswered = 0;
    for (const auto &r : results) {
      if (answered_by(r, "a")) ++ok;
      else if (stopped_answering(r, Z)) ++unanswered;
      else CHECK_MSG(false, std::string(name) + ": " + message_of(r));
    }
    const auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) {
      auto f = send_d(pool, std::string(name) + "-after", false, 10s);
      auto r = wait_result(f);
      CHECK_MSG(answered_by(r, "a"), std::string(name) + ": " + message_of(r));
    }
    CHECK_MSG(ms_since(t1) < 1000, std::string(name) + ": " + std::to_string(ms_since(t1)) + " ms");
    return std::make_pair(ok, unanswered);
  };
  {
    const auto plain = two_sends(probes, false, "plain");
    CHECK_MSG(plain.first == 1 && plain.second == 1, std::to_string(plain.first) + "/" + std::to_string(plain.second));
    PoolOptions unanswered = probes;
    unanswered.fail_over_unanswered = true;
    const auto moved = two_sends(unanswered, false, "fail_over_unanswered");
    CHECK_MSG(moved.first == 2, std::to_string(moved.first) + "/" + std::to_string(moved.second));
    const auto idempotent = two_sends(probes, true, "idempotent");
    CHECK_MSG(idempotent.first == 2, std::to_string(idempotent.first) + "/" + std::to_string(idempotent.second));
    // the resilient preset probes too (500 ms, 1 s), and its sends are not idempotent by default
    const auto preset = two_sends(PoolOptions::resilient(), false, "resilient");
    CHECK_MSG(preset.first == 1 && preset.second == 1,
              std::to_string(preset.first) + "/" + std::to_string(preset.second));
  }

  // per_attempt_timeout, with replicas [slow:3000, echo]: the first send goes to the slow one. An
  // idempotent send gives up on it after 200 ms and goes on to the echo replica; a send that is not
  // idempotent ends with the attempt (DEADLINE_EXCEEDED, "attempt timeout"), unless
  // fail_over_unanswered; without the option the send waits on the slow replica until its deadline.
  PoolOptions attempt;
  attempt.per_attempt_timeout = 200ms;
  attempt.metrics = true;
  auto slow_first = [&](const PoolOptions &o, bool idempotent, std::chrono::milliseconds timeout) {
    jina_net::Pool pool(o);
    pool.add_connection("d", S);
    pool.add_connection("d", A);
    const auto t0 = std::chrono::steady_clock::now();
    auto f = send_d(pool, "attempt", idempotent, timeout);
    auto r = wait_result(f);
    const long took = ms_since(t0);
    CHECK_MSG(calls_to(pool, S) == 1, pool.metrics_text());  // it did go to the slow replica first
    return std::make_pair(std::move(r), took);
  };
  {
    auto [r, took] = slow_first(attempt, true, 10s);
    CHECK_MSG(answered_by(r, "a"), message_of(r));
    CHECK_MSG(took >= 150 && took < 1500, std::to_string(took) + " ms");
    std::tie(r, took) = slow_first(attempt, false, 10s);
    CHECK_MSG(r && r->status == JINA_NET_DEADLINE_EXCEEDED && r->targets.size() == 1 &&
                  r->targets[0].grpc_code == 4 && contains(r->error_message, "attempt timeout") &&
                  contains(r->error_message, S),
              message_of(r));
    CHECK_MSG(took >= 150 && took < 1500, std::to_string(took) + " ms");
    PoolOptions unanswered = attempt;
    unanswered.fail_over_unanswered = true;
    std::tie(r, took) = slow_first(unanswered, false, 10s);
    CHECK_MSG(answered_by(r, "a"), message_of(r));
    CHECK_MSG(took < 1500, std::to_string(took) + " ms");
    PoolOptions no_attempt_timeout = attempt;
    no_attempt_timeout.per_attempt_timeout = 0ms;
    std::tie(r, took) = slow_first(no_attempt_timeout, true, 1000ms);
    CHECK_MSG(r && r->status == JINA_NET_DEADLINE_EXCEEDED && !contains(r->error_message, "attempt timeout"),
              message_of(r));
    CHECK_MSG(took >= 900, std::to_string(took) + " ms");
  }

  // eject_on_deadline: four idempotent sends over [slow, echo], round robin, attempts of 200 ms,
  // ejection after one failure for 10 s. Counting deadlines, the slow replica is ejected at its first
  // timeout and called once; otherwise round robin calls it every other send.
  auto slow_calls = [&](bool eject_on_deadline) {
    PoolOptions o = attempt;
    o.eject_after_failures = 1;
    o.base_ejection = 10000ms;
    o.max_ejection = 10000ms;
    o.eject_on_deadline = eject_on_deadline;
    jina_net::Pool pool(o);
    pool.add_connection("d", S);
    pool.add_connection("d", A);
    for (int i = 0; i < 4; ++i) {
      auto f = send_d(pool, "eject", true, 10s);
      auto r = wait_result(f);
      CHECK_MSG(answered_by(r, "a"), message_of(r));
    }
    return calls_to(pool, S);
  };
  {
    const long ejected = slow_calls(true), kept = slow_calls(false);
    CHECK_MSG(ejected == 1, std::to_string(ejected));
    CHECK_MSG(kept == 2, std::to_string(kept));
  }

  // The retry budget against a brown-out: 40 sends to three UNAVAILABLE replicas with the resilient
  // fail-over. Without a budget every send tries every replica; with 10 tokens, 5 failed sends
  // bring it to half and the others make one attempt each; 1000 tokens last the 40 sends.
  auto storm = [&](std::optional<jina_net::RetryBudget> budget) {
    PoolOptions o = PoolOptions::resilient();
    o.retry_budget = budget;
    o.metrics = true;
    jina_net::Pool pool(o);
    for (const std::string &u : {U, U2, U3}) pool.add_connection("d", u);
    int reported = 0;
    for (int i = 0; i < 40; ++i) {
      auto f = send_d(pool, "storm", false, 10s);
      auto r = wait_result(f);
      CHECK_MSG(r && r->status == JINA_NET_RPC_ERROR && r->targets.size() == 1 && r->targets[0].grpc_code == 14,
                message_of(r));
      if (r) reported += attempts_of(r->error_message);
    }
    const long calls = calls_to(pool, U) + calls_to(pool, U2) + calls_to(pool, U3);
    CHECK_MSG(calls == reported, std::to_string(calls) + " calls, " + std::to_string(reported) + " reported");
    return calls;
  };
  {
    const long without = storm(std::nullopt);
    const long with = storm(jina_net::RetryBudget{});
    const long large = storm(jina_net::RetryBudget{1000, 0.1});
    CHECK_MSG(without >= 120, std::to_string(without));
    CHECK_MSG(with >= 40 && with <= 5 * 3 + 35, std::to_string(with));
    CHECK_MSG(large >= 120, std::to_string(large));
    // the preset has a budget of 10 tokens
    const long preset = storm(PoolOptions::resilient().retry_budget);
    CHECK_MSG(preset <= 5 * 3 + 35, std::to_string(preset));
  }
  // token_ratio: replicas [echo, unavailable], round robin, 3 attempts in place, 20 sends. Each failed
  // send takes a token, each success gives token_ratio back: with 2.0 the budget stays full and every
  // failed send makes its 3 attempts; with 0.1 it sinks to half and later failed sends make one.
  auto failed_attempts = [&](double ratio) {
    PoolOptions o;
    o.retry_budget = jina_net::RetryBudget{10, ratio};
    jina_net::Pool pool(o);
    pool.add_connection("d", A);
    pool.add_connection("d", U);
    std::vector<int> attempts;
    for (int i = 0; i < 20; ++i) {
      auto f = send_d(pool, "ratio", false, 10s);
      auto r = wait_result(f);
      if (r && !r->ok()) attempts.push_back(attempts_of(r->error_message));
      CHECK_MSG(r && (r->ok() || (r->targets.size() == 1 && r->targets[0].address == U)), message_of(r));
    }
    return attempts;
  };
  {
    const auto generous = failed_attempts(2.0), stingy = failed_attempts(0.1);
    CHECK_MSG(generous.size() == 10 && std::all_of(generous.begin(), generous.end(), [](int n) { return n == 3; }),
              std::to_string(generous.size()));
    CHECK_MSG(stingy.size() == 10 && std::count(stingy.begin(), stingy.end(), 1) >= 3 && stingy.front() == 3,
              std::to_string(stingy.size()) + " failed, " +
                  std::to_string(std::count(stingy.begin(), stingy.end(), 1)) + " after one attempt");
  }

  // connect_timeout: a connect that hangs (a full accept queue drops the SYN) fails after it as
  // UNAVAILABLE; with no limit the send waits for its deadline.
  {
    HungListener hung(true);
    CHECK_MSG(!hung.address.empty(), "a listening socket with a full accept queue");
    PoolOptions o;
    o.connect_timeout = 300ms;
    o.probe_after = 0ms;
    o.max_attempts = 1;
    jina_net::Pool pool(o);
    pool.add_connection("d", hung.address);
    const auto t0 = std::chrono::steady_clock::now();
    auto f = send_d(pool, "connect", false, 5s);
    auto r = wait_result(f);
    const long took = ms_since(t0);
    CHECK_MSG(r && r->status == JINA_NET_RPC_ERROR && r->targets.size() == 1 && r->targets[0].grpc_code == 14 &&
                  contains(r->error_message, hung.address) && contains(r->error_message, "connect"),
              message_of(r));
    CHECK_MSG(took >= 250 && took < 2000, std::to_string(took) + " ms");
    o.connect_timeout = 0ms;
    jina_net::Pool unlimited(o);
    unlimited.add_connection("d", hung.address);
    const auto t1 = std::chrono::steady_clock::now();
    auto g = send_d(unlimited, "connect-unlimited", false, 1500ms);
    r = wait_result(g);
    const long waited = ms_since(t1);
    CHECK_MSG(r && r->status == JINA_NET_DEADLINE_EXCEEDED, message_of(r));
    CHECK_MSG(waited >= 1400, std::to_string(waited) + " ms");
  }

  // tcp_user_timeout is set on the library's sockets (they are in this process): 12345 ms, the
  // default 20000 ms, and 0 = the system's (not set).
  {
    const int port = jn_servers_port(&g_servers, "t");
    auto socket_with = [&](std::optional<std::chrono::milliseconds> value, unsigned expect) {
      PoolOptions o;
      if (value) o.tcp_user_timeout = *value;
      jina_net::Pool pool(o);
      pool.add_connection("d", addr("t"));
      auto f = send_d(pool, "tcp", false, 5s);
      auto r = wait_result(f);
      CHECK_MSG(answered_by(r, "t"), message_of(r));
      const auto found = tcp_user_timeouts_to(port);
      std::string seen;
      for (unsigned v : found) seen += std::to_string(v) + " ";
      CHECK_MSG(std::find(found.begin(), found.end(), expect) != found.end(),
                "TCP_USER_TIMEOUT " + std::to_string(expect) + " among: " + seen);
    };
    socket_with(12345ms, 12345);
    socket_with(std::nullopt, 20000);
    socket_with(0ms, 0);
  }

  // Values refused: by the library (keepalive below 10 s, a budget ratio <= 0, more than 1000 tokens,
  // probes without a probe timeout), by the wrapper (negative durations; a keepalive interval of 0 or
  // a budget of 0 tokens, where the empty optional says "none")
  {
    auto refused = [&](const PoolOptions &o, const char *names, const char *what) {
      auto e = catch_error([&] { jina_net::Pool p(o); });
      CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), names),
                std::string(what) + ": " + code_of(e));
    };
    auto accepted = [&](const PoolOptions &o, const char *what) {
      auto e = catch_error([&] { jina_net::Pool p(o); });
      CHECK_MSG(!e, std::string(what) + ": " + code_of(e));
    };
    PoolOptions o;
    o.keepalive = jina_net::Keepalive{9999ms, 20000ms};
    refused(o, "keepalive_interval_ms", "keepalive 9999 ms");
    o.keepalive->interval = 1000ms;
    refused(o, "keepalive_interval_ms", "keepalive 1 s");
    o.keepalive->interval = 0ms;
    refused(o, "keepalive.interval", "keepalive 0");
    o.keepalive->interval = 10000ms;
    accepted(o, "keepalive 10 s");
    o.keepalive.reset();
    accepted(o, "no keepalive");
    for (const double ratio : {0.0, -0.1, std::numeric_limits<double>::quiet_NaN(),
                               std::numeric_limits<double>::infinity()}) {
      PoolOptions b = PoolOptions::resilient();
      b.retry_budget->token_ratio = ratio;
      refused(b, "retry_budget_token_ratio", ("token_ratio " + std::to_string(ratio)).c_str());
    }
    PoolOptions b;
    b.retry_budget = jina_net::RetryBudget{1001, 0.1};
    refused(b, "retry_budget_max_tokens", "1001 tokens");
    b.retry_budget->max_tokens = 0;
    refused(b, "retry_budget.max_tokens", "0 tokens");
    b.retry_budget->max_tokens = 1000;
    accepted(b, "1000 tokens");
    b.retry_budget.reset();
    accepted(b, "no budget");
    PoolOptions p;
    p.probe_timeout = 0ms;
    refused(p, "probe_timeout_ms", "probes without a timeout");
    p.probe_after = 0ms;
    accepted(p, "no probes, no probe timeout");
    for (const char *field : {"connect_timeout", "tcp_user_timeout", "keepalive.interval", "keepalive.timeout",
                              "probe_after", "probe_timeout", "per_attempt_timeout"}) {
      PoolOptions n = PoolOptions::resilient();
      const std::string f = field;
      if (f == "connect_timeout") n.connect_timeout = -1ms;
      if (f == "tcp_user_timeout") n.tcp_user_timeout = -1ms;
      if (f == "keepalive.interval") n.keepalive->interval = -1ms;
      if (f == "keepalive.timeout") n.keepalive->timeout = -1ms;
      if (f == "probe_after") n.probe_after = -1ms;
      if (f == "probe_timeout") n.probe_timeout = -1ms;
      if (f == "per_attempt_timeout") n.per_attempt_timeout = -1ms;
      refused(n, field, field);
    }
    // everything changed at once still makes a pool
    PoolOptions all = PoolOptions::resilient();
    all.connect_timeout = 1000ms;
    all.tcp_user_timeout = 0ms;
    all.keepalive = jina_net::Keepalive{60000ms, 5000ms};
    all.probe_after = 0ms;
    all.fail_over_unanswered = true;
    all.eject_on_deadline = false;
    all.per_attempt_timeout = 250ms;
    all.retry_budget = jina_net::RetryBudget{100, 0.5};
    accepted(all, "all changed");
  }
}

static void test_head_control() {
  std::printf("-- activate / deactivate through a head\n");
  const std::string H = addr("h");
  const auto wport = static_cast<uint16_t>(jn_servers_port(&g_servers, "w"));
  CHECK(wport != 0);
  SendOptions to_head;
  to_head.head = true;
  to_head.endpoint = "/index";
  jina_net::OneShotOptions index;
  index.endpoint = "/index";

  // no worker yet: the head answers UNKNOWN
  auto e = catch_error([&] { jina_net::send_request_sync(pb::data_request("early"), H, index); });
  CHECK_MSG(e && e->code() == JINA_NET_RPC_ERROR && contains(e->message(), H), code_of(e));

  // ACTIVATE (future)
  {
    auto f = jina_net::activate_worker("127.0.0.1", wport, H);
    auto r = wait_result(f);
    CHECK_MSG(r && r->ok() && r->targets.size() == 1, r ? r->error_message : "");
    if (r && r->targets.size() == 1) {
      CHECK(r->send_id == 0 && !r->targets[0].shard_id && r->targets[0].address == H);
      auto ctl = pb::control(r->targets[0].body());
      CHECK(ctl && ctl->command == 1 && ctl->port == wport && ctl->address == "127.0.0.1" && !ctl->shard_id &&
            ctl->entities == 1);
    }
  }
  // data through the head reaches the worker
  {
    jina_net::Response resp = jina_net::send_request_sync(pb::data_request("via-head"), H, index);
    CHECK(static_cast<bool>(resp));
    CHECK(resp.metadata_value("replica") == std::string("w"));
    CHECK(resp.metadata_value("head") == std::string("h"));
    CHECK(resp.address() == H);
    CHECK(pb::request_id(resp.body()) == std::string("via-head"));
    CHECK((pb::route_executors(resp.body()) == std::vector<std::string>{"w", "h"}));
  }
  jina_net::Pool pool;
  pool.add_connection("gw", H, true);
  {
    auto f = pool.send("gw", pb::data_request("pool-via-head"), to_head);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && r->targets[0].head && replica_of(r->targets[0]) == "w");
  }
  // DEACTIVATE (future): the head has no worker again
  {
    auto f = jina_net::deactivate_worker("127.0.0.1", wport, H);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1);
    if (r && r->targets.size() == 1) {
      auto ctl = pb::control(r->targets[0].body());
      CHECK(ctl && ctl->command == 2 && ctl->port == wport);
    }
    auto f2 = pool.send("gw", pb::data_request("after-deactivate"), to_head);
    auto r2 = wait_result(f2);
    CHECK(r2 && r2->status == JINA_NET_RPC_ERROR && r2->targets.size() == 1 && r2->targets[0].grpc_code == 2);
  }
  // the blocking forms, with a shard id
  {
    jina_net::Response resp = jina_net::activate_worker_sync("127.0.0.1", wport, H, 0u, 5000ms);
    auto ctl = pb::control(resp.body());
    CHECK(ctl && ctl->command == 1 && ctl->shard_id == std::optional<uint64_t>(0));
    jina_net::Response data = jina_net::send_request_sync(pb::data_request("via-head-2"), H, index);
    CHECK(data.metadata_value("replica") == std::string("w"));
    jina_net::Response off = jina_net::deactivate_worker_sync("127.0.0.1", wport, H, 0u);
    auto ctl2 = pb::control(off.body());
    CHECK(ctl2 && ctl2->command == 2);
    e = catch_error([&] { jina_net::send_request_sync(pb::data_request("late"), H, index); });
    CHECK_MSG(e && e->code() == JINA_NET_RPC_ERROR, code_of(e));
  }
  // the callback forms
  {
    Collector c;
    jina_net::activate_worker("127.0.0.1", wport, H, std::nullopt, c.callback());
    auto on = c.wait(1);
    CHECK(on.size() == 1 && on[0].status == JINA_NET_OK);
    auto f = pool.send("gw", pb::data_request("cb-via-head"), to_head);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == "w");
    jina_net::deactivate_worker("127.0.0.1", wport, H, std::nullopt, c.callback());
    auto off = c.wait(2);
    CHECK(off.size() == 2 && off[1].status == JINA_NET_OK && !off[1].targets.empty() &&
          pb::control(off[1].targets[0].body).value_or(pb::Control{}).command == 2);
    // bad head address: thrown at once, no callback
    e = catch_error([&] { jina_net::activate_worker("127.0.0.1", wport, "bad address", std::nullopt, c.callback()); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS, code_of(e));
    e = catch_error([&] { jina_net::deactivate_worker_sync("127.0.0.1", wport, "bad address"); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS, code_of(e));
    std::this_thread::sleep_for(100ms);
    CHECK(c.count() == 2);
  }
}

static void test_oneshot() {
  std::printf("-- one-shot helpers\n");
  const std::string A = addr("a"), U = addr("u");
  {
    jina_net::Response r = jina_net::send_request_sync(pb::data_request("s1"), A);
    CHECK(pb::request_id(r.body()) == std::string("s1"));
    CHECK(r.address() == A);
    CHECK(r.metadata_value("replica") == std::string("a"));
    CHECK(r.metadata_value("request-count") == std::string("1"));
    CHECK(r.metadata_count() == r.metadata().size() && r.metadata_count() >= 3);
    CHECK(!r.metadata_value("no-such-key"));
  }
  {
    const std::string r1 = pb::data_request("r1"), r2 = pb::data_request("r2");
    jina_net::Response r = jina_net::send_requests_sync({r1, r2}, A);
    CHECK(r.metadata_value("request-count") == std::string("2"));
    CHECK(pb::request_id(r.body()) == std::string("r1"));
  }
  {
    jina_net::OneShotOptions o;
    o.endpoint = "/bar";
    jina_net::Response r = jina_net::send_request_sync(pb::data_request("ep"), A, o);
    CHECK(r.metadata_value("endpoint") == std::string("/bar"));
    jina_net::OneShotOptions ctl;
    ctl.kind = jina_net::RequestKind::Control;
    jina_net::Response cr = jina_net::send_request_sync(pb::control_request("c1", 0), A, ctl);
    CHECK(pb::request_id(cr.body()) == std::string("c1"));
  }
  {
    auto f = jina_net::send_request_async(pb::data_request("as1"), A);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->send_id == 0 && r->targets.size() == 1);
    if (r && r->targets.size() == 1) {
      CHECK(!r->targets[0].shard_id && !r->targets[0].head && r->targets[0].address == A);
      CHECK(replica_of(r->targets[0]) == "a" && pb::request_id(r->targets[0].body()) == std::string("as1"));
    }
    // the response outlives the SendResult it was moved out of
    jina_net::Response kept;
    if (r && r->targets.size() == 1) kept = std::move(r->targets[0].response);
    r.reset();
    CHECK(pb::request_id(kept.body()) == std::string("as1"));
  }
  {
    Collector c;
    jina_net::send_request_async(pb::data_request("as2"), A, jina_net::OneShotOptions{}, c.callback());
    auto done = c.wait(1);
    CHECK(done.size() == 1 && done[0].status == JINA_NET_OK && !done[0].targets.empty() &&
          done[0].targets[0].request_id == "as2");
  }
  {
    auto f = jina_net::send_request_async(pb::data_request("as3"), U);
    auto r = wait_result(f);
    CHECK(r && r->status == JINA_NET_RPC_ERROR && r->targets.size() == 1 && r->targets[0].grpc_code == 14);
  }
  auto e = catch_error([&] { jina_net::send_request_async(pb::data_request("x"), "no-port"); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS && contains(e->message(), "no-port"), code_of(e));
  e = catch_error([&] { jina_net::send_request_sync(pb::data_request("x"), "no-port"); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS, code_of(e));
  e = catch_error([&] { jina_net::send_request_sync(std::string("\xff\xff", 2), A); });
  CHECK_MSG(e && e->code() == JINA_NET_INVALID_REQUEST, code_of(e));
}

static std::atomic<int> g_raw_calls{0};
extern "C" void raw_counting_callback(void *, const jina_net_send_result *) { ++g_raw_calls; }

static void test_runtime_shutdown() {
  std::printf("-- runtime shutdown\n");
  const std::string S = addr("s"), A = addr("a");
  {
    jina_net::Pool pool;
    pool.add_connection("slow", S);
    auto f = pool.send("slow", pb::data_request("pending-at-shutdown"));
    Collector c;
    pool.send("slow", pb::data_request("pending-cb"), SendOptions{}, c.callback());
    auto owned = pool.send_owned("slow", counted(pb::data_request("owned-pending-at-shutdown")));
    std::this_thread::sleep_for(100ms);
    CHECK(!catch_error([] { jina_net::runtime_shutdown(2000ms); }));
    auto owned_r = wait_result(owned, 2500ms);
    CHECK_MSG(owned_r && owned_r->status == JINA_NET_RUNTIME_ERROR, owned_r ? owned_r->error_message : "");
    auto r = wait_result(f, 2500ms);
    CHECK_MSG(r && r->status == JINA_NET_RUNTIME_ERROR, r ? r->error_message : "");
    auto done = c.wait(1, 2500ms);
    CHECK(done.size() == 1 && done[0].status == JINA_NET_RUNTIME_ERROR);
    CHECK(!catch_error([] { jina_net::runtime_shutdown(100ms); }));  // twice is harmless

    // after the shutdown: a pool send either throws or completes once with RUNTIME_ERROR
    Collector after;
    bool threw = false;
    try {
      pool.send("slow", pb::data_request("after"), SendOptions{}, after.callback());
    } catch (const Error &ex) {
      threw = true;
      CHECK(ex.code() == JINA_NET_RUNTIME_ERROR || ex.code() == JINA_NET_POOL_CLOSED);
    }
    if (!threw) {
      auto d = after.wait(1, 2500ms);
      CHECK(d.size() == 1 && d[0].status == JINA_NET_RUNTIME_ERROR);
    }
    // an owned send after the shutdown: refused, its buffer destroyed exactly once
    Collector owned_after;
    auto oe = catch_error([&] {
      pool.send_owned("slow", counted(pb::data_request("owned-after")), SendOptions{}, owned_after.callback());
    });
    if (oe) {
      CHECK_MSG(oe->code() == JINA_NET_RUNTIME_ERROR || oe->code() == JINA_NET_POOL_CLOSED, code_of(oe));
    } else {
      auto d = owned_after.wait(1, 2500ms);
      CHECK(d.size() == 1 && d[0].status == JINA_NET_RUNTIME_ERROR);
    }
    CHECK_MSG(all_owned_destroyed(), owned_counts());
  }  // the pool is freed after the shutdown

  auto e = catch_error([] { jina_net::Pool p; });
  CHECK_MSG(e && e->code() == JINA_NET_RUNTIME_ERROR, code_of(e));
  e = catch_error([&] { jina_net::send_request_sync(pb::data_request("x"), A); });
  CHECK_MSG(e && e->code() == JINA_NET_RUNTIME_ERROR, code_of(e));

  // The callback forms of the one-shot helpers after the shutdown must throw; the wrapper must free its
  // completion exactly once (ASan checks) even though the C function also fires the callback.
  Collector c;
  e = catch_error([&] { jina_net::send_request_async(pb::data_request("x"), A, jina_net::OneShotOptions{}, c.callback()); });
  CHECK_MSG(e && e->code() == JINA_NET_RUNTIME_ERROR, code_of(e));
  e = catch_error([&] { jina_net::activate_worker("127.0.0.1", 1, A, std::nullopt, c.callback()); });
  CHECK_MSG(e && e->code() == JINA_NET_RUNTIME_ERROR, code_of(e));
  auto fut_e = catch_error([&] { jina_net::deactivate_worker("127.0.0.1", 1, A); });
  CHECK_MSG(fut_e && fut_e->code() == JINA_NET_RUNTIME_ERROR, code_of(fut_e));
  std::this_thread::sleep_for(100ms);
  CHECK(c.count() == 0);  // a call that returned an error never calls back

  // The same straight through the C ABI: the header says a callback does not fire when the function
  // returns an error.
  const std::string req = pb::data_request("raw");
  const jina_net_result rr = jina_net_send_request_async(JINA_NET_REQUEST_DATA, reinterpret_cast<const uint8_t *>(req.data()),
                                                         req.size(), A.c_str(), nullptr, &raw_counting_callback, nullptr);
  std::this_thread::sleep_for(100ms);
  CHECK(rr == JINA_NET_RUNTIME_ERROR);
  CHECK(g_raw_calls.load() == 0);
}

// Makes the test servers exit when this process ends, even if it crashes (e.g. an ASan abort): they run
// with --exit-on-stdin-eof and their stdin is a pipe whose only writer is this process (close-on-exec,
// so the server does not hold it). Returns false if the pipe cannot be set up.
static int g_server_stdin_writer = -1;
static bool tie_servers_to_this_process() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  if (dup2(fds[0], STDIN_FILENO) < 0) return false;  // dup2 clears close-on-exec: the server inherits it
  close(fds[0]);
  g_server_stdin_writer = fds[1];
  return true;
}

static void test_caller_driven() {
  std::printf("-- caller-driven pool\n");
  jina_net::PoolOptions options;
  options.caller_driven = true;
  jina_net::Pool pool(options);
  pool.add_connection("d", addr("a"));
  const auto me = std::this_thread::get_id();
  std::vector<std::thread::id> threads;
  int resends = 5;
  std::function<void(const SendResult &)> again = [&](const SendResult &r) {
    threads.push_back(std::this_thread::get_id());
    CHECK(r.ok());
    auto inside = catch_error([&] { pool.poll(0ms); });  // not from a callback
    CHECK(inside && inside->code() == JINA_NET_RUNTIME_ERROR);
    if (resends-- > 0) pool.send("d", pb::data_request("again"), SendOptions{}, again);
  };
  pool.send("d", pb::data_request("first"), SendOptions{}, again);
  std::this_thread::sleep_for(50ms);
  CHECK(threads.empty());  // nothing runs unpolled
  size_t completed = 0;
  for (int i = 0; i < 400 && threads.size() < 6; ++i) completed += pool.poll(50ms);
  CHECK(threads.size() == 6 && completed == 6);
  CHECK(std::all_of(threads.begin(), threads.end(), [&](std::thread::id t) { return t == me; }));
  CHECK(pool.poll(0ms) == 0);
  pool.close();
  CHECK(pool.poll() == 0);  // a closed pool's poll returns at once, even without a time limit
  jina_net::Pool threaded;
  auto refused = catch_error([&] { threaded.poll(0ms); });
  CHECK(refused && refused->code() == JINA_NET_INVALID_ARGUMENT);
}

static void test_callbacks_in_poll() {
  std::printf("-- callbacks in poll (library threads run the pool)\n");
  jina_net::PoolOptions options;
  options.callbacks_in_poll = true;
  jina_net::Pool pool(options);
  pool.add_connection("d", addr("a"));
  const auto me = std::this_thread::get_id();
  std::vector<std::thread::id> threads;
  auto record = [&](const SendResult &r) {
    CHECK(r.ok());
    threads.push_back(std::this_thread::get_id());
    auto inside = catch_error([&] { pool.poll(0ms); });  // not from a callback
    CHECK(inside && inside->code() == JINA_NET_RUNTIME_ERROR);
  };
  for (int i = 0; i < 8; ++i) pool.send("d", pb::data_request("polled"), SendOptions{}, record);
  std::this_thread::sleep_for(1000ms);  // the library threads complete the sends meanwhile
  CHECK(threads.empty());               // their callbacks wait for a poll
  CHECK(pool.poll(0ms) == 8);           // one poll runs them all
  CHECK(threads.size() == 8);
  CHECK(std::all_of(threads.begin(), threads.end(), [&](std::thread::id t) { return t == me; }));
  CHECK(pool.poll(0ms) == 0);
  pool.send("d", pb::data_request("polled"), SendOptions{}, record);
  CHECK(pool.poll() == 1);  // waits for the completion
  pool.close();
  CHECK(pool.poll() == 0);  // a closed pool's poll returns at once
}

static void test_tuning() {
  std::printf("-- p2c, hedging, in-flight limits, metrics, log callback\n");
  const std::string S = addr("s"), A = addr("a"), U = addr("u");
  {
    jina_net::PoolOptions o;
    o.balance = jina_net::Balance::P2cPeakEwma;
    o.hedge_delay = 20ms;
    o.max_hedges = 1;
    o.metrics = true;
    jina_net::Pool pool(o);
    pool.add_connection("d", S);
    pool.add_connection("d", A);
    SendOptions so;
    so.idempotent = true;
    so.timeout = 2500ms;
    for (int i = 0; i < 3; ++i) {
      auto f = pool.send("d", pb::data_request("hedged"), so);
      auto r = wait_result(f);
      CHECK(r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == "a");
    }
    const std::string text = pool.metrics_text();
    CHECK(contains(text, "jina_sending_request_seconds_count{deployment=\"d\",shard=\"0\",address=\"" + A + "\"} "));
    CHECK(contains(text, "# TYPE jina_net_hedges_total counter"));
  }
  {
    // Owned buffers are hedged too (jina_net_pool_send_owned_ex): round robin picks the slow replica
    // (3 s) first, the hedge to the echo replica answers; the buffer is destroyed once.
    jina_net::PoolOptions o;
    o.hedge_delay = 20ms;
    o.max_hedges = 1;
    jina_net::Pool pool(o);
    pool.add_connection("d", S);
    pool.add_connection("d", A);
    SendOptions so;
    so.idempotent = true;
    so.timeout = 2500ms;
    auto f = pool.send_owned("d", counted(pb::data_request("hedged-owned")), so);
    auto r = wait_result(f);
    CHECK(r && r->ok() && r->targets.size() == 1 && replica_of(r->targets[0]) == "a");
    CHECK(all_owned_destroyed());
  }
  {
    jina_net::PoolOptions o;
    o.max_in_flight_per_replica = 1;
    o.max_queued_sends = 0;
    jina_net::Pool pool(o);
    pool.add_connection("busy", S, false, 3);
    auto no_metrics = catch_error([&] { (void)pool.metrics_text(); });
    CHECK(no_metrics && no_metrics->code() == JINA_NET_INVALID_ARGUMENT && contains(no_metrics->message(), "metrics"));
    SendOptions so;
    so.shard_id = 3;
    auto first = pool.send("busy", pb::data_request("first"), so);
    std::this_thread::sleep_for(100ms);
    auto second = pool.send("busy", pb::data_request("second"), so);
    auto r = wait_result(second, 2s);
    CHECK(r && r->status == JINA_NET_RESOURCE_EXHAUSTED && contains(r->error_message, "deployment \"busy\" shard 3"));
    bool thrown = false;
    try {
      if (r) r->check();
    } catch (const jina_net::ResourceExhaustedError &e) {
      thrown = e.code() == JINA_NET_RESOURCE_EXHAUSTED;
    }
    CHECK(thrown);
    pool.close();
    auto closed = wait_result(first);
    CHECK(closed && closed->status == JINA_NET_POOL_CLOSED);
  }
  {
    std::mutex m;
    int retries = 0, events = 0;
    std::set<std::thread::id> threads;
    jina_net::set_log_callback(
        [&](jina_net::LogLevel level, std::string_view target, std::string_view message) {
          std::lock_guard<std::mutex> lock(m);
          ++events;
          threads.insert(std::this_thread::get_id());
          if (level == jina_net::LogLevel::Debug && target == "jina_net::send" &&
              message.find("retrying") != std::string_view::npos)
            ++retries;
        },
        jina_net::LogLevel::Debug);
    jina_net::Pool pool;
    pool.add_connection("down", U);
    auto f = pool.send("down", pb::data_request("logged"));
    auto r = wait_result(f);
    CHECK(r && r->targets.size() == 1 && r->targets[0].grpc_code == 14);
    jina_net::set_log_callback(nullptr);
    int seen = 0;
    {
      std::lock_guard<std::mutex> lock(m);
      CHECK(retries == 2);
      CHECK(threads.count(std::this_thread::get_id()) == 0);  // library threads only
      seen = events;
    }
    auto g = pool.send("down", pb::data_request("quiet"));
    (void)wait_result(g);
    std::lock_guard<std::mutex> lock(m);
    CHECK(events == seen);
  }
}

// ---------------------------------------------------------------------------------------------
// Transport (C ABI 0.2.2): mTLS identity, server names, unix: and dns: addresses, compression,
// wait_ready and the replica states of the routing table

// One test-server process of its own (--tls-cert, --client-ca, --compress and --unix apply to every
// server of a process). Its stdin is a pipe only this process writes (it runs with
// --exit-on-stdin-eof: it exits when stop() closes the pipe, or when this process dies); its stdout
// stays open for the `STATS read=N written=M` lines that SIGUSR1 asks for.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string> &args) {
    std::vector<std::string> all{jn_test_server_binary(), "--exit-on-stdin-eof"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (std::string &a : all) argv.push_back(&a[0]);
    argv.push_back(nullptr);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return;
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {  // dup2 clears close-on-exec on 0 and 1 only
      if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0) _exit(126);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
    if (pid_ < 0) return;
    while (auto line = read_line(20s)) {
      if (*line == "READY") {
        ready_ = true;
        break;
      }
      char name[64], role[64], address[512];
      if (std::sscanf(line->c_str(), "SERVER %63s %63s %511s", name, role, address) == 3)
        addresses_.emplace_back(name, address);
    }
  }
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess &) = delete;
  ServerProcess &operator=(const ServerProcess &) = delete;

  bool ready() const { return ready_; }
  // The address the server called `name` printed (127.0.0.1:PORT, or unix:PATH).
  std::string address(const std::string &name) const {
    for (const auto &[n, a] : addresses_)
      if (n == name) return a;
    return "";
  }

  struct Stats {
    uint64_t read = 0, written = 0;
  };
  // The TCP bytes all its servers have read and written so far (SIGUSR1).
  std::optional<Stats> stats() {
    if (pid_ <= 0 || kill(pid_, SIGUSR1) != 0) return std::nullopt;
    while (auto line = read_line(10s)) {
      unsigned long long r = 0, w = 0;
      if (std::sscanf(line->c_str(), "STATS read=%llu written=%llu", &r, &w) == 2) return Stats{r, w};
    }
    return std::nullopt;
  }

  // Kills it at once (a crashed replica): its connections reset.
  void kill_now() {
    if (pid_ > 0) kill(pid_, SIGKILL);
    stop();
  }

  // EOF on its stdin; waits for it to exit (SIGKILL after 10 s).
  void stop() {
    if (in_ >= 0) close(in_);
    in_ = -1;
    if (pid_ > 0) {
      for (int i = 0; i < 1000 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
      if (waitpid(pid_, nullptr, WNOHANG) == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    pid_ = -1;
    if (out_ >= 0) close(out_);
    out_ = -1;
  }

 private:
  std::optional<std::string> read_line(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (out_ < 0 || left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const ssize_t n = read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  bool ready_ = false;
  std::string buffer_;
  std::vector<std::pair<std::string, std::string>> addresses_;
};

static std::string read_text_file(const std::string &path) {
  std::string out;
  FILE *f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) out.append(chunk, n);
  std::fclose(f);
  return out;
}

// A temporary directory with the test certificates of `jina-net-test-server pki DIR`; removed with
// everything in it.
struct Pki {
  std::string dir;
  Pki() {
    char tmpl[] = "/tmp/jina-net-cpp-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir = tmpl;
    const pid_t pid = fork();
    if (pid == 0) {
      execl(jn_test_server_binary(), jn_test_server_binary(), "pki", tmpl, static_cast<char *>(nullptr));
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) dir.clear();
  }
  ~Pki() {
    if (dir.empty()) return;
    if (DIR *d = opendir(dir.c_str())) {
      while (dirent *e = readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
      }
      closedir(d);
    }
    rmdir(dir.c_str());
  }
  Pki(const Pki &) = delete;
  Pki &operator=(const Pki &) = delete;
  std::string path(const char *file) const { return dir + "/" + file; }
  std::string pem(const char *file) const { return read_text_file(path(file)); }
  jina_net::TlsIdentity identity(const char *who) const {
    return jina_net::TlsIdentity{pem((std::string(who) + ".pem").c_str()), pem((std::string(who) + ".key").c_str())};
  }
};

// 127.0.0.1:PORT where nothing listens (a port the system just gave and took back).
static std::string dead_address() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::string out;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0)
    out = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  if (fd >= 0) close(fd);
  return out;
}

// The route of `deployment` (the head, or a shard), if the table has it.
static std::optional<jina_net::Route> route_of(const std::vector<jina_net::Route> &table, const std::string &deployment,
                                               std::optional<uint32_t> shard = 0u) {
  for (const auto &r : table)
    if (r.deployment == deployment && (shard ? (!r.head && r.shard_id == shard) : r.head)) return r;
  return std::nullopt;
}

// The states of the replicas of one route, as "address=state,..." (for messages and comparisons).
static std::string states_of(const std::optional<jina_net::Route> &route) {
  if (!route) return "(no route)";
  std::string out;
  for (const auto &r : route->replicas)
    out += (out.empty() ? "" : ",") + r.address + "=" + jina_net::replica_state_name(r.state);
  return out;
}

// One data request to `deployment`, waited for.
static std::optional<SendResult> send_to(jina_net::Pool &pool, const std::string &deployment, const std::string &id,
                                         const SendOptions &options = SendOptions{}) {
  auto f = pool.send(deployment, pb::data_request(id), options);
  return wait_result(f);
}

static bool tls_failure(const std::optional<SendResult> &r, const std::string &address, const std::string &why) {
  return r && r->status == JINA_NET_TLS_ERROR && r->targets.size() == 1 &&
         r->targets[0].status == JINA_NET_TLS_ERROR && contains(r->targets[0].error_message, address) &&
         contains(r->error_message, why);
}

// What needs no server: compression names, the C structs the options make, routes text, bad values.
static void test_transport_options() {
  std::printf("-- transport options (0.2.2): compression names, option structs, routes text, bad input\n");
  using jina_net::Compression;
  static_assert(static_cast<uint32_t>(Compression::None) == JINA_NET_COMPRESSION_NONE &&
                    static_cast<uint32_t>(Compression::Gzip) == JINA_NET_COMPRESSION_GZIP &&
                    static_cast<uint32_t>(Compression::Deflate) == JINA_NET_COMPRESSION_DEFLATE,
                "Compression is jina_net_compression");

  // names: ours and jina's, any case
  const std::pair<const char *, Compression> names[] = {
      {"none", Compression::None},     {"gzip", Compression::Gzip},      {"deflate", Compression::Deflate},
      {"NoCompression", Compression::None}, {"Gzip", Compression::Gzip}, {"Deflate", Compression::Deflate},
      {"NOCOMPRESSION", Compression::None}, {"GZIP", Compression::Gzip}, {"dEfLaTe", Compression::Deflate}};
  for (const auto &[name, c] : names) {
    std::optional<Compression> got;
    auto e = catch_error([&] { got = jina_net::compression_from_name(name); });
    CHECK_MSG(!e && got == c, std::string(name) + ": " + code_of(e));
  }
  CHECK(std::string(jina_net::compression_name(Compression::Gzip)) == "gzip" &&
        std::string(jina_net::compression_name(Compression::Deflate)) == "deflate" &&
        std::string(jina_net::compression_name(Compression::None)) == "none" &&
        std::string(jina_net::compression_name(static_cast<Compression>(9))) == "unknown");
  // gRPC's "identity" is none too; the empty name is not a name
  for (const char *none : {"identity", "Identity"}) {
    std::optional<Compression> got;
    auto e = catch_error([&] { got = jina_net::compression_from_name(none); });
    CHECK_MSG(!e && got == Compression::None, std::string("\"") + none + "\": " + code_of(e));
  }
  for (const std::string &bad : {std::string(""), std::string("zstd"), std::string("gzip "), std::string("br"), std::string("gz\0ip", 5)}) {
    auto e = catch_error([&] { (void)jina_net::compression_from_name(bad); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, "\"" + bad + "\": " + code_of(e));
  }
  auto e = catch_error([] { (void)jina_net::compression_from_name("zstd"); });
  CHECK_MSG(e && contains(e->message(), "zstd") && contains(e->message(), "Gzip"), code_of(e));

  // The C struct a PoolOptions makes: unset transport settings keep the library's defaults (what an
  // older 0.2.x library, which zeroes them, needs too); set ones point at the options' own bytes.
  {
    jina_net_pool_options init{};
    CHECK(jina_net_pool_options_init(&init, sizeof init) == JINA_NET_OK);
    CHECK(init.tls_cert_chain_pem == nullptr && init.tls_private_key_pem == nullptr &&
          init.tls_server_name == nullptr && init.compression == JINA_NET_COMPRESSION_NONE &&
          init.dns_refresh_ms == 30000);
    jina_net_pool_options c{};
    jina_net::detail::c_pool_options(c, jina_net::PoolOptions{});
    CHECK(same_c_options(c, init));

    jina_net::PoolOptions o;
    o.tls_identity = jina_net::TlsIdentity{"CHAIN", "KEY!"};
    o.tls_server_name = "executor.jina.svc";
    o.compression = Compression::Deflate;
    o.dns_refresh = 0ms;
    jina_net::detail::c_pool_options(c, o);
    CHECK(c.tls_cert_chain_pem == reinterpret_cast<const uint8_t *>(o.tls_identity->cert_chain_pem.data()) &&
          c.tls_cert_chain_pem_len == 5);
    CHECK(c.tls_private_key_pem == reinterpret_cast<const uint8_t *>(o.tls_identity->private_key_pem.data()) &&
          c.tls_private_key_pem_len == 4);
    CHECK(c.tls_server_name == o.tls_server_name->c_str());
    CHECK(c.compression == JINA_NET_COMPRESSION_DEFLATE && c.dns_refresh_ms == 0);
    o.dns_refresh = 1500ms;
    jina_net::detail::c_pool_options(c, o);
    CHECK(c.dns_refresh_ms == 1500);
    // and back (PoolOptions::resilient() reads the C preset this way)
    const jina_net::PoolOptions back = jina_net::detail::pool_options_from_c(c);
    CHECK(back.tls_identity && back.tls_identity->cert_chain_pem == "CHAIN" &&
          back.tls_identity->private_key_pem == "KEY!");
    CHECK(back.tls_server_name == std::string("executor.jina.svc") && back.compression == Compression::Deflate &&
          back.dns_refresh == 1500ms);
  }
  // the same for the one-shot options
  {
    jina_net_oneshot_options init{};
    CHECK(jina_net_oneshot_options_init(&init, sizeof init) == JINA_NET_OK);
    const jina_net_oneshot_options d = jina_net::detail::c_oneshot(jina_net::OneShotOptions{});
    CHECK(d.struct_size == init.struct_size && d.tls_cert_chain_pem == nullptr && d.tls_cert_chain_pem_len == 0 &&
          d.tls_private_key_pem == nullptr && d.tls_private_key_pem_len == 0 && d.tls_server_name == nullptr &&
          d.compression == init.compression && init.compression == JINA_NET_COMPRESSION_NONE);
    jina_net::OneShotOptions o;
    o.tls_identity = jina_net::TlsIdentity{"C", "K"};
    o.tls_server_name = "svc";
    o.compression = Compression::Gzip;
    const jina_net_oneshot_options c = jina_net::detail::c_oneshot(o);
    CHECK(c.tls_cert_chain_pem_len == 1 && c.tls_private_key_pem_len == 1 &&
          c.tls_server_name == o.tls_server_name->c_str() && c.compression == JINA_NET_COMPRESSION_GZIP);
  }
  // defaults of the new fields
  {
    const jina_net::PoolOptions d;
    CHECK(!d.tls_identity && !d.tls_server_name && d.compression == Compression::None && !d.dns_refresh);
    const jina_net::PoolOptions r = jina_net::PoolOptions::resilient();
    CHECK(!r.tls_identity && !r.tls_server_name && r.compression == Compression::None && r.dns_refresh == 30000ms);
    const jina_net::OneShotOptions os;
    CHECK(!os.tls_identity && !os.tls_server_name && os.compression == Compression::None);
    const jina_net::AddOptions a;
    CHECK(!a.head && !a.shard_id && !a.tls_server_name);
  }

  // bad values: Error, never a crash
  auto pool_error = [](const jina_net::PoolOptions &o) { return catch_error([&] { jina_net::Pool p(o); }); };
  {
    jina_net::PoolOptions o;
    o.compression = static_cast<Compression>(3);
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "compression"), code_of(e));
    o = jina_net::PoolOptions{};
    o.dns_refresh = -1ms;
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "dns_refresh"), code_of(e));
    o = jina_net::PoolOptions{};
    for (const char *name : {"", "not a name!", "bad..name"}) {
      o.tls_server_name = name;
      e = pool_error(o);
      CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "server name"),
                std::string(name) + ": " + code_of(e));
    }
    o.tls_server_name = std::string("svc\0x", 5);
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "tls_server_name"), code_of(e));
    o.tls_server_name = "\xff\xfe";
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_UTF8, code_of(e));
    // an identity needs both parts (two empty ones are not "no identity": that is an empty optional)
    o = jina_net::PoolOptions{};
    o.tls_identity = jina_net::TlsIdentity{};
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "cert_chain_pem"), code_of(e));
    o.tls_identity = jina_net::TlsIdentity{"-----BEGIN CERTIFICATE-----\n", ""};
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "private_key_pem"), code_of(e));
    // PEM that holds no certificate / no key: the library says which
    o.tls_identity = jina_net::TlsIdentity{"not PEM at all", "not a key either"};
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "certificate chain"), code_of(e));
    o.tls_identity = jina_net::TlsIdentity{"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
                                           "x"};
    e = pool_error(o);
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "certificate chain"), code_of(e));
  }
  {
    // one-shot: the same refusals, from the blocking and the asynchronous form, before any send
    const std::string A = addr("a");
    jina_net::OneShotOptions o;
    o.compression = static_cast<Compression>(7);
    e = catch_error([&] { jina_net::send_request_sync(pb::data_request("x"), A, o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "compression"), code_of(e));
    e = catch_error([&] { (void)jina_net::send_request_async(pb::data_request("x"), A, o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    o = jina_net::OneShotOptions{};
    o.tls_identity = jina_net::TlsIdentity{"garbage", "garbage"};
    e = catch_error([&] { jina_net::send_request_sync(pb::data_request("x"), A, o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR, code_of(e));
    o.tls_identity = jina_net::TlsIdentity{"", "k"};
    e = catch_error([&] { (void)jina_net::send_request_async(pb::data_request("x"), A, o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "cert_chain_pem"), code_of(e));
    o = jina_net::OneShotOptions{};
    o.tls_server_name = "";
    e = catch_error([&] { jina_net::send_request_sync(pb::data_request("x"), A, o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR, code_of(e));
  }

  // routes text: the 4-column form, the 3-column form of older libraries, states this header does not
  // know, replicas of a route with none, and lines that are no route
  {
    using jina_net::ReplicaState;
    const auto t = jina_net::parse_routes(
        "a\thead\t1.2.3.4:1\tready\n"
        "a\tshard 0\t1.2.3.4:2,unix:/tmp/x.sock,[::1]:3\tidle,failing,unresponsive\n"
        "b c\tshard 4294967295\t5.6.7.8:9\tdraining\n"
        "old\tshard 1\th:1,h:2\n"
        "none\tshard 2\t\t\n");
    CHECK(t.size() == 5);
    if (t.size() == 5) {
      CHECK(t[0].deployment == "a" && t[0].head && !t[0].shard_id && t[0].replicas.size() == 1 &&
            t[0].replicas[0].address == "1.2.3.4:1" && t[0].replicas[0].state == ReplicaState::Ready &&
            t[0].replicas[0].state_name == "ready");
      CHECK(!t[1].head && t[1].shard_id == 0u && t[1].replicas.size() == 3);
      if (t[1].replicas.size() == 3) {
        CHECK(t[1].replicas[0].state == ReplicaState::Idle && t[1].replicas[1].address == "unix:/tmp/x.sock" &&
              t[1].replicas[1].state == ReplicaState::Failing && t[1].replicas[2].address == "[::1]:3" &&
              t[1].replicas[2].state == ReplicaState::Unresponsive);
      }
      CHECK(t[2].deployment == "b c" && t[2].shard_id == 4294967295u && t[2].replicas.size() == 1 &&
            t[2].replicas[0].state == ReplicaState::Unknown && t[2].replicas[0].state_name == "draining");
      CHECK(t[3].replicas.size() == 2 && t[3].replicas[1].address == "h:2" &&
            t[3].replicas[1].state == ReplicaState::Unknown && t[3].replicas[1].state_name.empty());
      CHECK(t[4].shard_id == 2u && t[4].replicas.empty());
    }
    CHECK(jina_net::parse_routes("").empty());
    // deployment names with tabs and newlines (the library takes them): each line is read from the right
    const auto odd = jina_net::parse_routes(
        "\tshard 0\ta:1\tidle\n"
        "x\ty\thead\ta:1\tready\n"
        "first\n\nlast\tshard 3\ta:1,b:2\tidle,failing\n"
        "shard 1\tshard 0\t\t\n"
        "old\tname\tshard 5\ta:1\n");
    CHECK(odd.size() == 5);
    if (odd.size() == 5) {
      CHECK(odd[0].deployment.empty() && odd[0].shard_id == 0u && odd[0].replicas.size() == 1);
      CHECK(odd[1].deployment == "x\ty" && odd[1].head && odd[1].replicas.size() == 1 &&
            odd[1].replicas[0].state == ReplicaState::Ready);
      CHECK(odd[2].deployment == "first\n\nlast" && odd[2].shard_id == 3u && odd[2].replicas.size() == 2 &&
            odd[2].replicas[1].address == "b:2" && odd[2].replicas[1].state == ReplicaState::Failing);
      CHECK(odd[3].deployment == "shard 1" && odd[3].shard_id == 0u && odd[3].replicas.empty());
      CHECK(odd[4].deployment == "old\tname" && odd[4].shard_id == 5u && odd[4].replicas.size() == 1 &&
            odd[4].replicas[0].state == ReplicaState::Unknown);
    }
    // more addresses than states (a comma inside an address): kept as split, states unknown
    const auto m = jina_net::parse_routes("d\tshard 0\tunix:/tmp/a,b.sock\tready\n");
    CHECK(m.size() == 1 && m[0].replicas.size() == 2 && m[0].replicas[0].state == ReplicaState::Unknown);
    for (const char *bad : {"garbage\n", "d\tshard\ta:1\tidle\n", "d\tshard x\ta:1\tidle\n", "d\tshard 4294967296\ta:1\n",
                            "d\tshard -1\ta:1\n", "d\thead\ta:1\tidle\textra\n", "d\tleg\ta:1\n"}) {
      e = catch_error([&] { (void)jina_net::parse_routes(bad); });
      CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT && contains(e->message(), "routes line 1"),
                std::string(bad) + code_of(e));
    }
    CHECK(jina_net::replica_state_from_name("ready") == ReplicaState::Ready &&
          jina_net::replica_state_from_name("unresponsive") == ReplicaState::Unresponsive &&
          jina_net::replica_state_from_name("READY") == ReplicaState::Unknown &&
          std::string(jina_net::replica_state_name(ReplicaState::Failing)) == "failing");
  }

  // AddOptions and wait_ready: bad input
  {
    jina_net::Pool pool;
    const std::string A = addr("a");
    jina_net::AddOptions o;
    for (const char *name : {"", "not a name!"}) {
      o.tls_server_name = name;
      e = catch_error([&] { pool.add_connection("d", A, o); });
      CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR, std::string(name) + ": " + code_of(e));
    }
    o.tls_server_name = std::string("a\0b", 3);
    e = catch_error([&] { pool.add_connection("d", A, o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    CHECK(pool.routes().empty());  // nothing was added
    o = jina_net::AddOptions{};
    for (const char *bad : {"", "unix:", "unix://relative", "dns:///nohost", "dns://authority/host:1", "no-port"}) {
      e = catch_error([&] { pool.add_connection("d", bad, o); });
      CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS, std::string(bad) + ": " + code_of(e));
    }
    e = catch_error([&] { pool.add_connection("d", "dns:///nowhere.invalid:1", o); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS && contains(e->message(), "nowhere.invalid"), code_of(e));
    e = catch_error([&] { pool.wait_ready("nobody", 100ms); });
    CHECK_MSG(e && e->code() == JINA_NET_UNKNOWN_DEPLOYMENT && contains(e->message(), "nobody"), code_of(e));
    e = catch_error([&] { pool.wait_ready("", 100ms); });
    CHECK_MSG(e && e->code() == JINA_NET_UNKNOWN_DEPLOYMENT, code_of(e));
    e = catch_error([&] { pool.wait_ready(std::string("d\0x", 3), 100ms); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    e = catch_error([&] { pool.wait_ready(-1ms); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    // an empty pool is ready
    CHECK(!catch_error([&] { pool.wait_ready(100ms); }));
    // deployment names the routes text could not show plainly are refused (and addresses with ',')
    for (const std::string &odd : {std::string("tab\tname"), std::string("new\nline"), std::string()}) {
      e = catch_error([&] { pool.add_connection(odd, A); });
      CHECK_MSG(e && e->code() == JINA_NET_INVALID_ARGUMENT, code_of(e));
    }
    e = catch_error([&] { pool.add_connection("d", "a,b:1"); });
    CHECK_MSG(e && e->code() == JINA_NET_INVALID_ADDRESS, code_of(e));
    pool.add_connection("plain", A);
    std::vector<jina_net::Route> table;
    e = catch_error([&] { table = pool.route_table(); });
    CHECK_MSG(!e && table.size() == 1 && table[0].deployment == "plain" && table[0].replicas.size() == 1 &&
                  table[0].replicas[0].address == A && table[0].replicas[0].state == jina_net::ReplicaState::Idle,
              code_of(e) + " " + pool.routes());
    pool.close();
    e = catch_error([&] { pool.wait_ready(100ms); });
    CHECK_MSG(e && e->code() == JINA_NET_POOL_CLOSED, code_of(e));
  }
}

// Against real test servers: mTLS, server names, unix:, dns:, compression, wait_ready, states.
static void test_transport() {
  std::printf("-- transport (0.2.2): mTLS, server name, unix:, dns:, compression, wait_ready, replica states\n");
  using jina_net::AddOptions;
  using jina_net::Compression;
  using jina_net::PoolOptions;
  using jina_net::ReplicaState;
  const std::string A = addr("a"), B = addr("b"), Z = addr("z");
  const Pki pki;
  CHECK_MSG(!pki.dir.empty(), "jina-net-test-server pki DIR");
  if (pki.dir.empty()) return;
  const std::string server_ca = pki.pem("server-ca.pem");
  CHECK(contains(server_ca, "BEGIN CERTIFICATE"));

  ServerProcess mtls({"--tls-cert=" + pki.path("server.pem"), "--tls-key=" + pki.path("server.key"),
                      "--client-ca=" + pki.path("client-ca.pem"), "echo=mtls"});
  ServerProcess svc({"--tls-cert=" + pki.path("svc.pem"), "--tls-key=" + pki.path("svc.key"), "echo=svc"});
  const std::string socket_path = pki.path("w.sock");
  ServerProcess uds({"--unix=" + socket_path, "echo=uds"});
  ServerProcess gz({"--compress=gzip", "echo=gz"});
  ServerProcess df({"--compress=deflate", "echo=df"});
  ServerProcess victim({"echo=victim"});
  for (ServerProcess *p : {&mtls, &svc, &uds, &gz, &df, &victim}) CHECK(p->ready());
  const std::string M = mtls.address("mtls"), SVC = svc.address("svc"), GZ = gz.address("gz"),
                    DF = df.address("df"), V = victim.address("victim");
  CHECK_MSG(uds.address("uds") == "unix:" + socket_path, uds.address("uds"));

  // --- mutual TLS: accepted with the identity, refused without (naming the address) or with a
  //     certificate of another CA
  PoolOptions tls;
  tls.tls = true;
  tls.root_certificates_pem = server_ca;
  {
    PoolOptions o = tls;
    o.tls_identity = pki.identity("client");
    jina_net::Pool pool(o);
    pool.add_connection("d", M);
    auto r = send_to(pool, "d", "mtls-1");
    CHECK_MSG(answered_by(r, "mtls"), message_of(r));
    CHECK(r && r->targets.size() == 1 && r->targets[0].address == M &&
          pb::request_id(r->targets[0].body()) == std::string("mtls-1"));
    // grpcs:// says TLS per address (the pool's tls flag off)
    PoolOptions per_address = o;
    per_address.tls = false;
    jina_net::Pool p2(per_address);
    p2.add_connection("d", "grpcs://" + M);
    r = send_to(p2, "d", "mtls-2");
    CHECK_MSG(answered_by(r, "mtls"), message_of(r));
    CHECK(!catch_error([&] { p2.wait_ready(5s); }));
  }
  {
    // a TLS pool and a plaintext server: told in words, naming the address
    jina_net::Pool pool(tls);
    pool.add_connection("plain", A);
    auto r = send_to(pool, "plain", "tls-to-plaintext");
    CHECK_MSG(tls_failure(r, A, "does not speak TLS"), message_of(r));
    // a server whose certificate the pool does not trust (system roots only)
    PoolOptions system_roots;
    system_roots.tls = true;
    system_roots.tls_identity = pki.identity("client");
    jina_net::Pool p2(system_roots);
    p2.add_connection("d", M);
    r = send_to(p2, "d", "untrusted");
    CHECK_MSG(tls_failure(r, M, "not signed by a trusted root"), message_of(r));
  }
  {
    jina_net::Pool pool(tls);  // no identity
    pool.add_connection("d", M);
    auto r = send_to(pool, "d", "no-identity");
    CHECK_MSG(tls_failure(r, M, "client certificate"), message_of(r));
    CHECK_MSG(r && contains(r->error_message, M) && contains(r->error_message, "\"d\""), message_of(r));
    CHECK(r && r->targets.size() == 1 && r->targets[0].grpc_code == 14 && !r->targets[0].response);
    auto e = catch_error([&] { if (r) r->check(); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), M), code_of(e));
    // wait_ready says the same replica is not ready
    e = catch_error([&] { pool.wait_ready("d", 500ms); });
    CHECK_MSG(e && e->code() == JINA_NET_DEADLINE_EXCEEDED && contains(e->message(), M), code_of(e));
  }
  {
    PoolOptions o = tls;
    o.tls_identity = pki.identity("stranger");
    jina_net::Pool pool(o);
    pool.add_connection("d", M);
    auto r = send_to(pool, "d", "stranger");
    // Worded "the server refused the client's certificate" (the server's alert: unknown CA).
    CHECK_MSG(tls_failure(r, M, "the server"), message_of(r));
    CHECK_MSG(r && contains(r->error_message, "refused the client's certificate"), message_of(r));
  }
  {
    // bad identities are refused when the pool is made: a key that is not one, a chain that is not one
    PoolOptions o = tls;
    o.tls_identity = jina_net::TlsIdentity{pki.pem("client.pem"), pki.pem("client.pem")};
    auto e = catch_error([&] { jina_net::Pool p(o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "private key"), code_of(e));
    o.tls_identity = jina_net::TlsIdentity{pki.pem("client.key"), pki.pem("client.key")};
    e = catch_error([&] { jina_net::Pool p(o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "certificate chain"), code_of(e));
    o = tls;
    o.root_certificates_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    e = catch_error([&] { jina_net::Pool p(o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "root_certificates_pem"), code_of(e));
  }
  {
    // the one-shot helpers take the identity too
    jina_net::OneShotOptions o;
    o.tls = true;
    o.root_certificates_pem = server_ca;
    o.tls_identity = pki.identity("client");
    std::optional<jina_net::Response> resp;
    auto e = catch_error([&] { resp = jina_net::send_request_sync(pb::data_request("os-mtls"), M, o); });
    CHECK_MSG(!e && resp && resp->metadata_value("replica") == std::string("mtls") &&
                  pb::request_id(resp->body()) == std::string("os-mtls"),
              code_of(e));
    auto f = jina_net::send_request_async(pb::data_request("os-mtls-async"), M, o);
    auto r = wait_result(f);
    CHECK_MSG(answered_by(r, "mtls"), message_of(r));
    o.tls_identity.reset();
    e = catch_error([&] { jina_net::send_request_sync(pb::data_request("os-none"), M, o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), M) &&
                  contains(e->message(), "client certificate"),
              code_of(e));
    f = jina_net::send_request_async(pb::data_request("os-none-async"), M, o);
    r = wait_result(f);
    CHECK_MSG(r && r->status == JINA_NET_TLS_ERROR && contains(r->error_message, M), message_of(r));
  }

  // --- server-name override: svc.pem names only executor.jina.svc, the address is 127.0.0.1
  const std::string name = "executor.jina.svc";
  {
    jina_net::Pool pool(tls);
    pool.add_connection("by-ip", SVC);
    auto r = send_to(pool, "by-ip", "by-ip");
    CHECK_MSG(tls_failure(r, SVC, "not valid for the name"), message_of(r));
    // per address
    AddOptions named;
    named.tls_server_name = name;
    CHECK(pool.add_connection("named", SVC, named));
    CHECK(!pool.add_connection("named", SVC, named));  // already there
    r = send_to(pool, "named", "named");
    CHECK_MSG(answered_by(r, "svc"), message_of(r));
    // per address, on a head and on a shard
    AddOptions head = named;
    head.head = true;
    CHECK(pool.add_connection("hs", SVC, head));
    AddOptions shard = named;
    shard.shard_id = 2;
    CHECK(pool.add_connection("hs", SVC, shard));
    const auto table = pool.route_table();
    CHECK_MSG(route_of(table, "hs", std::nullopt) && route_of(table, "hs", 2u) && !route_of(table, "hs", 0u),
              pool.routes());
    SendOptions to_head;
    to_head.head = true;
    r = send_to(pool, "hs", "to-head", to_head);
    CHECK_MSG(answered_by(r, "svc") && r->targets[0].head, message_of(r));
    SendOptions to_shard;
    to_shard.shard_id = 2;
    r = send_to(pool, "hs", "to-shard", to_shard);
    CHECK_MSG(answered_by(r, "svc") && r->targets[0].shard_id == 2u, message_of(r));
    CHECK(pool.remove_connection("hs", SVC, true));
  }
  {
    // pool-wide
    PoolOptions o = tls;
    o.tls_server_name = name;
    jina_net::Pool pool(o);
    pool.add_connection("d", SVC);
    auto r = send_to(pool, "d", "pool-wide");
    CHECK_MSG(answered_by(r, "svc"), message_of(r));
    // the address's own name wins over the pool's
    AddOptions wrong;
    wrong.tls_server_name = "other.jina.svc";
    pool.add_connection("wrong", SVC, wrong);
    r = send_to(pool, "wrong", "wrong");
    CHECK_MSG(tls_failure(r, SVC, "not valid for the name"), message_of(r));
    o.tls_server_name = "other.jina.svc";
    jina_net::Pool p2(o);
    AddOptions right;
    right.tls_server_name = name;
    p2.add_connection("d", SVC, right);
    r = send_to(p2, "d", "right");
    CHECK_MSG(answered_by(r, "svc"), message_of(r));
  }
  {
    jina_net::OneShotOptions o;
    o.tls = true;
    o.root_certificates_pem = server_ca;
    o.tls_server_name = name;
    std::optional<jina_net::Response> resp;
    auto e = catch_error([&] { resp = jina_net::send_request_sync(pb::data_request("os-svc"), SVC, o); });
    CHECK_MSG(!e && resp && resp->metadata_value("replica") == std::string("svc"), code_of(e));
    o.tls_server_name.reset();
    e = catch_error([&] { jina_net::send_request_sync(pb::data_request("os-svc-ip"), SVC, o); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), SVC), code_of(e));
  }

  // --- unix: addresses (both spellings), plaintext
  {
    jina_net::Pool pool;
    CHECK(pool.add_connection("uds", "unix:" + socket_path));
    CHECK(pool.add_connection("uds3", "unix://" + socket_path));  // unix:///abs/path
    auto table = pool.route_table();
    CHECK_MSG(states_of(route_of(table, "uds")) == "unix:" + socket_path + "=idle", pool.routes());
    CHECK_MSG(states_of(route_of(table, "uds3")) == "unix://" + socket_path + "=idle", pool.routes());
    auto r = send_to(pool, "uds", "over-uds");
    CHECK_MSG(answered_by(r, "uds"), message_of(r));
    CHECK(r && r->targets.size() == 1 && r->targets[0].address == "unix:" + socket_path &&
          pb::request_id(r->targets[0].body()) == std::string("over-uds"));
    r = send_to(pool, "uds3", "over-uds3");
    CHECK_MSG(answered_by(r, "uds"), message_of(r));
    CHECK(!catch_error([&] { pool.wait_ready("uds", 5s); }));
    CHECK_MSG(states_of(route_of(pool.route_table(), "uds")) == "unix:" + socket_path + "=ready", pool.routes());
    CHECK(pool.remove_connection("uds", "unix:" + socket_path));
    // TLS is refused for a Unix socket when it is added
    PoolOptions with_tls;
    with_tls.tls = true;
    jina_net::Pool tls_pool(with_tls);
    auto e = catch_error([&] { tls_pool.add_connection("uds", "unix:" + socket_path); });
    CHECK_MSG(e && e->code() == JINA_NET_TLS_ERROR && contains(e->message(), "Unix"), code_of(e));
    // the one-shot helpers reach a unix: target too
    std::optional<jina_net::Response> resp;
    e = catch_error([&] { resp = jina_net::send_request_sync(pb::data_request("os-uds"), "unix:" + socket_path); });
    CHECK_MSG(!e && resp && resp->metadata_value("replica") == std::string("uds") &&
                  resp->address() == "unix:" + socket_path,
              code_of(e));
    // a socket nobody serves: the send fails naming it
    pool.add_connection("gone", "unix:" + pki.path("nobody.sock"));
    r = send_to(pool, "gone", "gone");
    CHECK_MSG(r && r->status == JINA_NET_RPC_ERROR && contains(r->error_message, pki.path("nobody.sock")),
              message_of(r));
  }

  // --- compression: counted in TCP bytes at the server (1 MiB of one letter compresses ~1000x)
  {
    const std::string big(1 << 20, 'j');
    const std::string request = pb::data_request(big);
    struct Case {
      const char *what;
      ServerProcess *server;
      std::string address, replica;
      Compression compression;
      bool request_small, response_small;
    };
    const Case cases[] = {
        {"none -> gz server", &gz, GZ, "gz", Compression::None, false, false},  // no accept-encoding: not compressed
        {"gzip -> gz server", &gz, GZ, "gz", Compression::Gzip, true, true},
        {"deflate -> df server", &df, DF, "df", Compression::Deflate, true, true},
        {"gzip -> df server", &df, DF, "df", Compression::Gzip, true, true},  // accepts deflate answers too
        {"deflate -> plain server", &victim, V, "victim", Compression::Deflate, true, false},
    };
    for (const Case &c : cases) {
      PoolOptions o;
      o.compression = c.compression;
      jina_net::Pool pool(o);
      pool.add_connection("d", c.address);
      const auto before = c.server->stats();
      auto f = pool.send("d", request);
      auto r = wait_result(f);
      const auto after = c.server->stats();
      CHECK_MSG(answered_by(r, c.replica.c_str()), std::string(c.what) + ": " + message_of(r));
      CHECK_MSG(r && r->targets.size() == 1 && pb::request_id(r->targets[0].body()) == big, c.what);
      CHECK_MSG(before && after, c.what);
      if (!before || !after) continue;
      const uint64_t read = after->read - before->read, written = after->written - before->written;
      const std::string counts = std::string(c.what) + ": read " + std::to_string(read) + ", written " +
                                 std::to_string(written);
      CHECK_MSG(c.request_small ? read < 64 * 1024 : read > big.size(), counts);
      CHECK_MSG(c.response_small ? written < 64 * 1024 : written > big.size(), counts);
    }
    // a pool made with jina's name of the compression
    PoolOptions o;
    o.compression = jina_net::compression_from_name("Gzip");
    jina_net::Pool pool(o);
    pool.add_connection("d", GZ);
    const auto before = gz.stats();
    auto r = send_to(pool, "d", big);
    const auto after = gz.stats();
    CHECK_MSG(answered_by(r, "gz") && pb::request_id(r->targets[0].body()) == big, message_of(r));
    CHECK(before && after && after->read - before->read < 64 * 1024);
    // the one-shot helpers
    jina_net::OneShotOptions os;
    os.compression = Compression::Deflate;
    const auto b2 = gz.stats();
    std::optional<jina_net::Response> resp;
    auto e = catch_error([&] { resp = jina_net::send_request_sync(request, GZ, os); });
    const auto a2 = gz.stats();
    CHECK_MSG(!e && resp && pb::request_id(resp->body()) == big, code_of(e));
    CHECK_MSG(b2 && a2 && a2->read - b2->read < 64 * 1024 && a2->written - b2->written < 64 * 1024,
              b2 && a2 ? std::to_string(a2->read - b2->read) + " / " + std::to_string(a2->written - b2->written)
                       : "no stats");
  }

  // --- dns:///localhost:PORT: a replica per address of the name, shown as ip:port
  {
    const std::string port = std::to_string(jn_servers_port(&g_servers, "a"));
    const std::string ipv4 = "127.0.0.1:" + port, ipv6 = "[::1]:" + port;
    PoolOptions o;
    o.fail_over = true;  // should localhost also resolve to ::1 (the server listens on 127.0.0.1 only)
    jina_net::Pool pool(o);
    CHECK(pool.add_connection("dns", "dns:///localhost:" + port, AddOptions{}));
    CHECK(pool.add_connection("dns2", "dns:localhost:" + port));
    for (const char *d : {"dns", "dns2"}) {
      const auto route = route_of(pool.route_table(), d);
      bool has_ipv4 = false, only_loopback = route.has_value();
      if (route) {
        for (const auto &rep : route->replicas) {
          has_ipv4 = has_ipv4 || rep.address == ipv4;
          only_loopback = only_loopback && (rep.address == ipv4 || rep.address == ipv6) &&
                          rep.state == ReplicaState::Idle;
        }
      }
      CHECK_MSG(has_ipv4 && only_loopback, std::string(d) + ": " + pool.routes());
    }
    auto r = send_to(pool, "dns", "via-dns");
    CHECK_MSG(answered_by(r, "a") && r->targets[0].address == ipv4, message_of(r));
    // removing the name removes its replicas
    CHECK(pool.remove_connection("dns", "dns:///localhost:" + port));
    const auto gone = route_of(pool.route_table(), "dns");
    CHECK_MSG(!gone || gone->replicas.empty(), pool.routes());
    // dns_refresh 0 (never re-resolve) is accepted
    PoolOptions never;
    never.dns_refresh = 0ms;
    jina_net::Pool p2(never);
    CHECK(p2.add_connection("dns", "dns:///localhost:" + port));
    r = send_to(p2, "dns", "via-dns-2");
    CHECK_MSG(answered_by(r, "a"), message_of(r));
  }

  // --- wait_ready and the replica states: idle -> ready; a dead address -> failing, named by the
  //     DEADLINE_EXCEEDED; a replica that dies -> failing
  {
    const std::string dead = dead_address();
    CHECK(!dead.empty());
    jina_net::Pool pool;
    pool.add_connection("live", A);
    pool.add_connection("live", B);
    pool.add_connection("victim", V);
    auto table = pool.route_table();
    CHECK_MSG(states_of(route_of(table, "live")) == A + "=idle," + B + "=idle", pool.routes());
    auto e = catch_error([&] { pool.wait_ready(5s); });
    CHECK_MSG(!e, code_of(e));
    table = pool.route_table();
    CHECK_MSG(states_of(route_of(table, "live")) == A + "=ready," + B + "=ready", pool.routes());
    CHECK_MSG(states_of(route_of(table, "victim")) == V + "=ready", pool.routes());
    CHECK(contains(pool.routes(), "live\tshard 0\t" + A + "," + B + "\tready,ready\n"));

    // a send alone makes a replica ready too
    jina_net::Pool fresh;
    fresh.add_connection("d", A);
    CHECK_MSG(states_of(route_of(fresh.route_table(), "d")) == A + "=idle", fresh.routes());
    auto r = send_to(fresh, "d", "first");
    CHECK_MSG(answered_by(r, "a"), message_of(r));
    CHECK_MSG(states_of(route_of(fresh.route_table(), "d")) == A + "=ready", fresh.routes());

    pool.add_connection("dead", dead);
    CHECK_MSG(states_of(route_of(pool.route_table(), "dead")) == dead + "=idle", pool.routes());
    e = catch_error([&] { pool.wait_ready("dead", 1000ms); });
    CHECK_MSG(e && e->code() == JINA_NET_DEADLINE_EXCEEDED && contains(e->message(), dead) &&
                  contains(e->message(), "\"dead\"") && contains(e->message(), "failing"),
              code_of(e));
    CHECK_MSG(states_of(route_of(pool.route_table(), "dead")) == dead + "=failing", pool.routes());
    // all deployments: only the one not ready is named
    e = catch_error([&] { pool.wait_ready(1000ms); });
    CHECK_MSG(e && e->code() == JINA_NET_DEADLINE_EXCEEDED && contains(e->message(), dead) &&
                  !contains(e->message(), A) && !contains(e->message(), V),
              code_of(e));
    // one deployment at a time: the live one is ready
    CHECK(!catch_error([&] { pool.wait_ready("live", 5s); }));

    // the victim dies: it is failing, named by wait_ready
    victim.kill_now();
    e = catch_error([&] { pool.wait_ready("victim", 1000ms); });
    CHECK_MSG(e && e->code() == JINA_NET_DEADLINE_EXCEEDED && contains(e->message(), V), code_of(e));
    CHECK_MSG(states_of(route_of(pool.route_table(), "victim")) == V + "=failing", pool.routes());
    CHECK_MSG(states_of(route_of(pool.route_table(), "live")) == A + "=ready," + B + "=ready", pool.routes());

    // a replica that accepts the connection but never answers (hostile:silent)
    pool.add_connection("silent", Z);
    e = catch_error([&] { pool.wait_ready("silent", 500ms); });
    CHECK_MSG(e && e->code() == JINA_NET_DEADLINE_EXCEEDED && contains(e->message(), Z), code_of(e));
    const auto silent = route_of(pool.route_table(), "silent");
    CHECK_MSG(silent && silent->replicas.size() == 1 && silent->replicas[0].state != ReplicaState::Ready,
              pool.routes());
  }
  {
    // not from a callback: JINA_NET_RUNTIME_ERROR (thrown inside the callback, caught there)
    jina_net::Pool pool;
    pool.add_connection("d", A);
    std::promise<jina_net_result> inside;
    auto got = inside.get_future();
    pool.send("d", pb::data_request("cb"), SendOptions{}, [&](const SendResult &) {
      try {
        pool.wait_ready(1s);
        inside.set_value(JINA_NET_OK);
      } catch (const Error &err) {
        inside.set_value(err.code());
      }
    });
    CHECK(got.wait_for(20s) == std::future_status::ready && got.get() == JINA_NET_RUNTIME_ERROR);
  }
  {
    // a caller-driven pool is driven by wait_ready itself
    PoolOptions o;
    o.caller_driven = true;
    jina_net::Pool pool(o);
    pool.add_connection("d", A);
    pool.add_connection("u", "unix:" + socket_path);
    CHECK(!catch_error([&] { pool.wait_ready(std::chrono::milliseconds::max()); }));
    CHECK_MSG(states_of(route_of(pool.route_table(), "d")) == A + "=ready", pool.routes());
    CHECK_MSG(states_of(route_of(pool.route_table(), "u")) == "unix:" + socket_path + "=ready", pool.routes());
    auto f = pool.send("u", pb::data_request("driven-uds"));
    for (int i = 0; i < 100 && f.wait_for(0s) != std::future_status::ready; ++i) pool.poll(100ms);
    auto r = wait_result(f, 1s);
    CHECK_MSG(answered_by(r, "uds"), message_of(r));
  }
}

// The misuse table of the README ("Misuse: the same result in every binding"): each case throws the
// Error with the code C returns for it (the same rows are in tests/c/test_c_abi.c,
// bindings/go/misuse_test.go and bindings/python/tests/test_misuse.py). C++ strings cannot be NULL:
// the NULL rows are the C and Python ones.
static void test_misuse() {
  std::printf("-- misuse table\n");
  using namespace std::chrono_literals;
  const std::string A = addr("a");
  jina_net::Pool pool;
  CHECK(pool.add_connection("enc", A));
  struct Row {
    const char *what;
    std::function<void()> misuse;
    jina_net_result code;
  };
  const Row rows[] = {
      {"a NUL in a string", [&] { pool.add_connection(std::string("e\0nc", 4), A); }, JINA_NET_INVALID_ARGUMENT},
      {"an empty deployment name", [&] { pool.add_connection("", A); }, JINA_NET_INVALID_ARGUMENT},
      {"a malformed address", [&] { pool.add_connection("enc", "not an address"); }, JINA_NET_INVALID_ADDRESS},
      {"an unknown deployment", [&] { pool.send("nope", pb::data_request("x")); }, JINA_NET_UNKNOWN_DEPLOYMENT},
      {"garbage request bytes", [&] { pool.send("enc", std::string("\xff\xff\xff", 3)); }, JINA_NET_INVALID_REQUEST},
      {"no request", [&] { pool.send("enc", std::vector<jina_net::Bytes>{}); }, JINA_NET_INVALID_ARGUMENT},
      {"an unknown compression",
       [&] {
         jina_net::PoolOptions o;
         o.compression = static_cast<jina_net::Compression>(3);
         jina_net::Pool p(o);
       },
       JINA_NET_INVALID_ARGUMENT},
      {"root certificates that are not PEM",
       [&] {
         jina_net::PoolOptions o;
         o.tls = true;
         o.root_certificates_pem = "not a pem";
         jina_net::Pool p(o);
       },
       JINA_NET_TLS_ERROR},
  };
  for (const Row &row : rows) {
    auto e = catch_error(row.misuse);
    CHECK_MSG(e && e->code() == row.code, std::string(row.what) + ": " + code_of(e));
  }
  auto e = catch_error([&] { pool.send("nope", pb::data_request("x")); });
  CHECK_MSG(e && contains(e->what(), "unknown deployment \"nope\""), e ? e->what() : "no error");
  // the pool works after all of it
  auto ok = pool.send("enc", pb::data_request("ok")).get();
  CHECK(ok.ok());

  // a closed pool: every call throws POOL_CLOSED; closing twice is fine
  pool.close();
  CHECK(!catch_error([&] { pool.close(); }));
  const Row closed[] = {
      {"add_connection", [&] { pool.add_connection("enc", A); }, JINA_NET_POOL_CLOSED},
      {"remove_connection", [&] { pool.remove_connection("enc", A); }, JINA_NET_POOL_CLOSED},
      {"send", [&] { pool.send("enc", pb::data_request("x")); }, JINA_NET_POOL_CLOSED},
      {"routes", [&] { (void)pool.routes(); }, JINA_NET_POOL_CLOSED},
      {"wait_ready", [&] { pool.wait_ready("enc", 100ms); }, JINA_NET_POOL_CLOSED},
  };
  for (const Row &row : closed) {
    auto err = catch_error(row.misuse);
    CHECK_MSG(err && err->code() == row.code, std::string(row.what) + " on a closed pool: " + code_of(err));
  }
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress survives a crash or a timeout
  const char *specs[] = {"--exit-on-stdin-eof", "echo=a", "echo=b", "echo=c", "echo=hx", "head:worker=h",
                         "echo=w", "unavailable=u", "error=e", "slow:3000=s", "flaky:2=f",
                         "hostile:silent=z", "unavailable=u2", "unavailable=u3", "echo=t"};
  const int n = static_cast<int>(sizeof specs / sizeof specs[0]);
  if (!tie_servers_to_this_process()) std::fprintf(stderr, "warning: cannot tie the test servers to this process\n");
  if (jn_servers_start(&g_servers, jn_test_server_binary(), specs, n) != 0) {
    std::fprintf(stderr, "cannot start the test servers (%s); run from the repository root after cargo build\n",
                 jn_test_server_binary());
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  CHECK(g_servers.count == n - 1);  // every spec but the flag
  // $JINA_NET_CPP_TESTS (e.g. "transport_options,transport") runs only the named tests (while
  // working on some); test.sh runs them all. runtime_shutdown stays last: nothing runs after it.
  const char *only = std::getenv("JINA_NET_CPP_TESTS");
  const std::string selected = only ? "," + std::string(only) + "," : std::string();
  const std::pair<const char *, void (*)()> tests[] = {
      {"basics", test_basics},
      {"hosts", test_hosts},
      {"bytes", test_bytes},
      {"pool_routing", test_pool_routing},
      {"failures", test_failures},
      {"callbacks", test_callbacks},
      {"cancel_and_close", test_cancel_and_close},
      {"owned", test_owned},
      {"callback_exceptions", test_callback_exceptions},
      {"request_metadata", test_request_metadata},
      {"caller_driven", test_caller_driven},
      {"callbacks_in_poll", test_callbacks_in_poll},
      {"head_control", test_head_control},
      {"oneshot", test_oneshot},
      {"tuning", test_tuning},
      {"transport_options", test_transport_options},
      {"transport", test_transport},
      {"resilient", test_resilient},
      {"gray", test_gray},
      {"misuse", test_misuse},
      {"runtime_shutdown", test_runtime_shutdown},
  };
  try {
    for (const auto &[name, test] : tests)
      if (selected.empty() || contains(selected, "," + std::string(name) + ",")) test();
  } catch (const std::exception &e) {
    check(false, "no unexpected exception", __FILE__, __LINE__, e.what());
  }
  // EOF on the servers' stdin first: with --exit-on-stdin-eof a server only exits once its stdin reader
  // has finished, so SIGTERM alone would leave jn_servers_stop waiting.
  if (g_server_stdin_writer >= 0) close(g_server_stdin_writer);
  jn_servers_stop(&g_servers);
  std::printf("%d passed, %d failed\n", g_passed.load(), g_failed.load());
  return g_failed.load() == 0 ? 0 : 1;
}
