/*
 * Exercises every function of include/jina_net.h against real test servers (the project's
 * jina-net-test-server), from C. Built and run by tests/c/run.sh: with AddressSanitizer and
 * UndefinedBehaviorSanitizer against libjina_net.so, and under valgrind against libjina_net.a.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../include/jina_net.h"
#include "mini_proto.h"
#include "test_servers.h"

static int passed, failed;
#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (cond) {                                                                     \
      passed++;                                                                     \
    } else {                                                                        \
      failed++;                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                               \
  } while (0)
#define CHECK_OK(call)                                                                         \
  do {                                                                                         \
    jina_net_result r_ = (call);                                                               \
    if (r_ != JINA_NET_OK) {                                                                   \
      char m_[512];                                                                            \
      jina_net_last_error_message(m_, sizeof m_);                                              \
      fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,                       \
              jina_net_result_name((uint32_t)r_), m_);                                         \
    }                                                                                          \
    CHECK(r_ == JINA_NET_OK);                                                                  \
  } while (0)

/* ---- a callback collector ---- */

#define MAX_TARGETS 8
typedef struct target_copy {
  jina_net_result status;
  int32_t grpc_code;
  int64_t shard_id;
  bool head;
  char address[64];
  char error_message[512];
  char request_id[64];
  char executor[64];
  char replica[64];
  char endpoint[64];
  char request_count[16];
  char is_error[16];
  char seen_authorization[64];
  char seen_trace_bin[64];
} target_copy;

typedef struct completion {
  uint64_t send_id;
  jina_net_result status;
  char error_message[512];
  size_t targets_len;
  target_copy targets[MAX_TARGETS];
  jina_net_response *retained;
} completion;

typedef struct collector {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int count;
  int retain; /* retain target 0's response */
  completion done[64];
} collector;

static void collector_init(collector *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
}

static void collector_destroy(collector *c) {
  for (int i = 0; i < c->count && i < 64; i++) jina_net_response_free(c->done[i].retained);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
}

static void copy_meta(const jina_net_target_result *t, const char *key, char *buf, size_t cap) {
  buf[0] = 0;
  for (size_t i = 0; i < t->metadata_len; i++) {
    const jina_net_metadata *m = jina_net_target_result_metadata(t, i);
    if (strcmp(m->key, key) == 0) {
      size_t n = m->value_len < cap - 1 ? m->value_len : cap - 1;
      memcpy(buf, m->value, n);
      buf[n] = 0;
    }
  }
}

static void on_done(void *user_data, const jina_net_send_result *r) {
  collector *c = (collector *)user_data;
  pthread_mutex_lock(&c->mu);
  if (c->count < 64) {
    completion *d = &c->done[c->count];
    memset(d, 0, sizeof *d);
    d->send_id = r->send_id;
    d->status = r->status;
    snprintf(d->error_message, sizeof d->error_message, "%s", r->error_message);
    d->targets_len = r->targets_len;
    for (size_t i = 0; i < r->targets_len && i < MAX_TARGETS; i++) {
      const jina_net_target_result *t = jina_net_send_result_target(r, i);
      target_copy *tc = &d->targets[i];
      tc->status = t->status;
      tc->grpc_code = t->grpc_code;
      tc->shard_id = t->shard_id;
      tc->head = t->head;
      snprintf(tc->address, sizeof tc->address, "%s", t->address);
      snprintf(tc->error_message, sizeof tc->error_message, "%s", t->error_message);
      if (t->response) {
        mp_request_id(t->response, t->response_len, tc->request_id, sizeof tc->request_id);
        mp_last_executor(t->response, t->response_len, tc->executor, sizeof tc->executor);
      }
      copy_meta(t, "replica", tc->replica, sizeof tc->replica);
      copy_meta(t, "endpoint", tc->endpoint, sizeof tc->endpoint);
      copy_meta(t, "request-count", tc->request_count, sizeof tc->request_count);
      copy_meta(t, "is-error", tc->is_error, sizeof tc->is_error);
      copy_meta(t, "seen-authorization", tc->seen_authorization, sizeof tc->seen_authorization);
      copy_meta(t, "seen-trace-bin", tc->seen_trace_bin, sizeof tc->seen_trace_bin);
    }
    if (c->retain && r->targets_len > 0 && jina_net_send_result_target(r, 0)->status == JINA_NET_OK)
      jina_net_send_result_retain_response(r, 0, &d->retained);
  }
  c->count++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* Waits until `n` callbacks fired (20 s at most); returns the count seen. */
static int collector_wait(collector *c, int n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 20;
  pthread_mutex_lock(&c->mu);
  while (c->count < n) {
    if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) != 0) break;
  }
  int count = c->count;
  pthread_mutex_unlock(&c->mu);
  return count;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static jina_net_result send_one(jina_net_pool *pool, const char *id, const char *deployment, bool head,
                                int64_t shard, uint32_t polling, const char *endpoint, collector *c,
                                uint64_t *send_id) {
  uint8_t buf[256];
  size_t n = mp_data_request(buf, id);
  jina_net_bytes req = {buf, n};
  return jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, &req, 1, deployment, head, shard, polling, endpoint, 0,
                            on_done, c, send_id);
}

static void last_error(char *buf, size_t cap) { jina_net_last_error_message(buf, cap); }

/* The misuse table of the README ("Misuse: the same result in every binding"): each case returns the
 * code the C++, Go and Python bindings give for it (bindings/cpp/test_jina_net.cpp test_misuse,
 * bindings/go/misuse_test.go, bindings/python/tests/test_misuse.py). */
static void test_misuse_table(const jn_servers *s) {
  printf("-- misuse table\n");
  const char *a = jn_servers_address(s, "a");
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "enc", a, false, JINA_NET_NO_SHARD, NULL));
  collector c;
  collector_init(&c);
  char msg[512];
  uint8_t buf[256];
  jina_net_bytes req = {buf, mp_data_request(buf, "x")};
  const uint8_t garbage[] = {0xff, 0xff, 0xff};
  jina_net_bytes bad = {garbage, sizeof garbage};
  /* NULL arguments */
  CHECK(jina_net_pool_add_connection(pool, NULL, a, false, JINA_NET_NO_SHARD, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_add_connection(pool, "enc", NULL, false, JINA_NET_NO_SHARD, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, &req, 1, NULL, false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY,
                           NULL, 0, on_done, &c, NULL) == JINA_NET_NULL_ARGUMENT);
  /* an empty deployment name (C cannot pass a NUL inside a string: that row is the other bindings') */
  CHECK(jina_net_pool_add_connection(pool, "", a, false, JINA_NET_NO_SHARD, NULL) == JINA_NET_INVALID_ARGUMENT);
  /* a malformed address */
  CHECK(jina_net_pool_add_connection(pool, "enc", "not an address", false, JINA_NET_NO_SHARD, NULL) ==
        JINA_NET_INVALID_ADDRESS);
  /* an unknown deployment, said as unknown */
  CHECK(send_one(pool, "x", "nope", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL) ==
        JINA_NET_UNKNOWN_DEPLOYMENT);
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "unknown deployment \"nope\"") != NULL);
  /* garbage request bytes, no request */
  CHECK(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, &bad, 1, "enc", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY,
                           NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_REQUEST);
  CHECK(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, &req, 0, "enc", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY,
                           NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_ARGUMENT);
  /* bad option values */
  jina_net_pool_options o;
  CHECK_OK(jina_net_pool_options_init(&o, sizeof o));
  o.compression = 3;
  jina_net_pool *other = NULL;
  CHECK(jina_net_pool_new(&o, &other) == JINA_NET_INVALID_ARGUMENT && other == NULL);
  CHECK_OK(jina_net_pool_options_init(&o, sizeof o));
  const char not_pem[] = "not a pem";
  o.tls = true;
  o.root_certificates_pem = (const uint8_t *)not_pem;
  o.root_certificates_pem_len = strlen(not_pem);
  CHECK(jina_net_pool_new(&o, &other) == JINA_NET_TLS_ERROR && other == NULL);
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "root_certificates_pem") != NULL);
  CHECK(c.count == 0); /* nothing refused completed */
  /* the pool works after all of it */
  CHECK_OK(send_one(pool, "ok", "enc", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 1) && c.done[0].status == JINA_NET_OK);

  /* a closed pool: every call is POOL_CLOSED; closing twice is fine */
  CHECK_OK(jina_net_pool_close(pool));
  CHECK_OK(jina_net_pool_close(pool));
  CHECK(jina_net_pool_add_connection(pool, "enc", a, false, JINA_NET_NO_SHARD, NULL) == JINA_NET_POOL_CLOSED);
  CHECK(jina_net_pool_remove_connection(pool, "enc", a, false, JINA_NET_NO_SHARD, NULL) == JINA_NET_POOL_CLOSED);
  CHECK(send_one(pool, "x", "enc", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL) ==
        JINA_NET_POOL_CLOSED);
  char *routes = NULL;
  CHECK(jina_net_pool_routes(pool, &routes) == JINA_NET_POOL_CLOSED && routes == NULL);
  CHECK(jina_net_pool_wait_ready(pool, "enc", 100) == JINA_NET_POOL_CLOSED);
  jina_net_pool_free(pool);
  jina_net_pool_free(NULL);
  CHECK(c.count == 1);
  collector_destroy(&c);
}

