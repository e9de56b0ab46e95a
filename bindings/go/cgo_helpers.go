package jinanet

// Small C shims around the C ABI. They exist for the cgo pointer rules: Go may pass C a pointer to
// Go memory only if that memory holds no Go pointers, so an array of jina_net_bytes pointing at Go
// byte slices cannot be built in Go. Instead Go passes one byte buffer plus the lengths of the
// messages in it, and the shim builds the jina_net_bytes array on the C side. The shims also turn the
// uintptr_t handle of a waiting send (callback.go) into the library's void *user_data (and back, in
// the trampoline), so no Go pointer ever travels as user_data.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

// A Go string's bytes (no NUL inside, not NUL-terminated) as a C string: copied into buf when it
// fits, else into malloc'ed memory stored in *heap (the caller frees it). NULL when allocation fails.
static const char *jinanet_cstr(const char *s, size_t len, char *buf, size_t cap, char **heap) {
	char *d = buf;
	if (len >= cap) {
		d = malloc(len + 1);
		if (d == NULL) return NULL;
		*heap = d;
	}
	if (len > 0) memcpy(d, s, len);
	d[len] = 0;
	return d;
}

// The strings of a pool send (the deployment; the endpoint, NULL = none) as C strings, copied from the
// Go strings on this C stack: no C.CString (a malloc and a free, each a cgo call of its own) per send.
typedef struct {
	char dep_buf[128], ep_buf[128];
	char *dep_heap, *ep_heap;
	const char *dep, *ep;
} jinanet_send_strings;

static int jinanet_strings(jinanet_send_strings *st, const char *dep, size_t dep_len, const char *ep, size_t ep_len) {
	st->dep_heap = st->ep_heap = NULL;
	st->ep = NULL;
	st->dep = jinanet_cstr(dep, dep_len, st->dep_buf, sizeof st->dep_buf, &st->dep_heap);
	if (st->dep == NULL) return 0;
	if (ep != NULL) {
		st->ep = jinanet_cstr(ep, ep_len, st->ep_buf, sizeof st->ep_buf, &st->ep_heap);
		if (st->ep == NULL) return 0;
	}
	return 1;
}

static void jinanet_strings_free(jinanet_send_strings *st) {
	free(st->dep_heap);
	free(st->ep_heap);
}

// The options of an idempotent send (the only sends that need the _ex functions).
static jina_net_send_options jinanet_idempotent(uint32_t kind, bool head, int64_t shard_id, uint32_t polling,
		const char *ep, uint64_t timeout_ms) {
	jina_net_send_options o;
	jina_net_send_options_init(&o);
	o.kind = kind;
	o.head = head;
	o.shard_id = shard_id;
	o.shards = polling;
	o.endpoint = ep;
	o.timeout_ms = timeout_ms;
	o.idempotent = true;
	return o;
}

