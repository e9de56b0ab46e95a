/*
 * The gRPC C++ client of jina-net-bench: grpc++ (Debian's libgrpc++-dev, 1.51) with its callback API
 * on one channel, against the same echo worker and with the same payload file as every other client.
 *
 *   grpc-cpp-client mode=send addrs=A[,B...] polling=any|all payload=FILE inflight=N warmup_ms=W
 *                   duration_ms=D max_requests=M [stub=generated|generic]
 *
 * stub=generated (default): the stub protoc's grpc_cpp_plugin generated from proto/jina.proto
 *   (`JinaSingleDataRequestRPC::Stub::async()->process_single_data(ctx, &req, &resp, callback)`); the
 *   request is a DataRequestProto parsed once from the payload file and serialized by gRPC for every
 *   call (as a C++ gateway holding the message would send it), the response is parsed into a
 *   DataRequestProto.
 * stub=generic: grpc::GenericStub (TemplatedGenericStub<ByteBuffer, ByteBuffer>) with the callback
 *   UnaryCall on "/jina.JinaSingleDataRequestRPC/process_single_data": the payload bytes are sent as
 *   they are (one ByteBuffer built once, shared by every call), the response stays bytes — what the
 *   other clients of the benchmark do.
 *
 * Closed loop, as gRPC's own callback-API qps client: `inflight` chains, each starting its next call
 * from the completion callback of the previous one (on a gRPC callback thread). polling=all: one
 * channel per address (shard); a send is one call per shard and completes when all of them did.
 * Every response is checked: status OK and body size >= request size (generated: the parsed
 * response's ByteSizeLong). Prints the RESULT line of the other clients (CPU: getrusage(RUSAGE_SELF)
 * over the measured phase; peak RSS: VmHWM of /proc/self/status). Built by `jina-net-bench run`
 * (protoc + grpc_cpp_plugin into target/bench/grpc-cpp/, then g++ -O2 with pkg-config grpc++ protobuf).
 */
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "jina.grpc.pb.h"

namespace {

const char *const kMethod = "/jina.JinaSingleDataRequestRPC/process_single_data";

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

/// One closed-loop phase: the chains, their shared counters, and the latencies of measured sends.
struct Phase {
  uint64_t deadline_ns = 0;
  uint64_t max_requests = 0;
  bool recording = false;
  std::atomic<uint64_t> started{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t chains_left = 0;
  std::vector<uint64_t> latencies;  // guarded by mu
  uint64_t errors = 0;              // guarded by mu
  std::string first_error;          // guarded by mu

  void record(uint64_t latency_ns, const std::string &error) {
    std::lock_guard<std::mutex> lock(mu);
    if (!error.empty()) {
      ++errors;
      if (first_error.empty()) first_error = error;
    } else if (recording) {
      latencies.push_back(latency_ns);
    }
  }
  void chain_done() {
    std::lock_guard<std::mutex> lock(mu);
    if (--chains_left == 0) cv.notify_all();
  }
};

class Client {
 public:
  Client(const std::vector<std::string> &addrs, const std::string &payload, bool generic)
      : generic_(generic), min_len_(payload.size()) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);  // jina's options: unlimited message sizes
    args.SetMaxSendMessageSize(-1);
    for (const std::string &a : addrs) {
      // Channels to different addresses are distinct anyway; one channel per shard, as the others.
      auto channel = grpc::CreateCustomChannel(a, grpc::InsecureChannelCredentials(), args);
      stubs_.push_back(jina::JinaSingleDataRequestRPC::NewStub(channel));
      generic_stubs_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    if (!request_.ParseFromString(payload)) {
      std::fprintf(stderr, "grpc-cpp-client: the payload is not a DataRequestProto\n");
      std::exit(2);
    }
    grpc::Slice slice(payload.data(), payload.size());
    request_bytes_ = grpc::ByteBuffer(&slice, 1);
  }

  /// Runs `inflight` chains until `duration_ms` passed or `max_requests` sends started; wall seconds.
  double run(Phase &phase, size_t inflight, uint64_t duration_ms) {
    const uint64_t t0 = now_ns();
    phase.deadline_ns = t0 + duration_ms * 1000000ull;
    phase.chains_left = inflight;
    for (size_t i = 0; i < inflight; ++i) next(phase);
    std::unique_lock<std::mutex> lock(phase.mu);
    phase.cv.wait(lock, [&] { return phase.chains_left == 0; });
    return static_cast<double>(now_ns() - t0) / 1e9;
  }

 private:
  /// One send: a call per shard; the last one to complete records and starts the chain's next send.
  struct Send {
    Client *client;
    Phase *phase;
    uint64_t start_ns;
    std::atomic<size_t> pending;
    std::mutex mu;
    std::string error;
    struct Call {
      grpc::ClientContext ctx;
      jina::DataRequestProto response;
      grpc::ByteBuffer response_bytes;
    };
    std::vector<Call> calls;
    Send(Client *c, Phase *p, size_t n) : client(c), phase(p), start_ns(now_ns()), pending(n), calls(n) {}

    void done(size_t i, const grpc::Status &status) {
      std::string why;
      if (!status.ok()) {
        why = "gRPC status " + std::to_string(status.error_code()) + ": " + status.error_message();
      } else {
        const size_t len = client->generic_ ? calls[i].response_bytes.Length() : calls[i].response.ByteSizeLong();
        if (len < client->min_len_)
          why = "response of " + std::to_string(len) + " bytes, expected >= " + std::to_string(client->min_len_);
      }
      if (!why.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.empty()) error = why;
      }
      if (pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      const uint64_t latency = now_ns() - start_ns;
      Client *c = client;
      Phase *p = phase;
      p->record(latency, error);
      delete this;
      c->next(*p);
    }
  };

