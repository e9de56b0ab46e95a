/*
 * A binary built against a frozen header, run against the current library: the promise that the
 * C ABI grows without breaking old binaries (see README, "Version and ABI policy").
 *
 * This program includes tests/compat/jina_net-0.2.0.h, a copy of the header of version 0.2.0 that
 * is never regenerated, and runs against target/debug/libjina_net.so as it is now (tests/c/run.sh
 * builds it with AddressSanitizer + UBSan). Every struct it hands to the library is
 *   - allocated on the heap with exactly the size its header declares (ASan flags any byte the
 *     library reads or writes past it), and
 *   - copied into a buffer between guard bytes, whose guards must be intact after the call;
 * results are read through the accessors only. A library that reads or writes past what the
 * caller's header declared fails here.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jina_net-0.2.0.h"
#include "../c/mini_proto.h"
#include "../c/test_servers.h"

static int failed, passed;
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (cond) {                                                              \
      passed++;                                                              \
    } else {                                                                 \
      failed++;                                                              \
      char m_[512] = "";                                                     \
      jina_net_last_error_message(m_, sizeof m_);                            \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (%s)\n", __FILE__, __LINE__, #cond, m_); \
    }                                                                        \
  } while (0)

#define GUARD 0x5a
#define GUARD_LEN 64

/* A struct of `size` bytes between GUARD_LEN guard bytes on either side. */
typedef struct guarded {
  uint8_t *base;
  size_t size;
} guarded;

static guarded guarded_new(size_t size) {
  guarded g = {malloc(size + 2 * GUARD_LEN), size};
  memset(g.base, GUARD, size + 2 * GUARD_LEN);
  return g;
}
static void *guarded_ptr(guarded *g) { return g->base + GUARD_LEN; }
static int guards_intact(const guarded *g) {
  for (size_t i = 0; i < GUARD_LEN; i++)
    if (g->base[i] != GUARD || g->base[GUARD_LEN + g->size + i] != GUARD) return 0;
  return 1;
}

/* A completion: the first target's status, response length and the `seen-x-compat` trailer. */
typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  jina_net_result status;
  size_t targets;
  size_t response_len;
  char seen[64];
} waiter;

static void on_done(void *user_data, const jina_net_send_result *r) {
  waiter *w = user_data;
  pthread_mutex_lock(&w->mu);
  w->status = r->status;
  w->targets = r->targets_len;
  const jina_net_target_result *t = jina_net_send_result_target(r, 0);
  if (t) {
    w->response_len = t->response_len;
    for (size_t i = 0; i < t->metadata_len; i++) {
      const jina_net_metadata *m = jina_net_target_result_metadata(t, i);
      if (strcmp(m->key, "seen-x-compat") == 0 && m->value_len < sizeof w->seen) {
        memcpy(w->seen, m->value, m->value_len);
        w->seen[m->value_len] = 0;
      }
    }
  }
  w->done++;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void wait_for(waiter *w, int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&w->mu);
  while (w->done < n)
    if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0) break;
  pthread_mutex_unlock(&w->mu);
}

