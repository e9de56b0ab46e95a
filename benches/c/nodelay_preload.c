/*
 * LD_PRELOAD shim for the echo worker of jina-net-bench: sets TCP_NODELAY on every accepted socket.
 *
 * jina-net-test-server serves through `serve_with_incoming_shutdown` on a plain TcpListener stream,
 * where tonic's `Server::tcp_nodelay` does not apply, so its responses go out with Nagle's algorithm
 * on. Against the client's delayed ACKs that stalls some responses by ~40 ms (seen in every client's
 * p99/p99.9 and in 1 MiB throughput). A jina 3.1 worker (grpc C-core) sets TCP_NODELAY; so does
 * this shim, leaving the server binary as it is. `jina-net-bench run --server-as-is` runs without it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
  if (fd >= 0) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int s = real(fd, addr, len, flags);
  nodelay(s);
  return s;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  static int (*real)(int, struct sockaddr *, socklen_t *);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  int s = real(fd, addr, len);
  nodelay(s);
  return s;
}
