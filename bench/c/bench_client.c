/*
 * The C ABI client of jina-net-bench: drives jina_net_pool_send with completion callbacks and keeps
 * `inflight` sends in flight (a semaphore of `inflight` slots: the main thread takes a slot and sends,
 * the callback, on a library runtime thread, records the latency and gives the slot back).
 *
 *   c-client mode=send addrs=A[,B...] polling=any|all payload=FILE inflight=N warmup_ms=W
 *            duration_ms=D max_requests=M [drive=semaphore|callback] [send=copy|owned] [pool=threads|driven|polled]
 *            [threads=N|cores] [keepalive=off] [busy_poll_us=N]
 *
 * drive=semaphore (default): the main thread sends, as a C gateway thread would.
 * drive=callback: the callback itself sends the next request (the main thread only starts N chains
 *   and waits for them to end), so no hop between the C thread and the library runtime is left; the
 *   difference to drive=semaphore is the cost of that hop (a futex wake-up each way).
 *
 * pool=driven: a caller-driven pool (caller_driven in its options): no library thread; the main thread
 *   runs the pool inside jina_net_pool_poll, where the callbacks fire. With drive=semaphore the main
 *   thread sends while a slot is free and polls when none is; with drive=callback it starts the
 *   chains and polls until they end. Either way no request crosses a thread.
 * pool=polled: library threads run the pool, its callbacks run in jina_net_pool_poll on the main
 *   thread (callbacks_in_poll): the main thread sends while a slot is free and polls when none is, as
 *   with pool=driven; a poll runs the callbacks of every send completed since the last one, and the
 *   library wakes the main thread once per burst of completions instead of a sem_post per callback.
 *
 * keepalive=off: the pool sends no HTTP/2 keepalive PINGs (keepalive_interval_ms = 0; the library's
 *   default sends them, the raw tonic clients do not): what the keepalive costs per request.
 *
 * busy_poll_us=N: the library workers' busy poll before they sleep (jina_net_runtime_set_busy_poll_us;
 *   default 100, 0 = off).
 *
 * polling=any: one replica (A) in shard 0; polling=all: A, B, ... are shards 0, 1, ... Prints one line
 *   RESULT n= errors= wall_s= user_s= sys_s= maxrss_kib= p50_us= p99_us= p999_us= mean_us=
 * (CPU: getrusage(RUSAGE_SELF) over the measured phase, all threads of this process; peak RSS:
 * VmHWM of /proc/self/status, not ru_maxrss, which Linux carries over fork + exec from the parent).
 * Compiled by `jina-net-bench run` with cc -O2 against the libjina_net.so of its profile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <time.h>

#include "jina_net.h"

#define MAX_SHARDS 64

static sem_t slots;
static size_t inflight = 1;
static size_t expected_targets = 1;
static size_t min_len = 0;
static atomic_bool recording;
static uint64_t *latencies; /* ns, one per successful measured send */
static uint64_t latency_cap;
static atomic_uint_fast64_t latency_count;
static atomic_uint_fast64_t error_count;
static atomic_flag first_error_taken = ATOMIC_FLAG_INIT;
static char first_error[512];

/* drive=callback: the phase the chains run in. */
static bool chained;
/* keepalive=off */
static bool keepalive_off;
/* send=owned: jina_net_pool_send_owned with the shared payload (not copied by the library). */
static bool owned;
/* The payload outlives every send, so giving it "back" is a no-op. */
static void keep_buffer(void *ctx, const uint8_t *data, size_t len) {
  (void)ctx;
  (void)data;
  (void)len;
}
static sem_t chains_done;
/* pool=driven: slots and finished chains are counted on the main thread, the only thread there is. */
static bool driven;
/* pool=polled: callbacks_in_poll; counted like pool=driven (the callbacks run on the main thread). */
static bool polled;
static jina_net_pool *driven_pool;
static size_t free_slots, chains_finished;
static void poll_once(void) {
  jina_net_result rc = jina_net_pool_poll(driven_pool, UINT64_MAX, NULL);
  if (rc != JINA_NET_OK) {
    fprintf(stderr, "c-client: jina_net_pool_poll: %s\n", jina_net_result_name(rc));
    exit(1);
  }
}
static void give_slot(void) {
  if (driven)
    free_slots++;
  else
    sem_post(&slots);
}
static void chain_done(void) {
  if (driven)
    chains_finished++;
  else
    sem_post(&chains_done);
}
static jina_net_pool *chain_pool;
static const jina_net_bytes *chain_request;
static uint32_t chain_polling;
static uint64_t chain_deadline, chain_max;
static atomic_uint_fast64_t chain_started;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_error(const char *what) {
  atomic_fetch_add(&error_count, 1);
  if (!atomic_flag_test_and_set(&first_error_taken)) snprintf(first_error, sizeof first_error, "%s", what);
}

static void on_complete(void *user_data, const jina_net_send_result *result);