/* ---- tests ---- */

static void test_version_and_runtime_init(void) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", JINA_NET_VERSION_MAJOR, JINA_NET_VERSION_MINOR,
           JINA_NET_VERSION_PATCH);
  CHECK(strcmp(jina_net_version(), expected) == 0);
  CHECK(sizeof(jina_net_result) == 4); /* a fixed-width result type */
  CHECK(jina_net_runtime_init(0) == JINA_NET_INVALID_ARGUMENT);
  CHECK_OK(jina_net_runtime_init(2)); /* before first use */
  /* busy polling: 0 (off) to 10000 us, any time (also once the runtime runs: test_routing sets it) */
  CHECK(jina_net_runtime_set_busy_poll_us(10001) == JINA_NET_INVALID_ARGUMENT);
  CHECK_OK(jina_net_runtime_set_busy_poll_us(0));
  CHECK_OK(jina_net_runtime_set_busy_poll_us(100));
  CHECK(strcmp(jina_net_result_name(JINA_NET_NO_REPLICAS), "JINA_NET_NO_REPLICAS") == 0);
  CHECK(strcmp(jina_net_result_name(4242), "JINA_NET_UNKNOWN_RESULT") == 0);
}

static void test_routing(const jn_servers *s) {
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool));
  CHECK(jina_net_runtime_init(3) == JINA_NET_ALREADY_STARTED);
  /* the routing below runs with the longest busy poll the ABI takes: each answer ends a poll */
  CHECK_OK(jina_net_runtime_set_busy_poll_us(10000));
  bool added = false;
  CHECK_OK(jina_net_pool_add_connection(pool, "enc", jn_servers_address(s, "a"), false, JINA_NET_NO_SHARD, &added));
  CHECK(added);
  CHECK_OK(jina_net_pool_add_connection(pool, "enc", jn_servers_address(s, "a"), false, 0, &added));
  CHECK(!added);
  CHECK_OK(jina_net_pool_add_connection(pool, "enc", jn_servers_address(s, "b"), false, 0, NULL));
  CHECK_OK(jina_net_pool_add_connection(pool, "enc", jn_servers_address(s, "c"), false, 1, NULL));
  CHECK_OK(jina_net_pool_add_connection(pool, "enc", jn_servers_address(s, "h"), true, JINA_NET_NO_SHARD, NULL));

  char *routes = NULL;
  CHECK_OK(jina_net_pool_routes(pool, &routes));
  CHECK(routes && strstr(routes, "enc\thead\t") && strstr(routes, "enc\tshard 1\t"));
  jina_net_string_free(routes);

  collector c;
  collector_init(&c);
  /* round robin over shard 0's two replicas */
  for (int i = 0; i < 4; i++) {
    char id[16];
    snprintf(id, sizeof id, "rr%d", i);
    CHECK_OK(send_one(pool, id, "enc", false, 0, JINA_NET_SHARDS_ANY, "/index", &c, NULL));
    CHECK(collector_wait(&c, i + 1) == i + 1);
  }
  CHECK(strcmp(c.done[0].targets[0].replica, "a") == 0);
  CHECK(strcmp(c.done[1].targets[0].replica, "b") == 0);
  CHECK(strcmp(c.done[2].targets[0].replica, "a") == 0);
  CHECK(strcmp(c.done[3].targets[0].replica, "b") == 0);
  CHECK(strcmp(c.done[0].targets[0].executor, "a") == 0);
  CHECK(strcmp(c.done[0].targets[0].request_id, "rr0") == 0);
  CHECK(strcmp(c.done[0].targets[0].endpoint, "/index") == 0);
  CHECK(strcmp(c.done[0].targets[0].address, jn_servers_address(s, "a")) == 0);
  CHECK(c.done[0].status == JINA_NET_OK && c.done[0].error_message[0] == 0);

  /* ALL: one target per shard */
  CHECK_OK(send_one(pool, "all", "enc", true, 5, JINA_NET_SHARDS_ALL, NULL, &c, NULL));
  CHECK(collector_wait(&c, 5) == 5);
  CHECK(c.done[4].targets_len == 2);
  CHECK(c.done[4].targets[0].shard_id == 0 && c.done[4].targets[1].shard_id == 1);
  CHECK(strcmp(c.done[4].targets[1].replica, "c") == 0);

  /* head */
  CHECK_OK(send_one(pool, "to-head", "enc", true, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 6) == 6);
  CHECK(c.done[5].targets[0].head && c.done[5].targets[0].shard_id == -1);
  CHECK(strcmp(c.done[5].targets[0].replica, "h") == 0);

  /* several requests -> one process_data call; retain the response beyond the callback */
  uint8_t b1[64], b2[64], b3[64];
  jina_net_bytes three[3] = {{b1, mp_data_request(b1, "m1")}, {b2, mp_data_request(b2, "m2")},
                             {b3, mp_data_request(b3, "m3")}};
  c.retain = 1;
  CHECK_OK(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, three, 3, "enc", false, 1, JINA_NET_SHARDS_ANY, NULL,
                              5000, on_done, &c, NULL));
  CHECK(collector_wait(&c, 7) == 7);
  c.retain = 0;
  CHECK(strcmp(c.done[6].targets[0].request_count, "3") == 0);
  CHECK(c.done[6].retained != NULL);
  if (c.done[6].retained) {
    const uint8_t *body = NULL;
    size_t len = 0;
    CHECK_OK(jina_net_response_body(c.done[6].retained, &body, &len));
    char id[16];
    CHECK(mp_request_id(body, len, id, sizeof id) == 0 && strcmp(id, "m1") == 0);
    CHECK(strcmp(jina_net_response_address(c.done[6].retained), jn_servers_address(s, "c")) == 0);
    CHECK(jina_net_response_metadata_count(c.done[6].retained) >= 3);
  }

  /* remove */
  bool removed = false;
  CHECK_OK(jina_net_pool_remove_connection(pool, "enc", jn_servers_address(s, "a"), false, 0, &removed));
  CHECK(removed);
  CHECK_OK(jina_net_pool_remove_connection(pool, "enc", jn_servers_address(s, "a"), false, 0, &removed));
  CHECK(!removed);
  CHECK_OK(send_one(pool, "after-remove", "enc", false, 0, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 8) == 8);
  CHECK(strcmp(c.done[7].targets[0].replica, "b") == 0);

  jina_net_pool_free(pool);
  collector_destroy(&c);
  CHECK_OK(jina_net_runtime_set_busy_poll_us(100)); /* the default again */
}

