/*
 * Request bytes without a protobuf library: builds a jina DataRequestProto with the C helper
 * (jina_net_request_builder_*), sends it to a worker with the blocking one-shot helper and reads the
 * answer; then a STATUS control request (jina_net_control_request_build).
 *
 *   jina-net-echo &                      # prints SERVER server0 echo 127.0.0.1:PORT, then READY
 *   cc echo_client.c $(pkg-config --cflags --libs jina_net) -o echo_client
 *   ./echo_client 127.0.0.1:PORT
 */
#include <stdio.h>
#include <string.h>

#include <jina_net.h>

static int check(jina_net_result r, const char *what) {
  if (r == JINA_NET_OK) return 0;
  char msg[512];
  jina_net_last_error_message(msg, sizeof msg);
  fprintf(stderr, "%s: %s: %s\n", what, jina_net_result_name((uint32_t)r), msg);
  return 1;
}

/* The value of trailing metadata `key` of a response, or "-". */
static void trailer(const jina_net_response *response, const char *key, char *out, size_t cap) {
  snprintf(out, cap, "-");
  for (size_t i = 0; i < jina_net_response_metadata_count(response); i++) {
    const char *k;
    const uint8_t *v;
    size_t len;
    if (jina_net_response_metadata(response, i, &k, &v, &len) == JINA_NET_OK && strcmp(k, key) == 0) {
      snprintf(out, cap, "%.*s", (int)len, (const char *)v);
      return;
    }
  }
}

/* Whether `needle` occurs in the `len` bytes at `p`. */
static int contains(const uint8_t *p, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; n <= len && i <= len - n; i++)
    if (memcmp(p + i, needle, n) == 0) return 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s HOST:PORT   (a jina 3.1 worker or head, e.g. jina-net-echo's)\n", argv[0]);
    return 2;
  }
  const char *target = argv[1];

  /* A data request: three documents, an endpoint, the executor's parameters as JSON. */
  jina_net_request_builder *builder = NULL;
  if (check(jina_net_request_builder_new(&builder), "request_builder_new")) return 1;
  const uint8_t image[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a};
  int rc = check(jina_net_request_builder_add_text(builder, "hello"), "add_text") ||
           check(jina_net_request_builder_add_text(builder, "world"), "add_text") ||
           check(jina_net_request_builder_add_bytes(builder, image, sizeof image, "image/png"), "add_bytes") ||
           check(jina_net_request_builder_set_endpoint(builder, "/index"), "set_endpoint") ||
           check(jina_net_request_builder_set_request_id(builder, "example-1"), "set_request_id") ||
           check(jina_net_request_builder_set_parameters_json(builder, "{\"top_k\": 3}"), "set_parameters_json");
  uint8_t *request = NULL;
  size_t request_len = 0;
  if (!rc) rc = check(jina_net_request_builder_build(builder, &request, &request_len), "build");
  jina_net_request_builder_free(builder);
  if (rc) return 1;

  /* Send it: the endpoint goes as metadata too (heads route on it). */
  jina_net_oneshot_options options;
  jina_net_oneshot_options_init(&options, sizeof options);
  options.endpoint = "/index";
  options.timeout_ms = 10000;
  jina_net_response *response = NULL;
  rc = check(jina_net_send_request_sync(JINA_NET_REQUEST_DATA, request, request_len, target, &options, &response),
             "send_request_sync");
  jina_net_request_bytes_free(request, request_len);
  if (rc) return 1;
  const uint8_t *body;
  size_t body_len;
  char replica[64];
  jina_net_response_body(response, &body, &body_len);
  trailer(response, "replica", replica, sizeof replica);
  /* The echo worker answers with the request (routes[] grows by its name); a real executor's answer
   * is parsed with the installed protos (pkg-config --variable=protodir jina_net). */
  int echoed = contains(body, body_len, "example-1");
  printf("data request: %zu bytes sent, %zu bytes back from %s (replica %s), request id %s\n", request_len,
         body_len, jina_net_response_address(response), replica, echoed ? "echoed" : "NOT echoed");
  jina_net_response_free(response);

  /* A STATUS control request. */
  uint8_t *status = NULL;
  size_t status_len = 0;
  if (check(jina_net_control_request_build(JINA_NET_CONTROL_STATUS, NULL, 0, JINA_NET_NO_SHARD, &status, &status_len),
            "control_request_build"))
    return 1;
  jina_net_oneshot_options_init(&options, sizeof options);
  options.timeout_ms = 10000;
  rc = check(jina_net_send_request_sync(JINA_NET_REQUEST_CONTROL, status, status_len, target, &options, &response),
             "send_request_sync (STATUS)");
  jina_net_request_bytes_free(status, status_len);
  if (rc) return 1;
  printf("STATUS: answered by %s\n", jina_net_response_address(response));
  jina_net_response_free(response);
  return echoed ? 0 : 1;
}
