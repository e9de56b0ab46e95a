package jinanet

// Small C shims around the C ABI. They exist for the cgo pointer rules: Go may pass C a pointer to
// Go memory only if that memory holds no Go pointers, so an array of jina_net_bytes pointing at Go
// byte slices cannot be built in Go. Instead Go passes one byte buffer plus the lengths of the
// messages in it, and the shim builds the jina_net_bytes array on the C side. The shims also turn the
// uintptr_t of a runtime/cgo.Handle into the library's void *user_data (and back, in the trampoline),
// so no Go pointer ever travels as user_data.

/*
#include <stdint.h>
#include <stdlib.h>
#include "jina_net.h"

// Defined in callback.go (//export).
extern void jinanetSendComplete(uintptr_t handle, jina_net_send_result *result);

static void jinanet_trampoline(void *user_data, const jina_net_send_result *result) {
	jinanetSendComplete((uintptr_t)user_data, (jina_net_send_result *)result);
}

// Builds the request array from `n` messages stored back to back in `data` (lengths `lens`).
// Returns NULL only when allocation fails; `one` is used when n <= 1.
static jina_net_bytes *jinanet_items(const uint8_t *data, const size_t *lens, size_t n, jina_net_bytes *one) {
	jina_net_bytes *items = one;
	if (n > 1) {
		items = malloc(n * sizeof *items);
		if (items == NULL) return NULL;
	}
	one->data = NULL;
	one->len = 0;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		items[i].data = lens[i] == 0 ? NULL : data + off;
		items[i].len = lens[i];
		off += lens[i];
	}
	return items;
}

static jina_net_result jinanet_pool_send(jina_net_pool *pool, uint32_t kind, const uint8_t *data,
		const size_t *lens, size_t n, const char *deployment, bool head, int64_t shard_id,
		uint32_t polling, const char *endpoint, uint64_t timeout_ms, uintptr_t handle,
		uint64_t *out_send_id) {
	jina_net_bytes one;
	jina_net_bytes *items = jinanet_items(data, lens, n, &one);
	if (items == NULL) return JINA_NET_RUNTIME_ERROR;
	jina_net_result rc = jina_net_pool_send(pool, kind, items, n, deployment, head, shard_id, polling,
		endpoint, timeout_ms, jinanet_trampoline, (void *)handle, out_send_id);
	if (items != &one) free(items);
	return rc;
}

// Owned request buffers (CBuffer): C memory from malloc, handed to jina_net_pool_send_owned, which
// frees each exactly once through this function. The counter is read by the tests.
static _Atomic uint64_t jinanet_owned_freed;

static void jinanet_free_owned(void *ctx, const uint8_t *data, size_t len) {
	(void)ctx;
	(void)len;
	free((void *)data);
	jinanet_owned_freed++;
}

static uint64_t jinanet_owned_freed_count(void) { return jinanet_owned_freed; }

static jina_net_result jinanet_pool_send_owned(jina_net_pool *pool, uint32_t kind, const jina_net_bytes *items,
		size_t n, const char *deployment, bool head, int64_t shard_id, uint32_t polling, const char *endpoint,
		uint64_t timeout_ms, uintptr_t handle, uint64_t *out_send_id) {
	return jina_net_pool_send_owned(pool, kind, items, n, jinanet_free_owned, NULL, deployment, head, shard_id,
		polling, endpoint, timeout_ms, jinanet_trampoline, (void *)handle, out_send_id);
}

static jina_net_result jinanet_send_requests_sync(uint32_t kind, const uint8_t *data,
		const size_t *lens, size_t n, const char *target, uint64_t timeout_ms, bool tls,
		const uint8_t *pem, size_t pem_len, const char *endpoint, jina_net_response **out) {
	jina_net_oneshot_options options = {timeout_ms, tls, pem, pem_len, endpoint};
	jina_net_bytes one;
	jina_net_bytes *items = jinanet_items(data, lens, n, &one);
	if (items == NULL) return JINA_NET_RUNTIME_ERROR;
	jina_net_result rc = jina_net_send_requests_sync(kind, items, n, target, &options, out);
	if (items != &one) free(items);
	return rc;
}

static jina_net_result jinanet_worker_control(bool activate, const char *host, uint16_t port,
		const char *head, int64_t shard_id, uintptr_t handle) {
	if (activate)
		return jina_net_activate_worker(host, port, head, shard_id, jinanet_trampoline, (void *)handle);
	return jina_net_deactivate_worker(host, port, head, shard_id, jinanet_trampoline, (void *)handle);
}
*/
import "C"