static void test_failures(const jn_servers *s) {
  jina_net_pool_options opts;
  jina_net_pool_options_init(&opts, sizeof opts);
  CHECK(opts.max_attempts == 3 && opts.default_timeout_ms == 0 && !opts.tls && opts.root_certificates_pem == NULL);
  CHECK(!opts.fail_over && opts.initial_backoff_ms == 0 && opts.eject_after_failures == 0); /* jina's behaviour */
  jina_net_pool_options resilient;
  jina_net_pool_options_init_resilient(&resilient, sizeof resilient);
  CHECK(resilient.fail_over && resilient.backoff_multiplier == 2.0 && resilient.eject_after_failures == 1);
  CHECK(resilient.max_ejection_percent == 50 && resilient.base_ejection_ms == 100 && resilient.max_ejection_ms == 800);
  /* long enough for 3 attempts at "down" under valgrind on a busy machine; "slow" answers after 5 s */
  opts.default_timeout_ms = 2000;
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(&opts, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "down", jn_servers_address(s, "u"), false, JINA_NET_NO_SHARD, NULL));
  CHECK_OK(jina_net_pool_add_connection(pool, "boom", jn_servers_address(s, "e"), false, JINA_NET_NO_SHARD, NULL));
  CHECK_OK(jina_net_pool_add_connection(pool, "slow", jn_servers_address(s, "s"), false, JINA_NET_NO_SHARD, NULL));
  collector c;
  collector_init(&c);

  CHECK_OK(send_one(pool, "x", "down", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK(c.done[0].status == JINA_NET_RPC_ERROR);
  if (c.done[0].status != JINA_NET_RPC_ERROR) fprintf(stderr, "  (got: %s)\n", c.done[0].error_message);
  CHECK(c.done[0].targets[0].grpc_code == 14);
  CHECK(strstr(c.done[0].error_message, "\"down\"") && strstr(c.done[0].error_message, jn_servers_address(s, "u")));
  CHECK(strstr(c.done[0].error_message, "after 3 attempts") != NULL);

  /* executor error: in-band, OK at the gRPC level, is-error trailer */
  CHECK_OK(send_one(pool, "x", "boom", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 2) == 2);
  CHECK(c.done[1].status == JINA_NET_OK);
  CHECK(strcmp(c.done[1].targets[0].is_error, "true") == 0);

  /* deadline from the pool's default */
  CHECK_OK(send_one(pool, "x", "slow", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 3) == 3);
  CHECK(c.done[2].status == JINA_NET_DEADLINE_EXCEEDED);
  CHECK(c.done[2].targets[0].grpc_code == 4);

  /* cancel */
  jina_net_pool *pool2 = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool2));
  CHECK_OK(jina_net_pool_add_connection(pool2, "slow", jn_servers_address(s, "s"), false, JINA_NET_NO_SHARD, NULL));
  uint64_t id = 0;
  CHECK_OK(send_one(pool2, "c", "slow", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, &id));
  CHECK(id != 0);
  sleep_ms(50);
  CHECK_OK(jina_net_pool_cancel(pool2, id));
  CHECK(jina_net_pool_cancel(pool2, id) == JINA_NET_NOT_FOUND);
  CHECK(collector_wait(&c, 4) == 4);
  CHECK(c.done[3].status == JINA_NET_CANCELLED && c.done[3].send_id == id);

  /* close with a pending send: completes with POOL_CLOSED, once */
  CHECK_OK(send_one(pool2, "p", "slow", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  sleep_ms(50);
  CHECK_OK(jina_net_pool_close(pool2));
  CHECK(collector_wait(&c, 5) == 5);
  CHECK(c.done[4].status == JINA_NET_POOL_CLOSED);
  CHECK(jina_net_pool_close(pool2) == JINA_NET_OK);
  CHECK(jina_net_pool_add_connection(pool2, "d", "127.0.0.1:1", false, -1, NULL) == JINA_NET_POOL_CLOSED);
  CHECK(send_one(pool2, "p", "slow", false, -1, 0, NULL, &c, NULL) == JINA_NET_POOL_CLOSED);
  jina_net_pool_free(pool2);

  /* free with a pending send */
  jina_net_pool *pool3 = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool3));
  CHECK_OK(jina_net_pool_add_connection(pool3, "slow", jn_servers_address(s, "s"), false, JINA_NET_NO_SHARD, NULL));
  CHECK_OK(send_one(pool3, "f", "slow", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  jina_net_pool_free(pool3);
  CHECK(collector_wait(&c, 6) == 6);
  CHECK(c.done[5].status == JINA_NET_POOL_CLOSED);
  sleep_ms(100);
  CHECK(c.count == 6); /* exactly once */

  jina_net_pool_free(pool);
  collector_destroy(&c);
}

static void test_bad_input(void) {
  jina_net_pool *pool = NULL;
  char msg[512];
  collector c;
  collector_init(&c);
  CHECK(jina_net_pool_new(NULL, NULL) == JINA_NET_NULL_ARGUMENT);
  jina_net_pool_options opts;
  jina_net_pool_options_init(&opts, sizeof opts);
  opts.max_attempts = 0;
  CHECK(jina_net_pool_new(&opts, &pool) == JINA_NET_INVALID_ARGUMENT && pool == NULL);
  opts.max_attempts = 1;
  opts.backoff_multiplier = 0.5;
  CHECK(jina_net_pool_new(&opts, &pool) == JINA_NET_INVALID_ARGUMENT && pool == NULL);
  jina_net_pool_options_init(&opts, sizeof opts);
  opts.max_ejection_percent = 101;
  CHECK(jina_net_pool_new(&opts, &pool) == JINA_NET_INVALID_ARGUMENT && pool == NULL);
  jina_net_pool_options_init(&opts, sizeof opts);
  opts.root_certificates_pem = NULL;
  opts.root_certificates_pem_len = 10;
  CHECK(jina_net_pool_new(&opts, &pool) == JINA_NET_NULL_ARGUMENT && pool == NULL);
  CHECK_OK(jina_net_pool_new(NULL, &pool));

  CHECK(jina_net_pool_add_connection(NULL, "d", "h:1", false, -1, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_add_connection(pool, NULL, "h:1", false, -1, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_add_connection(pool, "d", NULL, false, -1, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_add_connection(pool, "\xff\xfe", "h:1", false, -1, NULL) == JINA_NET_INVALID_UTF8);
  const char *bad_addresses[] = {"", "nohost", "h:", ":80", "h:0", "h:70000", "ftp://h:1", "::1:80", "[::1", "a b:1"};
  for (size_t i = 0; i < sizeof bad_addresses / sizeof *bad_addresses; i++)
    CHECK(jina_net_pool_add_connection(pool, "d", bad_addresses[i], false, -1, NULL) == JINA_NET_INVALID_ADDRESS);
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "jina_net_pool_add_connection") && strstr(msg, "a b:1"));
  CHECK(jina_net_pool_add_connection(pool, "d", "h:1", false, (int64_t)1 << 40, NULL) == JINA_NET_INVALID_ARGUMENT);
  CHECK_OK(jina_net_pool_add_connection(pool, "d", "127.0.0.1:1", false, -1, NULL));

  uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  jina_net_bytes g = {garbage, sizeof garbage};
  CHECK(jina_net_pool_send(pool, 0, &g, 1, "d", false, -1, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_REQUEST);
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "not protobuf") != NULL);
  uint8_t ok[64];
  jina_net_bytes r = {ok, mp_data_request(ok, "ok")};
  CHECK(jina_net_pool_send(pool, 9, &r, 1, "d", false, -1, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_pool_send(pool, 0, &r, 1, "d", false, -1, 7, NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_pool_send(pool, 0, &r, 1, "d", false, -1, 0, NULL, 0, NULL, &c, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_send(pool, 0, NULL, 1, "d", false, -1, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_send(pool, 0, &r, 0, "d", false, -1, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_pool_send(pool, 0, &r, 1, "d", false, -1, 0, "bad\nendpoint", 0, on_done, &c, NULL) ==
        JINA_NET_INVALID_REQUEST);
  CHECK(jina_net_pool_send(pool, 0, &r, 1, "nope", false, -1, 0, NULL, 0, on_done, &c, NULL) ==
        JINA_NET_UNKNOWN_DEPLOYMENT);
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "\"nope\"") != NULL);
  CHECK(jina_net_pool_send(pool, 0, &r, 1, "d", true, -1, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_NO_REPLICAS);
  jina_net_bytes two[2] = {r, r};
  CHECK(jina_net_pool_send(pool, 1, two, 2, "d", false, -1, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_INVALID_REQUEST);
  CHECK(jina_net_pool_cancel(pool, 77) == JINA_NET_NOT_FOUND);
  CHECK(jina_net_pool_cancel(NULL, 77) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_routes(pool, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_pool_close(NULL) == JINA_NET_NULL_ARGUMENT);
  sleep_ms(50);
  CHECK(c.count == 0); /* no callback for refused sends */

  /* the pool still works: a send to a closed port completes with UNAVAILABLE */
  CHECK_OK(jina_net_pool_send(pool, 0, &r, 1, "d", false, -1, 0, NULL, 0, on_done, &c, NULL));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK(c.done[0].status == JINA_NET_RPC_ERROR && c.done[0].targets[0].grpc_code == 14);

  /* response accessors */
  const uint8_t *d = NULL;
  size_t l = 0;
  CHECK(jina_net_response_body(NULL, &d, &l) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_response_address(NULL) == NULL);
  CHECK(jina_net_response_metadata_count(NULL) == 0);
  CHECK(jina_net_send_result_retain_response(NULL, 0, NULL) == JINA_NET_NULL_ARGUMENT);

  /* the message buffer API */
  size_t full = jina_net_last_error_message(NULL, 0);
  CHECK(full > 0);
  char tiny[8];
  CHECK(jina_net_last_error_message(tiny, sizeof tiny) == full && strlen(tiny) == 7);

  jina_net_pool_free(pool);
  jina_net_pool_free(NULL);
  jina_net_response_free(NULL);
  jina_net_string_free(NULL);
  collector_destroy(&c);
}

static void test_oneshot_and_control(const jn_servers *s) {
  char head[64];
  snprintf(head, sizeof head, "%s", jn_servers_address(s, "h2"));
  uint16_t worker_port = (uint16_t)jn_servers_port(s, "w");
  collector c;
  collector_init(&c);

  /* no worker yet: the head answers UNKNOWN */
  uint8_t buf[64];
  size_t n = mp_data_request(buf, "early");
  jina_net_response *resp = NULL;
  CHECK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, buf, n, head, NULL, &resp) == JINA_NET_RPC_ERROR);
  CHECK(resp == NULL);
  char msg[512];
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "did not receive a response") != NULL);
  CHECK(jina_net_last_error_grpc_code() == 2); /* UNKNOWN, from the head */

  /* ACTIVATE, blocking */
  CHECK_OK(jina_net_activate_worker_sync("127.0.0.1", worker_port, head, 0, JINA_NET_NO_SHARD, &resp));
  CHECK(resp != NULL);
  jina_net_response_free(resp);
  resp = NULL;

  /* data through the head reaches the worker; endpoint travels */
  jina_net_oneshot_options o;
  CHECK_OK(jina_net_oneshot_options_init(&o, sizeof o));
  o.endpoint = "/index";
  CHECK_OK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, buf, n, head, &o, &resp));
  size_t count = jina_net_response_metadata_count(resp);
  int saw_worker = 0;
  for (size_t i = 0; i < count; i++) {
    const char *key = NULL;
    const uint8_t *value = NULL;
    size_t vlen = 0;
    CHECK_OK(jina_net_response_metadata(resp, i, &key, &value, &vlen));
    if (strcmp(key, "replica") == 0 && vlen == 1 && value[0] == 'w') saw_worker = 1;
  }
  CHECK(saw_worker);
  const char *k = NULL;
  const uint8_t *v = NULL;
  size_t vl = 0;
  CHECK(jina_net_response_metadata(resp, count, &k, &v, &vl) == JINA_NET_INVALID_ARGUMENT);
  jina_net_response_free(resp);
  resp = NULL;

  /* several requests, blocking, directly to the worker */
  uint8_t b2[64];
  jina_net_bytes two[2] = {{buf, n}, {b2, mp_data_request(b2, "second")}};
  CHECK_OK(jina_net_send_requests_sync(JINA_NET_REQUEST_DATA, two, 2, jn_servers_address(s, "w"), NULL, &resp));
  jina_net_response_free(resp);
  resp = NULL;
  CHECK(jina_net_send_requests_sync(JINA_NET_REQUEST_DATA, two, 2, jn_servers_address(s, "w"), NULL, NULL) ==
        JINA_NET_NULL_ARGUMENT);

  /* async one-shot and async control */
  CHECK_OK(jina_net_send_request_async(JINA_NET_REQUEST_DATA, buf, n, head, NULL, on_done, &c));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK(c.done[0].status == JINA_NET_OK && strcmp(c.done[0].targets[0].replica, "w") == 0);
  CHECK(c.done[0].targets[0].shard_id == -1);
  CHECK_OK(jina_net_deactivate_worker("127.0.0.1", worker_port, head, JINA_NET_NO_SHARD, on_done, &c));
  CHECK(collector_wait(&c, 2) == 2);
  CHECK(c.done[1].status == JINA_NET_OK);
  CHECK_OK(jina_net_send_request_async(JINA_NET_REQUEST_DATA, buf, n, head, NULL, on_done, &c));
  CHECK(collector_wait(&c, 3) == 3);
  CHECK(c.done[2].status == JINA_NET_RPC_ERROR && c.done[2].targets[0].grpc_code == 2);
  CHECK_OK(jina_net_activate_worker("127.0.0.1", worker_port, head, 0, on_done, &c));
  CHECK(collector_wait(&c, 4) == 4);
  CHECK_OK(jina_net_deactivate_worker_sync("127.0.0.1", worker_port, head, 2000, 0, NULL));

  /* bad input on the helpers */
  CHECK(jina_net_activate_worker("127.0.0.1", worker_port, "no port", -1, on_done, &c) == JINA_NET_INVALID_ADDRESS);
  CHECK(jina_net_activate_worker(NULL, worker_port, head, -1, on_done, &c) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_activate_worker("127.0.0.1", worker_port, head, -1, NULL, &c) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_last_error_grpc_code() == -1); /* not a gRPC failure */
  CHECK(jina_net_send_request_async(5, buf, n, head, NULL, on_done, &c) == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, (const uint8_t *)"\xff\xff", 2, head, NULL, &resp) ==
        JINA_NET_INVALID_REQUEST);
  sleep_ms(50);
  CHECK(c.count == 4);
  collector_destroy(&c);
}

