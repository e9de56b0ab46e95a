package jinanet

// Test hooks that need C (test files cannot use cgo). Not part of the API.

/*
#include <stdint.h>
#include "jina_net.h"

// A send result as the library may hand one over: empty buffers with dangling pointers (Rust's empty
// slices point at address 1), which Go must never keep in a pointer-typed variable.
#define JINANET_DANGLING ((const uint8_t *)(uintptr_t)1)
static const jina_net_metadata jinanet_fake_metadata[3] = {
	{"empty", JINANET_DANGLING, 0},
	{"replica", (const uint8_t *)"w", 1},
	{"empty-too", JINANET_DANGLING, 0},
};
static const jina_net_target_result jinanet_fake_targets[1] = {{
	.status = JINA_NET_OK, .grpc_code = 0, .head = false, .shard_id = 0,
	.address = "127.0.0.1:1", .grpc_message = "", .error_message = "",
	.response = JINANET_DANGLING, .response_len = 0,
	.metadata = jinanet_fake_metadata, .metadata_len = 3,
}};
static const jina_net_send_result jinanet_fake_result = {
	.send_id = 1, .status = JINA_NET_OK, .error_message = "",
	.targets = jinanet_fake_targets, .targets_len = 1, .internal = NULL,
};
static const jina_net_send_result *jinanet_fake(void) { return &jinanet_fake_result; }
*/
import "C"

// convertDanglingResult converts a result whose empty buffers have dangling pointers (for the
// tests): an empty body and two empty trailer values; with a string cache or without.
func convertDanglingResult(cached bool) ([]*Response, error) {
	var c *internCache
	if cached {
		c = new(internCache)
	}
	out := convertSendResult(C.jinanet_fake(), c, false)
	return out.responses, out.err
}
