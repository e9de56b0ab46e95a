/*
 * Starting the project's test servers (target/<profile>/jina-net-test-server, installed as
 * jina-net-echo) from the C and C++ test programs and benchmarks. Header-only; POSIX.
 *
 *   jn_servers s;
 *   const char *specs[] = {"echo=a", "echo=b", "head:worker=h"};
 *   if (jn_servers_start(&s, binary_path, specs, 3) != 0) ...
 *   const char *addr = jn_servers_address(&s, "a");   // "127.0.0.1:PORT"
 *   jn_servers_stop(&s);
 *
 * Specs are the binary's arguments: ROLE[@PORT][=NAME], ROLE one of echo, error, unavailable,
 * flaky:N, slow:MS, head[:deployment], head-all[:deployment].
 */
#ifndef JINA_NET_TEST_SERVERS_H
#define JINA_NET_TEST_SERVERS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define JN_MAX_SERVERS 32

typedef struct jn_servers {
  pid_t pid;
  int count;
  char names[JN_MAX_SERVERS][64];
  char addresses[JN_MAX_SERVERS][64];
  int ports[JN_MAX_SERVERS];
} jn_servers;

/* The test server binary: $JINA_NET_TEST_SERVER, else target/debug/jina-net-test-server. */
static inline const char *jn_test_server_binary(void) {
  const char *env = getenv("JINA_NET_TEST_SERVER");
  return env && *env ? env : "target/debug/jina-net-test-server";
}

/* Starts one test-server process serving every spec; returns 0 once all listen. */
static inline int jn_servers_start(jn_servers *s, const char *binary, const char *const *specs, int n) {
  int out[2];
  memset(s, 0, sizeof *s);
  if (n <= 0 || n > JN_MAX_SERVERS || pipe(out) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    char **argv = (char **)calloc((size_t)n + 2, sizeof(char *));
    if (!argv) _exit(127);
    argv[0] = (char *)binary;
    for (int i = 0; i < n; i++) argv[i + 1] = (char *)specs[i];
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execv(binary, argv);
    perror("execv jina-net-test-server");
    _exit(127);
  }
  close(out[1]);
  s->pid = pid;
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
    if (sscanf(line, "SERVER %63s %63s %63s", name, role, addr) == 3 && s->count < JN_MAX_SERVERS) {
      snprintf(s->names[s->count], sizeof s->names[0], "%s", name);
      snprintf(s->addresses[s->count], sizeof s->addresses[0], "%s", addr);
      const char *colon = strrchr(addr, ':');
      s->ports[s->count] = colon ? atoi(colon + 1) : 0;
      s->count++;
    }
  }
  fclose(f);
  if (!ready) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
  }
  return 0;
}

static inline int jn_servers_index(const jn_servers *s, const char *name) {
  for (int i = 0; i < s->count; i++)
    if (strcmp(s->names[i], name) == 0) return i;
  return -1;
}

/* "127.0.0.1:PORT" of the server called `name`, or NULL. */
static inline const char *jn_servers_address(const jn_servers *s, const char *name) {
  int i = jn_servers_index(s, name);
  return i < 0 ? NULL : s->addresses[i];
}

/* The port of the server called `name`, or 0. */
static inline int jn_servers_port(const jn_servers *s, const char *name) {
  int i = jn_servers_index(s, name);
  return i < 0 ? 0 : s->ports[i];
}

/* Stops the server process (SIGTERM) and waits for it. */
static inline void jn_servers_stop(jn_servers *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

#endif /* JINA_NET_TEST_SERVERS_H */