static void test_host_checks(void) {
  bool b = false;
  CHECK_OK(jina_net_host_is_local("localhost", &b));
  CHECK(b);
  CHECK_OK(jina_net_host_is_local("1.2.3.4", &b));
  CHECK(!b);
  CHECK(jina_net_host_is_local("jina.ai", &b) == JINA_NET_INVALID_HOST);
  CHECK(jina_net_host_is_local(NULL, &b) == JINA_NET_NULL_ARGUMENT);
  CHECK_OK(jina_net_is_remote_local_connection("1.2.3.4", "192.168.0.1", &b));
  CHECK(b);
  CHECK_OK(jina_net_is_remote_local_connection("127.0.0.1", "localhost", &b));
  CHECK(!b);
  size_t n = 0;
  const jina_net_grpc_option *options = jina_net_default_grpc_options(&n);
  CHECK(n == 2 && options != NULL);
  CHECK(strcmp(options[0].name, "grpc.max_send_message_length") == 0 && options[0].value == -1);
  CHECK(strcmp(options[1].name, "grpc.max_receive_message_length") == 0 && options[1].value == -1);
}

/* Freeing pools while sends are in flight: every send still completes exactly once, and the host
 * (which keeps SIGPIPE's default action, "terminate") is not killed by a write to a connection being
 * torn down: the library blocks SIGPIPE on its own threads (checked directly by a Rust unit test). */