int main(void) {
  jn_servers s;
  const char *specs[] = {"echo=a"};
  if (jn_servers_start(&s, jn_test_server_binary(), specs, 1) != 0) {
    fprintf(stderr, "cannot start %s\n", jn_test_server_binary());
    return 2;
  }
  printf("compat: header %d.%d.%d, library %s\n", JINA_NET_VERSION_MAJOR, JINA_NET_VERSION_MINOR,
         JINA_NET_VERSION_PATCH, jina_net_version());
  /* The library may be newer, never of another ABI: same major (and minor before 1.0). */
  CHECK(strncmp(jina_net_version(), "0.2.", 4) == 0);

  /* Pool options: exactly sized on the heap (ASan), and guarded. */
  jina_net_pool_options *heap_opts = malloc(sizeof *heap_opts);
  CHECK(jina_net_pool_options_init_resilient(heap_opts, sizeof *heap_opts) == JINA_NET_OK);
  CHECK(heap_opts->struct_size == sizeof *heap_opts && heap_opts->fail_over);
  guarded go = guarded_new(sizeof(jina_net_pool_options));
  CHECK(jina_net_pool_options_init(guarded_ptr(&go), sizeof(jina_net_pool_options)) == JINA_NET_OK);
  CHECK(guards_intact(&go));
  jina_net_pool_options *opts = guarded_ptr(&go);
  opts->max_attempts = 2;
  opts->metrics = true;
  jina_net_pool *pool = NULL, *pool2 = NULL;
  CHECK(jina_net_pool_new(opts, &pool) == JINA_NET_OK);
  CHECK(jina_net_pool_new(heap_opts, &pool2) == JINA_NET_OK);
  CHECK(guards_intact(&go));
  jina_net_pool_free(pool2);
  free(heap_opts);
  CHECK(jina_net_pool_add_connection(pool, "d", jn_servers_address(&s, "a"), false, 0, NULL) == JINA_NET_OK);

  /* Send options with metadata, guarded; the request buffer and the metadata array too. */
  uint8_t buf[256];
  size_t n = mp_data_request(buf, "compat");
  guarded greq = guarded_new(sizeof(jina_net_bytes));
  jina_net_bytes *req = guarded_ptr(&greq);
  req->data = buf;
  req->len = n;
  guarded gmd = guarded_new(sizeof(jina_net_metadata));
  jina_net_metadata *md = guarded_ptr(&gmd);
  md->key = "x-compat";
  md->value = (const uint8_t *)"0.2.0";
  md->value_len = 5;
  guarded gso = guarded_new(sizeof(jina_net_send_options));
  jina_net_send_options *so = guarded_ptr(&gso);
  CHECK(jina_net_send_options_init(so, sizeof *so) == JINA_NET_OK);
  CHECK(guards_intact(&gso));
  so->metadata = md;
  so->metadata_len = 1;
  so->timeout_ms = 10000;
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, ""};
  CHECK(jina_net_pool_send_ex(pool, req, 1, "d", so, on_done, &w, NULL) == JINA_NET_OK);
  wait_for(&w, 1);
  CHECK(w.done == 1 && w.status == JINA_NET_OK && w.targets == 1 && w.response_len > 0);
  CHECK(strcmp(w.seen, "0.2.0") == 0);
  CHECK(guards_intact(&gso) && guards_intact(&gmd) && guards_intact(&greq));

  /* Exactly sized send options on the heap, the plain send, the owned-less path. */
  jina_net_send_options *heap_so = malloc(sizeof *heap_so);
  CHECK(jina_net_send_options_init(heap_so, sizeof *heap_so) == JINA_NET_OK);
  CHECK(jina_net_pool_send_ex(pool, req, 1, "d", heap_so, on_done, &w, NULL) == JINA_NET_OK);
  CHECK(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, req, 1, "d", false, JINA_NET_NO_SHARD, JINA_NET_SHARDS_ANY,
                           NULL, 0, on_done, &w, NULL) == JINA_NET_OK);
  wait_for(&w, 3);
  CHECK(w.done == 3 && w.status == JINA_NET_OK);
  free(heap_so);

  /* One-shot options, guarded and exactly sized. */
  guarded goo = guarded_new(sizeof(jina_net_oneshot_options));
  jina_net_oneshot_options *oo = guarded_ptr(&goo);
  CHECK(jina_net_oneshot_options_init(oo, sizeof *oo) == JINA_NET_OK);
  CHECK(guards_intact(&goo));
  oo->timeout_ms = 10000;
  jina_net_response *resp = NULL;
  CHECK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, buf, n, jn_servers_address(&s, "a"), oo, &resp) ==
        JINA_NET_OK);
  CHECK(guards_intact(&goo));
  jina_net_response_free(resp);
  jina_net_oneshot_options *heap_oo = malloc(sizeof *heap_oo);
  CHECK(jina_net_oneshot_options_init(heap_oo, sizeof *heap_oo) == JINA_NET_OK);
  resp = NULL;
  CHECK(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, buf, n, jn_servers_address(&s, "a"), heap_oo, &resp) ==
        JINA_NET_OK);
  jina_net_response_free(resp);
  free(heap_oo);

  jina_net_pool_free(pool);
  free(go.base);
  free(greq.base);
  free(gmd.base);
  free(gso.base);
  free(goo.base);
  jn_servers_stop(&s);
  printf("compat: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
