/*
 * A small gateway in C on libjina_net: it starts embedded echo workers and a head on 127.0.0.1
 * (the project's jina-net-test-server), registers them in a pool, routes a batch of requests with
 * ANY and ALL, registers a worker with the head (ACTIVATE) and sends through the head, printing
 * what answered where. Run it with scripts/demo.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jina_net.h> /* scripts/demo.sh: -Iinclude; installed: pkg-config --cflags jina_net */
#include "../tests/c/mini_proto.h"
#include "../tests/c/test_servers.h"

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending;
} waiter;

/* Runs on a library runtime thread: print and count down. */
static void on_done(void *user_data, const jina_net_send_result *r) {
  waiter *w = (waiter *)user_data;
  for (size_t i = 0; i < r->targets_len; i++) {
    const jina_net_target_result *t = jina_net_send_result_target(r, i);
    char id[64] = "?", who[128] = "?";
    if (t->status == JINA_NET_OK) {
      mp_request_id(t->response, t->response_len, id, sizeof id);
      mp_route_chain(t->response, t->response_len, who, sizeof who);
      char where[32];
      if (t->head)
        snprintf(where, sizeof where, "head");
      else
        snprintf(where, sizeof where, "shard %lld", (long long)t->shard_id);
      printf("  %-7s -> %-8s at %-16s route: %s (%zu bytes)\n", id, where, t->address, who, t->response_len);
    } else {
      printf("  failed: %s\n", t->error_message);
    }
  }
  if (r->targets_len == 0) printf("  failed: %s\n", r->error_message);
  pthread_mutex_lock(&w->mu);
  w->pending--;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void wait_all(waiter *w) {
  pthread_mutex_lock(&w->mu);
  while (w->pending > 0) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

static int check(jina_net_result r, const char *what) {
  if (r == JINA_NET_OK) return 0;
  char msg[512];
  jina_net_last_error_message(msg, sizeof msg);
  fprintf(stderr, "%s failed: %s: %s\n", what, jina_net_result_name((uint32_t)r), msg);
  return 1;
}

static int send_batch(jina_net_pool *pool, waiter *w, const char *prefix, const char *deployment, bool head,
                      uint32_t polling, int n) {
  for (int i = 0; i < n; i++) {
    uint8_t buf[128];
    char id[64];
    snprintf(id, sizeof id, "%s-%d", prefix, i);
    jina_net_bytes req = {buf, mp_data_request(buf, id)};
    pthread_mutex_lock(&w->mu);
    w->pending++;
    pthread_mutex_unlock(&w->mu);
    if (check(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, &req, 1, deployment, head, JINA_NET_NO_SHARD, polling,
                                 "/index", 5000, on_done, w, NULL),
              "send")) {
      pthread_mutex_lock(&w->mu);
      w->pending--;
      pthread_mutex_unlock(&w->mu);
      return 1;
    }
  }
  wait_all(w);
  return 0;
}

int main(void) {
  const char *specs[] = {"echo=encoder-r0", "echo=encoder-r1", "echo=indexer-s0", "echo=indexer-s1",
                         "head:ranker=ranker-head", "echo=ranker-w0"};
  jn_servers s;
  printf("libjina_net %s demo gateway\n\n", jina_net_version());
  if (jn_servers_start(&s, jn_test_server_binary(), specs, 6) != 0) {
    fprintf(stderr, "could not start %s\n", jn_test_server_binary());
    return 1;
  }
  for (int i = 0; i < s.count; i++) printf("started %-12s on %s\n", s.names[i], s.addresses[i]);

  int rc = 0;
  jina_net_pool *pool = NULL;
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  rc |= check(jina_net_pool_new(NULL, &pool), "pool_new");
  if (rc) goto out;
  rc |= check(jina_net_pool_add_connection(pool, "encoder", jn_servers_address(&s, "encoder-r0"), false, 0, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "encoder", jn_servers_address(&s, "encoder-r1"), false, 0, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "indexer", jn_servers_address(&s, "indexer-s0"), false, 0, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "indexer", jn_servers_address(&s, "indexer-s1"), false, 1, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "ranker", jn_servers_address(&s, "ranker-head"), true, JINA_NET_NO_SHARD, NULL), "add");
  if (rc) goto out;

  char *routes = NULL;
  if (jina_net_pool_routes(pool, &routes) == JINA_NET_OK) {
    printf("\nrouting table (deployment, head/shard, replicas):\n%s", routes);
    jina_net_string_free(routes);
  }

  printf("\nANY: 4 requests to \"encoder\" (round robin over its 2 replicas)\n");
  rc |= send_batch(pool, &w, "enc", "encoder", false, JINA_NET_SHARDS_ANY, 4);
  printf("\nALL: 2 requests to \"indexer\" (each goes to both shards)\n");
  rc |= send_batch(pool, &w, "idx", "indexer", false, JINA_NET_SHARDS_ALL, 2);

  printf("\nACTIVATE ranker-w0 at the ranker head, then 2 requests through the head\n");
  rc |= check(jina_net_activate_worker_sync("127.0.0.1", (uint16_t)jn_servers_port(&s, "ranker-w0"),
                                            jn_servers_address(&s, "ranker-head"), 5000, JINA_NET_NO_SHARD, NULL),
              "activate_worker_sync");
  rc |= send_batch(pool, &w, "rank", "ranker", true, JINA_NET_SHARDS_ANY, 2);

  printf("\nDEACTIVATE ranker-w0; the head now has no worker:\n");
  rc |= check(jina_net_deactivate_worker_sync("127.0.0.1", (uint16_t)jn_servers_port(&s, "ranker-w0"),
                                              jn_servers_address(&s, "ranker-head"), 5000, JINA_NET_NO_SHARD, NULL),
              "deactivate_worker_sync");
  send_batch(pool, &w, "late", "ranker", true, JINA_NET_SHARDS_ANY, 1);

out:
  jina_net_pool_free(pool);
  jina_net_runtime_shutdown(2000);
  jn_servers_stop(&s);
  printf("\n%s\n", rc == 0 ? "demo finished" : "demo FAILED");
  return rc;
}