static void test_free_while_sending(const jn_servers *s) {
  collector c;
  collector_init(&c);
  int expected = 0;
  for (int round = 0; round < 20; round++) {
    jina_net_pool *pool = NULL;
    CHECK_OK(jina_net_pool_new(NULL, &pool));
    jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "a"), false, 0, NULL);
    jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "s"), false, 0, NULL); /* slow: in flight */
    for (int i = 0; i < 48; i++) {
      if (send_one(pool, "pipe", "d", false, 0, JINA_NET_SHARDS_ANY, NULL, &c, NULL) == JINA_NET_OK) expected++;
    }
    if (round % 2) sleep_ms(20); /* let some streams reach the servers */
    jina_net_pool_free(pool);
  }
  CHECK(collector_wait(&c, expected) == expected);
  sleep_ms(50);
  CHECK(c.count == expected); /* exactly once */
  collector_destroy(&c);
}

/* jina_net_pool_send_owned: malloc'd buffers handed over, freed exactly once by the library through
 * free(): AddressSanitizer and valgrind report a leak or a double free. */
static int owned_freed;
static pthread_mutex_t owned_mu = PTHREAD_MUTEX_INITIALIZER;
static void free_owned(void *ctx, const uint8_t *data, size_t len) {
  (void)len;
  pthread_mutex_lock(&owned_mu);
  owned_freed++;
  pthread_mutex_unlock(&owned_mu);
  CHECK(ctx == &owned_freed);
  free((void *)data);
}

static int owned_count(void) {
  pthread_mutex_lock(&owned_mu);
  int n = owned_freed;
  pthread_mutex_unlock(&owned_mu);
  return n;
}

static jina_net_bytes owned_request(const char *id) {
  uint8_t tmp[128];
  size_t n = mp_data_request(tmp, id);
  uint8_t *buf = malloc(n);
  memcpy(buf, tmp, n);
  jina_net_bytes b = {buf, n};
  return b;
}

static void test_owned_buffers(const jn_servers *s) {
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "a"), false, 0, NULL));
  collector c;
  collector_init(&c);
  jina_net_bytes two[2] = {owned_request("o1"), owned_request("o2")};
  CHECK_OK(jina_net_pool_send_owned(pool, 0, two, 2, free_owned, &owned_freed, "d", false, 0, 0, NULL, 0, on_done, &c,
                                    NULL));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK(c.done[0].status == JINA_NET_OK && strcmp(c.done[0].targets[0].request_count, "2") == 0);
  for (int i = 0; i < 200 && owned_count() < 2; i++) sleep_ms(5);
  CHECK(owned_count() == 2);
  jina_net_bytes one = owned_request("lost");
  CHECK(jina_net_pool_send_owned(pool, 0, &one, 1, free_owned, &owned_freed, "nope", false, 0, 0, NULL, 0, on_done, &c,
                                 NULL) == JINA_NET_UNKNOWN_DEPLOYMENT);
  CHECK(owned_count() == 3); /* freed before returning */
  jina_net_bytes mine = owned_request("mine");
  CHECK(jina_net_pool_send_owned(pool, 0, &mine, 1, NULL, NULL, "d", false, 0, 0, NULL, 0, on_done, &c, NULL) ==
        JINA_NET_NULL_ARGUMENT);
  free((void *)mine.data); /* not taken: still ours */
  CHECK(owned_count() == 3);
  jina_net_pool_free(pool);
  collector_destroy(&c);
}

/* Timeouts too large for a clock (UINT64_MAX ms) mean "no deadline", never a panic. */
static void test_huge_timeouts(const jn_servers *s) {
  jina_net_pool_options opts;
  jina_net_pool_options_init(&opts, sizeof opts);
  opts.default_timeout_ms = UINT64_MAX;
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(&opts, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "a"), false, 0, NULL));
  collector c;
  collector_init(&c);
  uint8_t buf[64];
  jina_net_bytes req = {buf, mp_data_request(buf, "huge")};
  CHECK_OK(jina_net_pool_send(pool, 0, &req, 1, "d", false, 0, 0, NULL, 0, on_done, &c, NULL));
  CHECK_OK(jina_net_pool_send(pool, 0, &req, 1, "d", false, 0, 0, NULL, UINT64_MAX, on_done, &c, NULL));
  CHECK_OK(jina_net_pool_send(pool, 0, &req, 1, "d", false, 0, 0, NULL, (uint64_t)INT64_MAX, on_done, &c, NULL));
  CHECK(collector_wait(&c, 3) == 3);
  CHECK(c.done[0].status == JINA_NET_OK && c.done[1].status == JINA_NET_OK && c.done[2].status == JINA_NET_OK);
  jina_net_oneshot_options o;
  CHECK_OK(jina_net_oneshot_options_init(&o, sizeof o));
  o.timeout_ms = UINT64_MAX;
  jina_net_response *resp = NULL;
  CHECK_OK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, buf, req.len, jn_servers_address(s, "a"), &o, &resp));
  jina_net_response_free(resp);
  jina_net_pool_free(pool);
  collector_destroy(&c);
}

static void test_shutdown(const jn_servers *s) {
  jina_net_pool *before = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &before));
  CHECK_OK(jina_net_pool_add_connection(before, "d", jn_servers_address(s, "a"), false, 0, NULL));
  CHECK_OK(jina_net_runtime_shutdown(5000));
  CHECK_OK(jina_net_runtime_shutdown(5000));
  jina_net_pool *pool = NULL;
  CHECK(jina_net_pool_new(NULL, &pool) == JINA_NET_RUNTIME_ERROR);
  CHECK(jina_net_runtime_init(2) == JINA_NET_RUNTIME_ERROR);
  /* sends after the shutdown are refused and never call back */
  collector c;
  collector_init(&c);
  uint8_t buf[64];
  size_t n = mp_data_request(buf, "late");
  jina_net_bytes req = {buf, n};
  CHECK(jina_net_pool_send(before, 0, &req, 1, "d", false, 0, 0, NULL, 0, on_done, &c, NULL) == JINA_NET_RUNTIME_ERROR);
  CHECK(jina_net_send_request_async(0, buf, n, jn_servers_address(s, "a"), NULL, on_done, &c) == JINA_NET_RUNTIME_ERROR);
  CHECK(jina_net_activate_worker("127.0.0.1", 1, jn_servers_address(s, "a"), -1, on_done, &c) == JINA_NET_RUNTIME_ERROR);
  jina_net_response *resp = NULL;
  CHECK(jina_net_send_request_sync(0, buf, n, jn_servers_address(s, "a"), NULL, &resp) == JINA_NET_RUNTIME_ERROR);
  sleep_ms(50);
  CHECK(c.count == 0);
  collector_destroy(&c);
  jina_net_pool_free(before);
}

/* A caller-driven pool: nothing completes unpolled; callbacks run inside jina_net_pool_poll on this
 * thread; a callback may send again (and may not poll); free completes what is pending, here. */
typedef struct driven_state {
  jina_net_pool *pool;
  pthread_t thread;
  int completed, ok, resent, on_other_thread, poll_inside;
} driven_state;

static void on_driven(void *user_data, const jina_net_send_result *r) {
  driven_state *d = (driven_state *)user_data;
  d->completed++;
  if (r->status == JINA_NET_OK) d->ok++;
  if (!pthread_equal(pthread_self(), d->thread)) d->on_other_thread++;
  if (d->pool) d->poll_inside = jina_net_pool_poll(d->pool, 0, NULL);
  if (d->resent < 10 && r->status == JINA_NET_OK) {
    uint8_t buf[256];
    size_t n = mp_data_request(buf, "again");
    jina_net_bytes req = {buf, n};
    if (jina_net_pool_send(d->pool, JINA_NET_REQUEST_DATA, &req, 1, "d", false, -1, JINA_NET_SHARDS_ANY, NULL, 0,
                           on_driven, d, NULL) == JINA_NET_OK)
      d->resent++;
  }
}