import (
	"strings"
	"unsafe"
)

// cMessages lays out messages for the shims: one buffer (the message itself when there is only one,
// so the common case copies nothing) and the lengths. The pointers stay valid while the returned
// slices are alive; the callers keep them alive with runtime.KeepAlive after the C call.
func cMessages(messages [][]byte) (data *C.uint8_t, lens []C.size_t, buf []byte) {
	lens = make([]C.size_t, len(messages))
	total := 0
	for i, m := range messages {
		lens[i] = C.size_t(len(m))
		total += len(m)
	}
	switch {
	case total == 0:
		return nil, lens, nil
	case len(messages) == 1:
		buf = messages[0]
	default:
		buf = make([]byte, 0, total)
		for _, m := range messages {
			buf = append(buf, m...)
		}
	}
	return (*C.uint8_t)(unsafe.Pointer(&buf[0])), lens, buf
}

func lensPtr(lens []C.size_t) *C.size_t {
	if len(lens) == 0 {
		return nil
	}
	return &lens[0]
}

// cString copies s to C memory (free with C.free); a string holding a NUL byte is refused instead
// of being silently cut short.
func cString(s, what, fn string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, newError(CodeInvalidArgument, fn+": "+what+" contains a NUL byte")
	}
	return C.CString(s), nil
}

// cOptionalString is cString, with "" meaning NULL.
func cOptionalString(s, what, fn string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return cString(s, what, fn)
}

func freeString(p *C.char) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}

// poolSend calls the jina_net_pool_send shim (C statics are visible only in this file).
func poolSend(pool *C.jina_net_pool, kind C.uint32_t, data *C.uint8_t, lens *C.size_t, n C.size_t,
	dep *C.char, head C.bool, shard C.int64_t, polling C.uint32_t, endpoint *C.char, timeoutMS C.uint64_t,
	handle C.uintptr_t, outID *C.uint64_t) uint32 {
	return uint32(C.jinanet_pool_send(pool, kind, data, lens, n, dep, head, shard, polling, endpoint, timeoutMS, handle, outID))
}

// poolSendOwned calls jina_net_pool_send_owned with the C free function of CBuffers. items holds
// only C pointers (CBuffer memory), so it may live in Go memory.
func poolSendOwned(pool *C.jina_net_pool, kind C.uint32_t, items *C.jina_net_bytes, n C.size_t, dep *C.char,
	head C.bool, shard C.int64_t, polling C.uint32_t, endpoint *C.char, timeoutMS C.uint64_t, handle C.uintptr_t,
	outID *C.uint64_t) uint32 {
	return uint32(C.jinanet_pool_send_owned(pool, kind, items, n, dep, head, shard, polling, endpoint, timeoutMS,
		handle, outID))
}

// ownedFreedByLibrary is how many CBuffers the library has freed so far (for the tests).
func ownedFreedByLibrary() uint64 { return uint64(C.jinanet_owned_freed_count()) }

// sendRequestsSync calls the jina_net_send_requests_sync shim.
func sendRequestsSync(kind C.uint32_t, data *C.uint8_t, lens *C.size_t, n C.size_t, target *C.char,
	timeoutMS C.uint64_t, tls C.bool, pem *C.uint8_t, pemLen C.size_t, endpoint *C.char,
	out **C.jina_net_response) uint32 {
	return uint32(C.jinanet_send_requests_sync(kind, data, lens, n, target, timeoutMS, tls, pem, pemLen, endpoint, out))
}

// workerControl calls jina_net_activate_worker (activate) or jina_net_deactivate_worker.
func workerControl(activate bool, host *C.char, port C.uint16_t, head *C.char, shard C.int64_t,
	handle C.uintptr_t) uint32 {
	return uint32(C.jinanet_worker_control(C.bool(activate), host, port, head, shard, handle))
}