  /// Starts the next send of a chain, or ends the chain when the phase is over.
  void next(Phase &phase) {
    if (phase.started.fetch_add(1, std::memory_order_relaxed) >= phase.max_requests || now_ns() >= phase.deadline_ns) {
      phase.chain_done();
      return;
    }
    const size_t n = stubs_.size();
    auto *send = new Send(this, &phase, n);
    for (size_t i = 0; i < n; ++i) {
      Send::Call &call = send->calls[i];
      auto on_done = [send, i](grpc::Status status) { send->done(i, status); };
      if (generic_) {
        generic_stubs_[i]->UnaryCall(&call.ctx, kMethod, grpc::StubOptions(), &request_bytes_, &call.response_bytes,
                                     on_done);
      } else {
        stubs_[i]->async()->process_single_data(&call.ctx, &request_, &call.response, on_done);
      }
    }
  }

  bool generic_;
  size_t min_len_;
  std::vector<std::unique_ptr<jina::JinaSingleDataRequestRPC::Stub>> stubs_;
  std::vector<std::unique_ptr<grpc::GenericStub>> generic_stubs_;
  jina::DataRequestProto request_;
  grpc::ByteBuffer request_bytes_;
};

const char *arg(int argc, char **argv, const char *key, const char *fallback = nullptr) {
  const size_t k = std::strlen(key);
  for (int i = 1; i < argc; i++)
    if (std::strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') return argv[i] + k + 1;
  if (fallback) return fallback;
  std::fprintf(stderr, "grpc-cpp-client: missing %s=...\n", key);
  std::exit(2);
}

double pct_us(const std::vector<uint64_t> &sorted, double p) {
  const size_t n = sorted.size();
  if (n == 0) return 0;
  const double r = p * static_cast<double>(n);
  size_t rank = static_cast<size_t>(r);
  if (static_cast<double>(rank) < r) rank++;
  rank = std::clamp<size_t>(rank, 1, n);
  return static_cast<double>(sorted[rank - 1]) / 1e3;
}

long peak_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

double secs(const timeval &t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }

}  // namespace

int main(int argc, char **argv) {
  const std::string polling = arg(argc, argv, "polling");
  const std::string stub = arg(argc, argv, "stub", "generated");
  if (stub != "generated" && stub != "generic") {
    std::fprintf(stderr, "grpc-cpp-client: stub must be generated or generic\n");
    return 2;
  }
  size_t inflight = std::strtoull(arg(argc, argv, "inflight"), nullptr, 10);
  if (inflight < 1) inflight = 1;
  const uint64_t warmup_ms = std::strtoull(arg(argc, argv, "warmup_ms"), nullptr, 10);
  const uint64_t duration_ms = std::strtoull(arg(argc, argv, "duration_ms"), nullptr, 10);
  const uint64_t max_requests = std::strtoull(arg(argc, argv, "max_requests"), nullptr, 10);
  std::ifstream in(arg(argc, argv, "payload"), std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "grpc-cpp-client: cannot read the payload\n");
    return 2;
  }
  const std::string payload((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> addrs;
  std::stringstream list(arg(argc, argv, "addrs"));
  for (std::string a; std::getline(list, a, ',');)
    if (!a.empty()) addrs.push_back(a);
  if (addrs.empty()) {
    std::fprintf(stderr, "grpc-cpp-client: no address\n");
    return 2;
  }
  if (polling != "all") addrs.resize(1);  // ANY: the one replica of shard 0

  Client client(addrs, payload, stub == "generic");
  {
    static Phase warm;
    warm.max_requests = UINT64_MAX;
    client.run(warm, inflight, warmup_ms);
    if (!warm.first_error.empty()) std::fprintf(stderr, "warm-up error: %s\n", warm.first_error.c_str());
  }
  static Phase m;  // static: a callback thread may still be leaving chain_done() when run() returns
  m.max_requests = max_requests;
  m.recording = true;
  m.latencies.reserve(std::min<uint64_t>(max_requests, 1u << 24));
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const double wall = client.run(m, inflight, duration_ms);
  getrusage(RUSAGE_SELF, &after);
  if (!m.first_error.empty()) std::fprintf(stderr, "error: %s\n", m.first_error.c_str());
  std::sort(m.latencies.begin(), m.latencies.end());
  double sum = 0;
  for (uint64_t l : m.latencies) sum += static_cast<double>(l);
  const size_t n = m.latencies.size();
  std::printf(
      "RESULT n=%zu errors=%llu wall_s=%.6f user_s=%.6f sys_s=%.6f maxrss_kib=%ld p50_us=%.1f p99_us=%.1f "
      "p999_us=%.1f mean_us=%.1f\n",
      n, static_cast<unsigned long long>(m.errors), wall, secs(after.ru_utime) - secs(before.ru_utime),
      secs(after.ru_stime) - secs(before.ru_stime), peak_rss_kib(), pct_us(m.latencies, 0.50),
      pct_us(m.latencies, 0.99), pct_us(m.latencies, 0.999), n ? sum / static_cast<double>(n) / 1e3 : 0.0);
  std::fflush(stdout);
  return 0;
}