static void test_caller_driven(const jn_servers *s) {
  jina_net_pool_options opts;
  jina_net_pool_options_init(&opts, sizeof opts);
  CHECK(!opts.caller_driven);
  opts.caller_driven = true;
  driven_state d;
  memset(&d, 0, sizeof d);
  d.thread = pthread_self();
  CHECK_OK(jina_net_pool_new(&opts, &d.pool));
  CHECK_OK(jina_net_pool_add_connection(d.pool, "d", jn_servers_address(s, "w"), false, -1, NULL));
  CHECK_OK(jina_net_pool_add_connection(d.pool, "slow", jn_servers_address(s, "s"), false, -1, NULL));
  uint8_t buf[256];
  size_t n = mp_data_request(buf, "driven");
  jina_net_bytes req = {buf, n};
  CHECK_OK(jina_net_pool_send(d.pool, JINA_NET_REQUEST_DATA, &req, 1, "d", false, -1, JINA_NET_SHARDS_ANY, NULL, 0,
                              on_driven, &d, NULL));
  sleep_ms(50);
  CHECK(d.completed == 0); /* nothing runs unpolled */
  size_t completed = 0, total = 0;
  for (int i = 0; i < 400 && d.completed < 11; i++) {
    CHECK_OK(jina_net_pool_poll(d.pool, 50, &completed));
    total += completed;
  }
  CHECK(d.completed == 11 && d.ok == 11 && d.resent == 10 && total == 11);
  CHECK(d.on_other_thread == 0);
  CHECK(d.poll_inside == JINA_NET_RUNTIME_ERROR);
  CHECK_OK(jina_net_pool_poll(d.pool, 0, &completed));
  CHECK(completed == 0);
  /* Pending on the slow server; free completes it on this thread. */
  d.resent = 10;
  CHECK_OK(jina_net_pool_send(d.pool, JINA_NET_REQUEST_DATA, &req, 1, "slow", false, -1, JINA_NET_SHARDS_ANY, NULL,
                              0, on_driven, &d, NULL));
  CHECK_OK(jina_net_pool_poll(d.pool, 20, NULL));
  jina_net_pool *freed = d.pool;
  d.pool = NULL; /* the callback that fires inside free must not use the pool */
  jina_net_pool_free(freed);
  CHECK(d.completed == 12 && d.ok == 11 && d.on_other_thread == 0);
  /* A pool run by library threads is not polled. */
  jina_net_pool *threaded = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &threaded));
  CHECK(jina_net_pool_poll(threaded, 0, NULL) == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_pool_poll(NULL, 0, NULL) == JINA_NET_NULL_ARGUMENT);
  jina_net_pool_free(threaded);
}

/* ---- p2c, in-flight limits, hedging, metrics, log callback ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_retries, log_events, log_bad_level;

static void on_log(void *user_data, uint32_t level, const char *target, const char *message) {
  pthread_mutex_lock(&log_mu);
  log_events++;
  if (level < JINA_NET_LOG_ERROR || level > JINA_NET_LOG_DEBUG || user_data != (void *)&log_events) log_bad_level++;
  if (strcmp(target, "jina_net::send") == 0 && strstr(message, "retrying")) log_retries++;
  pthread_mutex_unlock(&log_mu);
}

/* Calls of deployment `dep` that a replica has answered, from the pool's metrics (the pool was made
 * with `metrics`): the count of its `jina_sending_request_seconds` histogram; -1 if absent. */
static long answered_calls(jina_net_pool *pool, const char *dep) {
  char *text = NULL;
  if (jina_net_pool_metrics_text(pool, &text) != JINA_NET_OK) return -1;
  char prefix[128];
  snprintf(prefix, sizeof prefix, "jina_sending_request_seconds_count{deployment=\"%s\",", dep);
  long count = -1;
  const char *at = strstr(text, prefix);
  const char *value = at ? strstr(at, "} ") : NULL;
  if (value) count = strtol(value + 2, NULL, 10);
  jina_net_string_free(text);
  return count;
}

/* callbacks_in_poll: library threads run the pool; the callbacks run inside jina_net_pool_poll on this
 * thread (a callback may send again and may not poll), several per poll; nothing runs unpolled. */
static void test_callbacks_in_poll(const jn_servers *s) {
  jina_net_pool_options opts;
  jina_net_pool_options_init(&opts, sizeof opts);
  CHECK(!opts.callbacks_in_poll);
  opts.callbacks_in_poll = true;
  opts.metrics = true; /* to see when the server has answered (answered_calls) */
  driven_state d;
  memset(&d, 0, sizeof d);
  d.thread = pthread_self();
  CHECK_OK(jina_net_pool_new(&opts, &d.pool));
  CHECK_OK(jina_net_pool_add_connection(d.pool, "d", jn_servers_address(s, "w"), false, -1, NULL));
  uint8_t buf[256];
  size_t n = mp_data_request(buf, "polled");
  jina_net_bytes req = {buf, n};
  d.resent = 6; /* 4 resends from the callbacks below */
  for (int i = 0; i < 4; i++)
    CHECK_OK(jina_net_pool_send(d.pool, JINA_NET_REQUEST_DATA, &req, 1, "d", false, -1, JINA_NET_SHARDS_ANY, NULL,
                                0, on_driven, &d, NULL));
  /* the library threads complete the sends meanwhile; their callbacks wait for a poll */
  for (int i = 0; i < 2000 && answered_calls(d.pool, "d") < 4; i++) sleep_ms(10);
  sleep_ms(300); /* an answered call is queued right after its answer is read */
  CHECK(answered_calls(d.pool, "d") == 4);
  CHECK(d.completed == 0);
  size_t completed = 0, total = 0;
  CHECK_OK(jina_net_pool_poll(d.pool, 0, &completed));
  CHECK(completed == 4); /* one poll runs every callback queued */
  total += completed;
  for (int i = 0; i < 400 && d.completed < 8; i++) {
    CHECK_OK(jina_net_pool_poll(d.pool, 50, &completed));
    total += completed;
  }
  CHECK(d.completed == 8 && d.ok == 8 && d.resent == 10 && total == 8);
  CHECK(d.on_other_thread == 0);
  CHECK(d.poll_inside == JINA_NET_RUNTIME_ERROR);
  CHECK_OK(jina_net_pool_close(d.pool));
  CHECK_OK(jina_net_pool_poll(d.pool, UINT64_MAX, &completed)); /* closed: returns at once */
  CHECK(completed == 0);
  jina_net_pool_free(d.pool);
}

/* ---- per-send request metadata (jina_net_send_options.metadata) ---- */

static void test_request_metadata(const jn_servers *s) {
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "a"), false, 0, NULL));
  collector c;
  collector_init(&c);
  uint8_t buf[256];
  size_t n = mp_data_request(buf, "with-metadata");
  jina_net_bytes req = {buf, n};
  const uint8_t trace[] = {0, 1, 2, 0xff};
  jina_net_metadata md[] = {
      {"authorization", (const uint8_t *)"Bearer t0k3n", 12},
      {"trace-bin", trace, sizeof trace},
  };
  jina_net_send_options so;
  CHECK_OK(jina_net_send_options_init(&so, sizeof so));
  CHECK(so.struct_size == sizeof so && so.metadata == NULL && so.metadata_len == 0);
  so.metadata = md;
  so.metadata_len = 2;
  CHECK_OK(jina_net_pool_send_ex(pool, &req, 1, "d", &so, on_done, &c, NULL));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK(c.done[0].status == JINA_NET_OK);
  CHECK(strcmp(c.done[0].targets[0].seen_authorization, "Bearer t0k3n") == 0);
  CHECK(strcmp(c.done[0].targets[0].seen_trace_bin, "AAEC/w") == 0); /* base64, no padding, as gRPC sends it */
  /* reserved names and bytes that are not printable ASCII: refused before anything is sent, no callback */
  jina_net_metadata bad[] = {{"grpc-timeout", (const uint8_t *)"1S", 2}};
  so.metadata = bad;
  so.metadata_len = 1;
  CHECK(jina_net_pool_send_ex(pool, &req, 1, "d", &so, on_done, &c, NULL) == JINA_NET_INVALID_ARGUMENT);
  char message[512];
  jina_net_last_error_message(message, sizeof message);
  CHECK(strstr(message, "grpc-timeout") != NULL);
  jina_net_metadata bad_value[] = {{"x-id", (const uint8_t *)"a\nb", 3}};
  so.metadata = bad_value;
  CHECK(jina_net_pool_send_ex(pool, &req, 1, "d", &so, on_done, &c, NULL) == JINA_NET_INVALID_ARGUMENT);
  /* an older caller's struct: struct_size says where it ends; the metadata fields are not read */
  jina_net_send_options *older = malloc(offsetof(jina_net_send_options, metadata));
  CHECK_OK(jina_net_send_options_init(older, offsetof(jina_net_send_options, metadata)));
  CHECK_OK(jina_net_pool_send_ex(pool, &req, 1, "d", older, on_done, &c, NULL));
  CHECK(collector_wait(&c, 2) == 2 && c.done[1].status == JINA_NET_OK);
  CHECK(c.done[1].targets[0].seen_authorization[0] == 0);
  free(older);
  jina_net_pool_free(pool);
  collector_destroy(&c);
}