/* drive=callback: sends the next request of a chain; false when the phase is over (or the send failed). */
static bool chain_next(void) {
  if (atomic_fetch_add(&chain_started, 1) >= chain_max) return false;
  uint64_t t = now_ns();
  if (t >= chain_deadline) return false;
  jina_net_result rc = jina_net_pool_send(chain_pool, JINA_NET_REQUEST_DATA, chain_request, 1, "bench", false,
                                          JINA_NET_NO_SHARD, chain_polling, NULL, 0, on_complete, (void *)(uintptr_t)t,
                                          NULL);
  if (rc != JINA_NET_OK) {
    note_error(jina_net_result_name(rc));
    return false;
  }
  return true;
}

/* user_data carries the send's start time (the library never dereferences it). */
static void on_complete(void *user_data, const jina_net_send_result *result) {
  uint64_t latency = now_ns() - (uint64_t)(uintptr_t)user_data;
  bool ok = result->status == JINA_NET_OK && result->targets_len == expected_targets;
  for (size_t i = 0; ok && i < result->targets_len; i++)
    ok = jina_net_send_result_target(result, i)->status == JINA_NET_OK &&
         jina_net_send_result_target(result, i)->response_len >= min_len;
  if (!ok) {
    note_error(result->status != JINA_NET_OK ? result->error_message : "short response or wrong target count");
  } else if (atomic_load_explicit(&recording, memory_order_relaxed)) {
    uint64_t i = atomic_fetch_add_explicit(&latency_count, 1, memory_order_relaxed);
    if (i < latency_cap) latencies[i] = latency;
  }
  if (chained) {
    if (!chain_next()) chain_done();
  } else {
    give_slot();
  }
}

static void take_slot(void) {
  if (driven) {
    while (free_slots == 0) poll_once();
    free_slots--;
    return;
  }
  while (sem_wait(&slots) != 0 && errno == EINTR) {
  }
}

/* One closed-loop phase; returns its wall time in seconds. */
static double phase(jina_net_pool *pool, const jina_net_bytes *request, uint32_t polling, uint64_t duration_ms,
                    uint64_t max_requests) {
  uint64_t t0 = now_ns(), deadline = t0 + duration_ms * 1000000u;
  if (chained) {
    chain_pool = pool;
    chain_request = request;
    chain_polling = polling;
    chain_deadline = deadline;
    chain_max = max_requests;
    atomic_store(&chain_started, 0);
    chains_finished = 0;
    for (size_t k = 0; k < inflight; k++)
      if (!chain_next()) chain_done();
    if (driven)
      while (chains_finished < inflight) poll_once();
    else
      for (size_t k = 0; k < inflight; k++)
        while (sem_wait(&chains_done) != 0 && errno == EINTR) {
        }
    return (double)(now_ns() - t0) / 1e9;
  }
  for (uint64_t i = 0; i < max_requests; i++) {
    take_slot();
    uint64_t t = now_ns();
    if (t >= deadline) {
      give_slot();
      break;
    }
    jina_net_result rc =
        owned ? jina_net_pool_send_owned(pool, JINA_NET_REQUEST_DATA, request, 1, keep_buffer, NULL, "bench", false,
                                         JINA_NET_NO_SHARD, polling, NULL, 0, on_complete, (void *)(uintptr_t)t, NULL)
              : jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, request, 1, "bench", false, JINA_NET_NO_SHARD, polling,
                                   NULL, 0, on_complete, (void *)(uintptr_t)t, NULL);
    if (rc != JINA_NET_OK) {
      char msg[400];
      jina_net_last_error_message(msg, sizeof msg);
      note_error(msg);
      give_slot();
      break;
    }
  }
  for (size_t k = 0; k < inflight; k++) take_slot(); /* drain: every send completed */
  double wall = (double)(now_ns() - t0) / 1e9;
  for (size_t k = 0; k < inflight; k++) give_slot();
  return wall;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *sorted, uint64_t n, double p) {
  if (n == 0) return 0;
  double r = p * (double)n;
  uint64_t rank = (uint64_t)r;
  if ((double)rank < r) rank++;
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (double)sorted[rank - 1] / 1e3;
}

/* VmHWM (peak resident set) of this process, KiB. */
static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