// A pool send: `n` messages back to back in `data` (lengths `lens`, or `single_len` when lens is
// NULL and n is 1), the deployment and the endpoint (NULL = none) as Go string bytes.
// An idempotent send (which the pool may hedge) goes through jina_net_pool_send_ex.
static jina_net_result jinanet_pool_send(jina_net_pool *pool, uint32_t kind, const uint8_t *data,
		const size_t *lens, size_t n, size_t single_len, const char *dep, size_t dep_len, bool head,
		int64_t shard_id, uint32_t polling, const char *ep, size_t ep_len, uint64_t timeout_ms,
		bool idempotent, uintptr_t handle, uint64_t *out_send_id) {
	if (lens == NULL) lens = &single_len;
	jina_net_bytes one;
	jina_net_bytes *items = jinanet_items(data, lens, n, &one);
	if (items == NULL) return JINA_NET_RUNTIME_ERROR;
	jinanet_send_strings st;
	jina_net_result rc = JINA_NET_RUNTIME_ERROR;
	if (jinanet_strings(&st, dep, dep_len, ep, ep_len)) {
		if (idempotent) {
			jina_net_send_options o = jinanet_idempotent(kind, head, shard_id, polling, st.ep, timeout_ms);
			rc = jina_net_pool_send_ex(pool, items, n, st.dep, &o, jinanet_trampoline, (void *)handle, out_send_id);
		} else {
			rc = jina_net_pool_send(pool, kind, items, n, st.dep, head, shard_id, polling, st.ep, timeout_ms,
				jinanet_trampoline, (void *)handle, out_send_id);
		}
	}
	jinanet_strings_free(&st);
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

// An idempotent send (which the pool may hedge) goes through jina_net_pool_send_owned_ex.
static jina_net_result jinanet_pool_send_owned(jina_net_pool *pool, uint32_t kind, const jina_net_bytes *items,
		size_t n, const char *dep, size_t dep_len, bool head, int64_t shard_id, uint32_t polling, const char *ep,
		size_t ep_len, uint64_t timeout_ms, bool idempotent, uintptr_t handle, uint64_t *out_send_id) {
	jinanet_send_strings st;
	if (!jinanet_strings(&st, dep, dep_len, ep, ep_len)) {
		// The library never saw the buffers: free them as it would have.
		for (size_t i = 0; i < n; i++)
			if (items[i].data != NULL) jinanet_free_owned(NULL, items[i].data, items[i].len);
		jinanet_strings_free(&st);
		return JINA_NET_RUNTIME_ERROR;
	}
	jina_net_result rc;
	if (idempotent) {
		jina_net_send_options o = jinanet_idempotent(kind, head, shard_id, polling, st.ep, timeout_ms);
		rc = jina_net_pool_send_owned_ex(pool, items, n, jinanet_free_owned, NULL, st.dep, &o, jinanet_trampoline,
			(void *)handle, out_send_id);
	} else {
		rc = jina_net_pool_send_owned(pool, kind, items, n, jinanet_free_owned, NULL, st.dep, head, shard_id,
			polling, st.ep, timeout_ms, jinanet_trampoline, (void *)handle, out_send_id);
	}
	jinanet_strings_free(&st);
	return rc;
}

static jina_net_result jinanet_send_requests_sync(uint32_t kind, const uint8_t *data,
		const size_t *lens, size_t n, size_t single_len, const char *target, uint64_t timeout_ms, bool tls,
		const uint8_t *pem, size_t pem_len, const char *endpoint, jina_net_response **out) {
	jina_net_oneshot_options options = {timeout_ms, tls, pem, pem_len, endpoint};
	if (lens == NULL) lens = &single_len;
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
// so the common case copies nothing) and the lengths: lens for several messages, single (lens nil)
// for one, so that a one-message send allocates nothing here. The pointers stay valid while the
// returned slices are alive; the callers keep them alive with runtime.KeepAlive after the C call.
func cMessages(messages [][]byte) (data *C.uint8_t, lens []C.size_t, single C.size_t, buf []byte) {
	switch len(messages) {
	case 0:
		return nil, nil, 0, nil
	case 1:
		buf = messages[0]
		single = C.size_t(len(buf))
	default:
		lens = make([]C.size_t, len(messages))
		total := 0
		for i, m := range messages {
			lens[i] = C.size_t(len(m))
			total += len(m)
		}
		buf = make([]byte, 0, total)
		for _, m := range messages {
			buf = append(buf, m...)
		}
	}
	if len(buf) == 0 {
		return nil, lens, single, buf
	}
	return (*C.uint8_t)(unsafe.Pointer(&buf[0])), lens, single, buf
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

// goString is a Go string for the send shims, which copy it into a C string on their stack: its
// bytes (Go memory without Go pointers, so C may read it during the call) and length, after the
// same NUL check as cString. The caller keeps s alive (runtime.KeepAlive) until the call returned.
type goString struct {
	p *C.char // nil for ""
	n C.size_t
}

func sendString(s, what, fn string) (goString, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return goString{}, newError(CodeInvalidArgument, fn+": "+what+" contains a NUL byte")
	}
	if s == "" {
		return goString{}, nil
	}
	return goString{p: (*C.char)(*(*unsafe.Pointer)(unsafe.Pointer(&s))), n: C.size_t(len(s))}, nil
}

// poolSend calls the jina_net_pool_send shim (C statics are visible only in this file), or with
// idempotent jina_net_pool_send_ex. The shim makes a deployment "" (dep.p nil) the C string "" and
// an endpoint "" (endpoint.p nil) NULL (none).
func poolSend(pool *C.jina_net_pool, kind C.uint32_t, data *C.uint8_t, lens *C.size_t, n, single C.size_t,
	dep goString, head C.bool, shard C.int64_t, polling C.uint32_t, endpoint goString, timeoutMS C.uint64_t,
	idempotent C.bool, handle C.uintptr_t, outID *C.uint64_t) uint32 {
	return uint32(C.jinanet_pool_send(pool, kind, data, lens, n, single, dep.p, dep.n, head, shard, polling,
		endpoint.p, endpoint.n, timeoutMS, idempotent, handle, outID))
}

// poolSendOwned calls jina_net_pool_send_owned (an idempotent send: jina_net_pool_send_owned_ex) with
// the C free function of CBuffers. items holds only C pointers (CBuffer memory), so it may live in
// Go memory.
func poolSendOwned(pool *C.jina_net_pool, kind C.uint32_t, items *C.jina_net_bytes, n C.size_t, dep goString,
	head C.bool, shard C.int64_t, polling C.uint32_t, endpoint goString, timeoutMS C.uint64_t, idempotent C.bool,
	handle C.uintptr_t, outID *C.uint64_t) uint32 {
	return uint32(C.jinanet_pool_send_owned(pool, kind, items, n, dep.p, dep.n, head, shard, polling, endpoint.p,
		endpoint.n, timeoutMS, idempotent, handle, outID))
}

// ownedFreedByLibrary is how many CBuffers the library has freed so far (for the tests).
func ownedFreedByLibrary() uint64 { return uint64(C.jinanet_owned_freed_count()) }

// sendRequestsSync calls the jina_net_send_requests_sync shim.
func sendRequestsSync(kind C.uint32_t, data *C.uint8_t, lens *C.size_t, n, single C.size_t, target *C.char,
	timeoutMS C.uint64_t, tls C.bool, pem *C.uint8_t, pemLen C.size_t, endpoint *C.char,
	out **C.jina_net_response) uint32 {
	return uint32(C.jinanet_send_requests_sync(kind, data, lens, n, single, target, timeoutMS, tls, pem, pemLen, endpoint, out))
}

// workerControl calls jina_net_activate_worker (activate) or jina_net_deactivate_worker.
func workerControl(activate bool, host *C.char, port C.uint16_t, head *C.char, shard C.int64_t,
	handle C.uintptr_t) uint32 {
	return uint32(C.jinanet_worker_control(C.bool(activate), host, port, head, shard, handle))
}