static void test_tuning(const jn_servers *s) {
  jina_net_pool_options o;
  jina_net_pool_options_init(&o, sizeof o);
  CHECK(o.balance == JINA_NET_BALANCE_ROUND_ROBIN && o.max_in_flight_per_replica == 0 && o.max_hedges == 0 &&
        !o.metrics);
  CHECK(strcmp(jina_net_result_name(JINA_NET_RESOURCE_EXHAUSTED), "JINA_NET_RESOURCE_EXHAUSTED") == 0);

  /* hedging: the slow replica is picked first, the hedge to the echo replica wins; metrics count it */
  o.balance = JINA_NET_BALANCE_P2C_PEAK_EWMA;
  o.hedge_delay_ms = 20;
  o.max_hedges = 1;
  o.metrics = true;
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(&o, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "s"), false, 0, NULL));
  CHECK_OK(jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "a"), false, 0, NULL));
  collector c;
  collector_init(&c);
  uint8_t buf[256];
  size_t n = mp_data_request(buf, "hedged");
  jina_net_bytes req = {buf, n};
  jina_net_send_options so;
  jina_net_send_options_init(&so, sizeof so);
  CHECK(so.shard_id == JINA_NET_NO_SHARD && !so.idempotent);
  so.idempotent = true;
  so.timeout_ms = 3000;
  for (int i = 0; i < 4; i++) CHECK_OK(jina_net_pool_send_ex(pool, &req, 1, "d", &so, on_done, &c, NULL));
  CHECK(collector_wait(&c, 4) == 4);
  for (int i = 0; i < 4; i++) {
    CHECK(c.done[i].status == JINA_NET_OK);
    CHECK(strcmp(c.done[i].targets[0].replica, "a") == 0);
  }
  /* owned buffers with the same options (jina_net_pool_send_owned_ex): shared by a send's attempts,
   * freed once (AddressSanitizer and valgrind report a double free or a leak) */
  int freed_before = owned_count();
  for (int i = 0; i < 2; i++) {
    jina_net_bytes ob = owned_request("hedged-owned");
    CHECK_OK(jina_net_pool_send_owned_ex(pool, &ob, 1, free_owned, &owned_freed, "d", &so, on_done, &c, NULL));
  }
  CHECK(collector_wait(&c, 6) == 6);
  for (int i = 4; i < 6; i++) CHECK(c.done[i].status == JINA_NET_OK && strcmp(c.done[i].targets[0].replica, "a") == 0);
  for (int i = 0; i < 200 && owned_count() < freed_before + 2; i++) sleep_ms(5);
  sleep_ms(50);
  CHECK(owned_count() == freed_before + 2);
  jina_net_bytes refused = owned_request("refused");
  CHECK(jina_net_pool_send_owned_ex(pool, &refused, 1, free_owned, &owned_freed, "nope", &so, on_done, &c, NULL) ==
        JINA_NET_UNKNOWN_DEPLOYMENT);
  CHECK(owned_count() == freed_before + 3); /* freed before returning */
  char *text = NULL;
  CHECK_OK(jina_net_pool_metrics_text(pool, &text));
  char series[256];
  snprintf(series, sizeof series, "jina_sending_request_seconds_count{deployment=\"d\",shard=\"0\",address=\"%s\"} ",
           jn_servers_address(s, "a"));
  CHECK(text && strstr(text, series) && strstr(text, "# TYPE jina_sending_request_seconds histogram"));
  jina_net_string_free(text);
  jina_net_pool_free(pool);
  collector_destroy(&c);

  /* in-flight limit 1, no queue: the second send to the busy replica is refused at once */
  jina_net_pool_options_init(&o, sizeof o);
  o.max_in_flight_per_replica = 1;
  o.max_queued_sends = 0;
  CHECK_OK(jina_net_pool_new(&o, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "busy", jn_servers_address(s, "s"), false, 2, NULL));
  text = (char *)1;
  CHECK(jina_net_pool_metrics_text(pool, &text) == JINA_NET_INVALID_ARGUMENT);
  CHECK(text == (char *)1);
  collector_init(&c);
  jina_net_send_options_init(&so, sizeof so);
  so.shard_id = 2;
  CHECK_OK(jina_net_pool_send_ex(pool, &req, 1, "busy", &so, on_done, &c, NULL));
  sleep_ms(100);
  CHECK_OK(jina_net_pool_send_ex(pool, &req, 1, "busy", &so, on_done, &c, NULL));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK(c.done[0].status == JINA_NET_RESOURCE_EXHAUSTED);
  CHECK(strstr(c.done[0].error_message, "deployment \"busy\" shard 2") != NULL);
  CHECK(c.done[0].targets[0].status == JINA_NET_RESOURCE_EXHAUSTED && c.done[0].targets[0].grpc_code == -1);
  jina_net_pool_free(pool);
  CHECK(collector_wait(&c, 2) == 2);
  CHECK(c.done[1].status == JINA_NET_POOL_CLOSED);
  collector_destroy(&c);

  /* the log callback: retries on the unavailable replica are logged at DEBUG, on library threads */
  CHECK(jina_net_log_set_callback(on_log, &log_events, 9) == JINA_NET_INVALID_ARGUMENT);
  CHECK_OK(jina_net_log_set_callback(on_log, &log_events, JINA_NET_LOG_DEBUG));
  CHECK_OK(jina_net_pool_new(NULL, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "down", jn_servers_address(s, "u"), false, JINA_NET_NO_SHARD, NULL));
  collector_init(&c);
  CHECK_OK(send_one(pool, "logged", "down", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 1) == 1);
  CHECK_OK(jina_net_log_set_callback(NULL, NULL, JINA_NET_LOG_OFF));
  pthread_mutex_lock(&log_mu);
  CHECK(log_retries == 2);
  CHECK(log_bad_level == 0);
  int events = log_events;
  pthread_mutex_unlock(&log_mu);
  CHECK_OK(send_one(pool, "quiet", "down", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 2) == 2);
  pthread_mutex_lock(&log_mu);
  CHECK(log_events == events);
  pthread_mutex_unlock(&log_mu);
  jina_net_pool_free(pool);
  collector_destroy(&c);
}

