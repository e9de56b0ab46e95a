/*
 * A small gateway in C on libjina_net: it starts echo workers and a head on 127.0.0.1 (the installed
 * jina-net-echo), registers them in a pool, routes a batch of requests with ANY and ALL, registers a
 * worker with the head (ACTIVATE) and sends through the head, printing what answered where. Requests
 * are built with the library's request builder. Run it with scripts/demo.sh, or from an installed
 * prefix:
 *
 *   cc -std=c11 demo_gateway.c $(pkg-config --cflags --libs jina_net) -lpthread -o demo_gateway
 *   PATH="$(pkg-config --variable=bindir jina_net):$PATH" ./demo_gateway   # or JINA_NET_ECHO=/path/to/jina-net-echo
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jina_net.h> /* pkg-config --cflags jina_net */

/* --- the echo workers: jina-net-echo ROLE=NAME ... prints PID, SERVER name role address, READY --- */

#define MAX_SERVERS 8

typedef struct servers {
  pid_t pid;
  int stdin_fd; /* the write end of its stdin: closed when this process exits, however it does */
  int count;
  char names[MAX_SERVERS][64];
  char addresses[MAX_SERVERS][64];
} servers;

/* $JINA_NET_ECHO, else jina-net-echo from PATH. */
static const char *echo_binary(void) {
  const char *env = getenv("JINA_NET_ECHO");
  return env && *env ? env : "jina-net-echo";
}