static double secs(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static const char *arg(int argc, char **argv, const char *key) {
  size_t k = strlen(key);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') return argv[i] + k + 1;
  fprintf(stderr, "c-client: missing %s=...\n", key);
  exit(2);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

int main(int argc, char **argv) {
  const char *polling_s = arg(argc, argv, "polling");
  uint32_t polling = strcmp(polling_s, "all") == 0 ? JINA_NET_SHARDS_ALL : JINA_NET_SHARDS_ANY;
  inflight = strtoull(arg(argc, argv, "inflight"), NULL, 10);
  if (inflight < 1) inflight = 1;
  uint64_t warmup_ms = strtoull(arg(argc, argv, "warmup_ms"), NULL, 10);
  uint64_t duration_ms = strtoull(arg(argc, argv, "duration_ms"), NULL, 10);
  uint64_t max_requests = strtoull(arg(argc, argv, "max_requests"), NULL, 10);
  size_t payload_len = 0;
  uint8_t *payload = read_file(arg(argc, argv, "payload"), &payload_len);
  if (!payload) {
    fprintf(stderr, "c-client: cannot read the payload\n");
    return 2;
  }
  min_len = payload_len;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "drive=callback") == 0) chained = true;
    else if (strcmp(argv[i], "send=owned") == 0) owned = true;
    else if (strcmp(argv[i], "pool=driven") == 0) driven = true;
    else if (strcmp(argv[i], "pool=polled") == 0) driven = polled = true;
    else if (strcmp(argv[i], "keepalive=off") == 0) keepalive_off = true;
    else if (strncmp(argv[i], "busy_poll_us=", 13) == 0) {
      jina_net_result rc = jina_net_runtime_set_busy_poll_us((uint32_t)strtoul(argv[i] + 13, NULL, 10));
      if (rc != JINA_NET_OK) {
        fprintf(stderr, "c-client: jina_net_runtime_set_busy_poll_us: %s\n", jina_net_result_name(rc));
        return 1;
      }
    } else if (strncmp(argv[i], "threads=", 8) == 0) {
      /* the library runtime's worker threads (jina_net_runtime_init), before the first pool */
      /* threads=cores: one per online core (the library's former default) */
      long n = strcmp(argv[i] + 8, "cores") == 0 ? sysconf(_SC_NPROCESSORS_ONLN) : strtol(argv[i] + 8, NULL, 10);
      jina_net_result rc = jina_net_runtime_init(n > 0 ? (uint32_t)n : 0);
      if (rc != JINA_NET_OK) {
        fprintf(stderr, "c-client: jina_net_runtime_init: %s\n", jina_net_result_name(rc));
        return 1;
      }
    }
  sem_init(&chains_done, 0, 0);

  jina_net_pool_options options;
  jina_net_pool_options_init(&options, sizeof options);
  options.caller_driven = driven && !polled;
  options.callbacks_in_poll = polled;
  /* keepalive=off: no HTTP/2 keepalive PINGs (the library's default sends them; raw tonic does not) */
  if (keepalive_off) options.keepalive_interval_ms = 0;
  jina_net_pool *pool = NULL;
  if (jina_net_pool_new(&options, &pool) != JINA_NET_OK) {
    fprintf(stderr, "c-client: jina_net_pool_new failed\n");
    return 1;
  }
  driven_pool = pool;
  char addrs[4096];
  snprintf(addrs, sizeof addrs, "%s", arg(argc, argv, "addrs"));
  size_t shards = 0;
  for (char *save = NULL, *a = strtok_r(addrs, ",", &save); a && shards < MAX_SHARDS;
       a = strtok_r(NULL, ",", &save)) {
    jina_net_result rc = jina_net_pool_add_connection(pool, "bench", a, false, (int64_t)shards, NULL);
    if (rc != JINA_NET_OK) {
      fprintf(stderr, "c-client: add_connection %s: %s\n", a, jina_net_result_name(rc));
      return 1;
    }
    shards++;
    if (polling == JINA_NET_SHARDS_ANY) break; /* ANY: one replica in shard 0 */
  }
  expected_targets = polling == JINA_NET_SHARDS_ALL ? shards : 1;

  latency_cap = max_requests < (1u << 24) ? max_requests : (1u << 24);
  latencies = malloc((size_t)(latency_cap ? latency_cap : 1) * sizeof *latencies);
  sem_init(&slots, 0, (unsigned)inflight);
  free_slots = inflight;
  jina_net_bytes request = {payload, payload_len};

  atomic_store(&recording, false);
  phase(pool, &request, polling, warmup_ms, UINT64_MAX);
  if (atomic_load(&error_count) > 0) fprintf(stderr, "warm-up error: %s\n", first_error);
  atomic_store(&error_count, 0);
  atomic_flag_clear(&first_error_taken);

  atomic_store(&recording, true);
  struct rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  double wall = phase(pool, &request, polling, duration_ms, max_requests);
  getrusage(RUSAGE_SELF, &after);
  atomic_store(&recording, false);

  uint64_t n = atomic_load(&latency_count);
  if (n > latency_cap) n = latency_cap;
  qsort(latencies, (size_t)n, sizeof *latencies, cmp_u64);
  double sum = 0;
  for (uint64_t i = 0; i < n; i++) sum += (double)latencies[i];
  uint64_t errors = atomic_load(&error_count);
  if (errors) fprintf(stderr, "error: %s\n", first_error);
  printf("RESULT n=%" PRIu64 " errors=%" PRIu64 " wall_s=%.6f user_s=%.6f sys_s=%.6f maxrss_kib=%ld p50_us=%.1f "
         "p99_us=%.1f p999_us=%.1f mean_us=%.1f\n",
         n, errors, wall, secs(after.ru_utime) - secs(before.ru_utime), secs(after.ru_stime) - secs(before.ru_stime),
         peak_rss_kib(), pct_us(latencies, n, 0.50), pct_us(latencies, n, 0.99), pct_us(latencies, n, 0.999),
         n ? sum / (double)n / 1e3 : 0.0);
  fflush(stdout);
  jina_net_pool_free(pool);
  jina_net_runtime_shutdown(2000);
  free(latencies);
  free(payload);
  return 0;
}