/* A child forked after the library started cannot use it: a clear error, not a send that never completes. */
static void test_fork_child(const jn_servers *s) {
  jina_net_pool *pool = NULL;
  CHECK_OK(jina_net_pool_new(NULL, &pool));
  CHECK_OK(jina_net_pool_add_connection(pool, "d", jn_servers_address(s, "a"), false, -1, NULL));
  collector c;
  collector_init(&c);
  CHECK_OK(send_one(pool, "before-fork", "d", false, -1, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 1) == 1 && c.done[0].status == JINA_NET_OK);
  int report[2];
  CHECK(pipe(report) == 0);
  pid_t child = fork();
  if (child == 0) {
    int code = 0;
    collector cc;
    collector_init(&cc);
    if (send_one(pool, "in-child", "d", false, -1, JINA_NET_SHARDS_ANY, NULL, &cc, NULL) != JINA_NET_RUNTIME_ERROR) code |= 1;
    jina_net_pool *p2 = NULL;
    if (jina_net_pool_new(NULL, &p2) != JINA_NET_RUNTIME_ERROR || p2 != NULL) code |= 2;
    jina_net_pool_options o;
    jina_net_pool_options_init(&o, sizeof o);
    o.caller_driven = true;
    if (jina_net_pool_new(&o, &p2) != JINA_NET_RUNTIME_ERROR || p2 != NULL) code |= 4;
    char msg[512];
    jina_net_last_error_message(msg, sizeof msg);
    if (!strstr(msg, "forked")) code |= 8;
    /* Report through the pipe, then die without exit handlers: the parent's threads (and their
     * thread-local memory) do not exist here, which a leak checker at exit would report. */
    unsigned char byte = (unsigned char)code;
    if (write(report[1], &byte, 1) != 1) code |= 16;
    raise(SIGKILL);
  }
  CHECK(child > 0);
  close(report[1]);
  unsigned char got = 0xff;
  CHECK(read(report[0], &got, 1) == 1);
  close(report[0]);
  CHECK(got == 0);
  if (got != 0) fprintf(stderr, "  (child reported %d)\n", got);
  int status = -1;
  CHECK(waitpid(child, &status, 0) == child);
  /* The parent goes on. */
  CHECK_OK(send_one(pool, "after-fork", "d", false, -1, JINA_NET_SHARDS_ANY, NULL, &c, NULL));
  CHECK(collector_wait(&c, 2) == 2 && c.done[1].status == JINA_NET_OK);
  jina_net_pool_free(pool);
  collector_destroy(&c);
}

/* jina_net_request_builder_* and jina_net_control_request_build: bytes an echo worker answers, bad input. */
static void test_request_builder(const jn_servers *s) {
  jina_net_request_builder *b = NULL;
  CHECK_OK(jina_net_request_builder_new(&b));
  CHECK(b != NULL);
  const uint8_t blob[] = {0, 1, 2, 0xff};
  CHECK_OK(jina_net_request_builder_add_text(b, "hello"));
  CHECK_OK(jina_net_request_builder_add_bytes(b, blob, sizeof blob, "application/octet-stream"));
  CHECK_OK(jina_net_request_builder_add_bytes(b, NULL, 0, NULL));
  CHECK_OK(jina_net_request_builder_set_endpoint(b, "/index"));
  CHECK_OK(jina_net_request_builder_set_request_id(b, "built-1"));
  CHECK_OK(jina_net_request_builder_set_parameters_json(b, "{\"top_k\": 3, \"tags\": [\"a\", null]}"));

  /* bad input: its code, nothing changed, out-parameters untouched */
  CHECK(jina_net_request_builder_set_parameters_json(b, "{oops") == JINA_NET_INVALID_ARGUMENT);
  char msg[512];
  last_error(msg, sizeof msg);
  CHECK(strstr(msg, "not JSON") != NULL);
  CHECK(jina_net_request_builder_set_parameters_json(b, "42") == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_request_builder_add_text(NULL, "x") == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_request_builder_add_text(b, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_request_builder_add_text(b, "\xff") == JINA_NET_INVALID_UTF8);
  CHECK(jina_net_request_builder_add_bytes(b, NULL, 2, NULL) == JINA_NET_NULL_ARGUMENT);
  CHECK(jina_net_request_builder_new(NULL) == JINA_NET_NULL_ARGUMENT);
  uint8_t *data = (uint8_t *)&msg; /* sentinels: must stay as they are on failure */
  size_t len = 12345;
  CHECK(jina_net_request_builder_build(NULL, &data, &len) == JINA_NET_NULL_ARGUMENT);
  CHECK(data == (uint8_t *)&msg && len == 12345);
  CHECK(jina_net_request_builder_build(b, NULL, &len) == JINA_NET_NULL_ARGUMENT);

  CHECK_OK(jina_net_request_builder_build(b, &data, &len));
  char id[64] = "";
  CHECK(mp_request_id(data, len, id, sizeof id) == 0 && strcmp(id, "built-1") == 0);
  jina_net_oneshot_options o;
  CHECK_OK(jina_net_oneshot_options_init(&o, sizeof o));
  o.endpoint = "/index";
  jina_net_response *resp = NULL;
  CHECK_OK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, data, len, jn_servers_address(s, "a"), &o, &resp));
  jina_net_request_bytes_free(data, len);
  if (resp) {
    const uint8_t *body = NULL;
    size_t body_len = 0;
    char who[64] = "";
    CHECK_OK(jina_net_response_body(resp, &body, &body_len));
    CHECK(mp_request_id(body, body_len, id, sizeof id) == 0 && strcmp(id, "built-1") == 0);
    CHECK(mp_last_executor(body, body_len, who, sizeof who) == 0 && strcmp(who, "a") == 0);
    jina_net_response_free(resp);
    resp = NULL;
  }
  jina_net_request_builder_free(b);

  /* control requests: the echo worker answers each with the request */
  const uint32_t commands[] = {JINA_NET_CONTROL_STATUS, JINA_NET_CONTROL_ACTIVATE, JINA_NET_CONTROL_DEACTIVATE};
  for (int i = 0; i < 3; i++) {
    const char *host = commands[i] == JINA_NET_CONTROL_STATUS ? NULL : "127.0.0.1";
    CHECK_OK(jina_net_control_request_build(commands[i], host, 9, i == 1 ? 1 : JINA_NET_NO_SHARD, &data, &len));
    CHECK_OK(jina_net_send_request_sync(JINA_NET_REQUEST_CONTROL, data, len, jn_servers_address(s, "a"), NULL, &resp));
    if (resp) {
      const uint8_t *body = NULL;
      size_t body_len = 0;
      CHECK_OK(jina_net_response_body(resp, &body, &body_len));
      CHECK(body_len == len && memcmp(body, data, len) == 0);
      jina_net_response_free(resp);
      resp = NULL;
    }
    jina_net_request_bytes_free(data, len);
  }
  data = (uint8_t *)&msg;
  len = 12345;
  CHECK(jina_net_control_request_build(7, NULL, 0, JINA_NET_NO_SHARD, &data, &len) == JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_control_request_build(JINA_NET_CONTROL_STATUS, "h", 1, JINA_NET_NO_SHARD, &data, &len) ==
        JINA_NET_INVALID_ARGUMENT);
  CHECK(jina_net_control_request_build(JINA_NET_CONTROL_ACTIVATE, NULL, 1, JINA_NET_NO_SHARD, &data, &len) ==
        JINA_NET_NULL_ARGUMENT);
  CHECK(data == (uint8_t *)&msg && len == 12345);
  jina_net_request_builder_free(NULL);
  jina_net_request_bytes_free(NULL, 0);
}

int main(void) {
  jn_servers s;
  const char *specs[] = {"echo=a", "echo=b", "echo=c", "echo=h", "unavailable=u", "error=e", "slow:5000=s",
                         "head:worker=h2", "echo=w"};
  if (jn_servers_start(&s, jn_test_server_binary(), specs, (int)(sizeof specs / sizeof *specs)) != 0) {
    fprintf(stderr, "cannot start %s (build it with `cargo build --workspace`)\n", jn_test_server_binary());
    return 2;
  }
  test_version_and_runtime_init();
  test_routing(&s);
  test_failures(&s);
  test_bad_input();
  test_oneshot_and_control(&s);
  test_host_checks();
  test_free_while_sending(&s);
  test_huge_timeouts(&s);
  test_owned_buffers(&s);
  test_caller_driven(&s);
  test_callbacks_in_poll(&s);
  test_tuning(&s);
  test_request_metadata(&s);
  test_request_builder(&s);
  test_misuse_table(&s);
  test_fork_child(&s);
  test_shutdown(&s);
  jn_servers_stop(&s);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