/* Starts one jina-net-echo process serving every spec; 0 once it printed READY. */
static int servers_start(servers *s, const char *const *specs, int n) {
  int out[2], in[2];
  memset(s, 0, sizeof *s);
  s->stdin_fd = -1;
  if (n <= 0 || n > MAX_SERVERS || pipe(out) != 0) return -1;
  if (pipe(in) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    char *argv[MAX_SERVERS + 3];
    argv[0] = (char *)echo_binary();
    argv[1] = (char *)"--exit-on-stdin-eof"; /* it stops when this process exits, however it does */
    for (int i = 0; i < n; i++) argv[i + 2] = (char *)specs[i];
    argv[n + 2] = NULL;
    dup2(out[1], STDOUT_FILENO);
    dup2(in[0], STDIN_FILENO);
    close(out[0]);
    close(out[1]);
    close(in[0]);
    close(in[1]);
    execvp(argv[0], argv);
    perror("jina-net-echo (install libjina_net, or set JINA_NET_ECHO)");
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  s->pid = pid;
  s->stdin_fd = in[1];
  FILE *f = fdopen(out[0], "r");
  if (!f) return -1;
  char line[256];
  int ready = 0;
  while (fgets(line, sizeof line, f)) {
    char name[64], role[64], addr[64];
    if (strncmp(line, "READY", 5) == 0) {
      ready = 1;
      break;
    }
    if (sscanf(line, "SERVER %63s %63s %63s", name, role, addr) == 3 && s->count < MAX_SERVERS) {
      snprintf(s->names[s->count], sizeof s->names[0], "%s", name);
      snprintf(s->addresses[s->count], sizeof s->addresses[0], "%s", addr);
      s->count++;
    }
  }
  fclose(f);
  if (!ready) {
    close(s->stdin_fd);
    s->stdin_fd = -1;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
  }
  return 0;
}

/* "127.0.0.1:PORT" of the server called `name`, or NULL. */
static const char *servers_address(const servers *s, const char *name) {
  for (int i = 0; i < s->count; i++)
    if (strcmp(s->names[i], name) == 0) return s->addresses[i];
  return NULL;
}

static int servers_port(const servers *s, const char *name) {
  const char *a = servers_address(s, name);
  const char *colon = a ? strrchr(a, ':') : NULL;
  return colon ? atoi(colon + 1) : 0;
}

static void servers_stop(servers *s) {
  if (s->stdin_fd >= 0) close(s->stdin_fd);
  s->stdin_fd = -1;
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

/* --- reading two fields of a DataRequestProto answer (header.request_id, routes[].executor) --- */

static int varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
    uint8_t b = p[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* Calls `each` for every length-delimited field `field` at the top level of a message. */
static int fields(const uint8_t *p, size_t len, uint32_t field, void (*each)(const uint8_t *, size_t, void *),
                  void *ctx) {
  size_t pos = 0;
  while (pos < len) {
    uint64_t key, v;
    if (varint(p, len, &pos, &key)) return -1;
    switch (key & 7) {
      case 0:
        if (varint(p, len, &pos, &v)) return -1;
        break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2:
        if (varint(p, len, &pos, &v) || v > len - pos) return -1;
        if ((key >> 3) == field) each(p + pos, (size_t)v, ctx);
        pos += (size_t)v;
        break;
      default: return -1;
    }
  }
  return 0;
}

typedef struct text {
  char *buf;
  size_t cap;
} text;

static void append(const uint8_t *p, size_t len, void *ctx) {
  text *t = (text *)ctx;
  size_t used = strlen(t->buf);
  snprintf(t->buf + used, t->cap - used, "%s%.*s", used ? " -> " : "", (int)len, (const char *)p);
}

static void field1(const uint8_t *p, size_t len, void *ctx) { fields(p, len, 1, append, ctx); }

/* header.request_id (header = 1, request_id = 1). */
static void request_id(const uint8_t *p, size_t len, char *buf, size_t cap) {
  text t = {buf, cap};
  buf[0] = 0;
  fields(p, len, 1, field1, &t);
}

/* routes[].executor joined with " -> " (routes = 3, executor = 1): the path a request took. */
static void route_chain(const uint8_t *p, size_t len, char *buf, size_t cap) {
  text t = {buf, cap};
  buf[0] = 0;
  fields(p, len, 3, field1, &t);
}

/* --- the gateway --- */

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
      request_id(t->response, t->response_len, id, sizeof id);
      route_chain(t->response, t->response_len, who, sizeof who);
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
  jina_net_request_builder *builder = NULL;
  if (check(jina_net_request_builder_new(&builder), "request_builder_new")) return 1;
  int rc = check(jina_net_request_builder_add_text(builder, "a document"), "add_text") ||
           check(jina_net_request_builder_set_endpoint(builder, "/index"), "set_endpoint");
  for (int i = 0; i < n && !rc; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%d", prefix, i);
    uint8_t *data = NULL;
    size_t len = 0;
    rc = check(jina_net_request_builder_set_request_id(builder, id), "set_request_id") ||
         check(jina_net_request_builder_build(builder, &data, &len), "build");
    if (rc) break;
    jina_net_bytes req = {data, len};
    pthread_mutex_lock(&w->mu);
    w->pending++;
    pthread_mutex_unlock(&w->mu);
    /* the bytes are copied by the send: freed right after */
    rc = check(jina_net_pool_send(pool, JINA_NET_REQUEST_DATA, &req, 1, deployment, head, JINA_NET_NO_SHARD, polling,
                                  "/index", 5000, on_done, w, NULL),
               "send");
    jina_net_request_bytes_free(data, len);
    if (rc) {
      pthread_mutex_lock(&w->mu);
      w->pending--;
      pthread_mutex_unlock(&w->mu);
    }
  }
  jina_net_request_builder_free(builder);
  wait_all(w);
  return rc;
}

int main(void) {
  const char *specs[] = {"echo=encoder-r0", "echo=encoder-r1", "echo=indexer-s0", "echo=indexer-s1",
                         "head:ranker=ranker-head", "echo=ranker-w0"};
  servers s;
  printf("libjina_net %s demo gateway\n\n", jina_net_version());
  if (servers_start(&s, specs, 6) != 0) {
    fprintf(stderr, "could not start %s\n", echo_binary());
    return 1;
  }
  for (int i = 0; i < s.count; i++) printf("started %-12s on %s\n", s.names[i], s.addresses[i]);

  int rc = 0;
  jina_net_pool *pool = NULL;
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  rc |= check(jina_net_pool_new(NULL, &pool), "pool_new");
  if (rc) goto out;
  rc |= check(jina_net_pool_add_connection(pool, "encoder", servers_address(&s, "encoder-r0"), false, 0, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "encoder", servers_address(&s, "encoder-r1"), false, 0, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "indexer", servers_address(&s, "indexer-s0"), false, 0, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "indexer", servers_address(&s, "indexer-s1"), false, 1, NULL), "add");
  rc |= check(jina_net_pool_add_connection(pool, "ranker", servers_address(&s, "ranker-head"), true, JINA_NET_NO_SHARD, NULL), "add");
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
  rc |= check(jina_net_activate_worker_sync("127.0.0.1", (uint16_t)servers_port(&s, "ranker-w0"),
                                            servers_address(&s, "ranker-head"), 5000, JINA_NET_NO_SHARD, NULL),
              "activate_worker_sync");
  rc |= send_batch(pool, &w, "rank", "ranker", true, JINA_NET_SHARDS_ANY, 2);

  printf("\nDEACTIVATE ranker-w0; the head now has no worker:\n");
  rc |= check(jina_net_deactivate_worker_sync("127.0.0.1", (uint16_t)servers_port(&s, "ranker-w0"),
                                              servers_address(&s, "ranker-head"), 5000, JINA_NET_NO_SHARD, NULL),
              "deactivate_worker_sync");
  send_batch(pool, &w, "late", "ranker", true, JINA_NET_SHARDS_ANY, 1);

out:
  jina_net_pool_free(pool);
  jina_net_runtime_shutdown(2000);
  servers_stop(&s);
  printf("\n%s\n", rc == 0 ? "demo finished" : "demo FAILED");
  return rc;
}
