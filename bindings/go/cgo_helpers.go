package jinanet

// Small C shims around the C ABI. They exist for the cgo pointer rules: Go may pass C a pointer to
// Go memory only if that memory holds no Go pointers, so an array of jina_net_bytes pointing at Go
// byte slices cannot be built in Go. Instead Go passes one byte buffer plus the lengths of the
// messages in it, and the shim builds the jina_net_bytes array on the C side (the same for request
// metadata: metadata.go lays the entries out, the shim builds the jina_net_metadata array). The
// shims also build every options struct in C, initialised by the library's _init function with the
// struct's sizeof (C ABI 0.2.0: the library reads only struct_size bytes), and turn the uintptr_t
// handle of a waiting send (callback.go) into the library's void *user_data (and back, in the
// trampoline), so no Go pointer ever travels as user_data.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include "jina_net.h"

// Defined in callback.go (//export).
extern void jinanetSendComplete(uintptr_t handle, jina_net_send_result *result, int direct);

// Set while this thread is inside jina_net_pool_wait_ready (jinanet_pool_wait_ready): a caller-driven
// pool runs on that thread meanwhile, so the callbacks of other goroutines' sends may run there, on a
// thread that does not hold the pool's role of poller (driver.go). They then signal their senders
// at once instead of joining the poller's batch.
static _Thread_local int jinanet_waiting_ready;

static void jinanet_trampoline(void *user_data, const jina_net_send_result *result) {
	jinanetSendComplete((uintptr_t)user_data, (jina_net_send_result *)result, jinanet_waiting_ready);
}

// jina_net_pool_wait_ready, marking the thread (see jinanet_waiting_ready).
static jina_net_result jinanet_pool_wait_ready(jina_net_pool *pool, const char *deployment, uint64_t timeout_ms) {
	jinanet_waiting_ready = 1;
	jina_net_result rc = jina_net_pool_wait_ready(pool, deployment, timeout_ms);
	jinanet_waiting_ready = 0;
	return rc;
}

// jina_net_pool_add_connection_ex with the settings of one replica (server_name NULL = the pool's),
// the options initialised with the caller's sizeof as the ABI asks.
static jina_net_result jinanet_add_connection_ex(jina_net_pool *pool, const char *deployment, const char *address,
		bool head, int64_t shard_id, const char *server_name, bool *out_added) {
	jina_net_add_options o;
	jina_net_result rc = jina_net_add_options_init(&o, sizeof o);
	if (rc != JINA_NET_OK) return rc;
	o.head = head;
	o.shard_id = shard_id;
	o.tls_server_name = server_name;
	return jina_net_pool_add_connection_ex(pool, deployment, address, &o, out_added);
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

// The request metadata of a send, from `n` entries laid out by Go (metadata.go): each key, a NUL and
// its value back to back in `data`, the lengths of key and value of entry i in lens[2i] and
// lens[2i+1]. The entries point into `data`. `small` (room for `cap` entries) is used when they fit,
// else malloc'ed memory (free it when it is not `small`). NULL when allocation fails.
static jina_net_metadata *jinanet_metadata(const uint8_t *data, const size_t *lens, size_t n,
		jina_net_metadata *small, size_t cap) {
	jina_net_metadata *md = small;
	if (n > cap) {
		md = malloc(n * sizeof *md);
		if (md == NULL) return NULL;
	}
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		md[i].key = (const char *)data + off;
		off += lens[2 * i] + 1;
		md[i].value = data + off;
		md[i].value_len = lens[2 * i + 1];
		off += lens[2 * i + 1];
	}
	return md;
}

#define JINANET_SMALL_METADATA 8

// The settings of a send that needs the _ex functions (an idempotent send, or one with metadata),
// initialised with the caller's sizeof as the ABI asks.
static jina_net_result jinanet_send_options(jina_net_send_options *o, uint32_t kind, bool head, int64_t shard_id,
		uint32_t shards, const char *ep, uint64_t timeout_ms, bool idempotent, const jina_net_metadata *md,
		size_t md_n) {
	jina_net_result rc = jina_net_send_options_init(o, sizeof *o);
	if (rc != JINA_NET_OK) return rc;
	o->kind = kind;
	o->head = head;
	o->shard_id = shard_id;
	o->shards = shards;
	o->endpoint = ep;
	o->timeout_ms = timeout_ms;
	o->idempotent = idempotent;
	o->metadata = md;
	o->metadata_len = md_n;
	return JINA_NET_OK;
}

// A pool send: `n` messages back to back in `data` (lengths `lens`, or `single_len` when lens is
// NULL and n is 1), the deployment and the endpoint (NULL = none) as Go string bytes, and `md_n`
// request metadata entries (see jinanet_metadata). A send that is idempotent (which the pool may
// hedge) or carries metadata goes through jina_net_pool_send_ex; any other through the plain
// jina_net_pool_send, which builds no options struct.
static jina_net_result jinanet_pool_send(jina_net_pool *pool, uint32_t kind, const uint8_t *data,
		const size_t *lens, size_t n, size_t single_len, const char *dep, size_t dep_len, bool head,
		int64_t shard_id, uint32_t shards, const char *ep, size_t ep_len, uint64_t timeout_ms,
		bool idempotent, const uint8_t *md_data, const size_t *md_lens, size_t md_n, uintptr_t handle,
		uint64_t *out_send_id) {
	if (lens == NULL) lens = &single_len;
	jina_net_bytes one;
	jina_net_bytes *items = jinanet_items(data, lens, n, &one);
	if (items == NULL) return JINA_NET_RUNTIME_ERROR;
	jina_net_metadata md_small[JINANET_SMALL_METADATA];
	jina_net_metadata *md = NULL;
	jinanet_send_strings st;
	jina_net_result rc = JINA_NET_RUNTIME_ERROR;
	if (md_n > 0) md = jinanet_metadata(md_data, md_lens, md_n, md_small, JINANET_SMALL_METADATA);
	if (md_n == 0 || md != NULL) {
		if (!jinanet_strings(&st, dep, dep_len, ep, ep_len)) {
			rc = JINA_NET_RUNTIME_ERROR;
		} else if (idempotent || md_n > 0) {
			jina_net_send_options o;
			rc = jinanet_send_options(&o, kind, head, shard_id, shards, st.ep, timeout_ms, idempotent, md, md_n);
			if (rc == JINA_NET_OK)
				rc = jina_net_pool_send_ex(pool, items, n, st.dep, &o, jinanet_trampoline, (void *)handle, out_send_id);
		} else {
			rc = jina_net_pool_send(pool, kind, items, n, st.dep, head, shard_id, shards, st.ep, timeout_ms,
				jinanet_trampoline, (void *)handle, out_send_id);
		}
		jinanet_strings_free(&st);
	}
	if (md != md_small) free(md);
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

// An owned pool send: as jinanet_pool_send, with the buffers `items` handed to the library, which
// frees each through jinanet_free_owned (also when the send fails). An idempotent send or one with
// metadata goes through jina_net_pool_send_owned_ex.
static jina_net_result jinanet_pool_send_owned(jina_net_pool *pool, uint32_t kind, const jina_net_bytes *items,
		size_t n, const char *dep, size_t dep_len, bool head, int64_t shard_id, uint32_t shards, const char *ep,
		size_t ep_len, uint64_t timeout_ms, bool idempotent, const uint8_t *md_data, const size_t *md_lens,
		size_t md_n, uintptr_t handle, uint64_t *out_send_id) {
	jina_net_metadata md_small[JINANET_SMALL_METADATA];
	jina_net_metadata *md = NULL;
	jina_net_send_options o;
	jinanet_send_strings st;
	jina_net_result rc = JINA_NET_RUNTIME_ERROR;
	bool ex = idempotent || md_n > 0;
	if (md_n > 0) md = jinanet_metadata(md_data, md_lens, md_n, md_small, JINANET_SMALL_METADATA);
	bool ready = (md_n == 0 || md != NULL) && jinanet_strings(&st, dep, dep_len, ep, ep_len);
	if (ready && ex) {
		rc = jinanet_send_options(&o, kind, head, shard_id, shards, st.ep, timeout_ms, idempotent, md, md_n);
		ready = rc == JINA_NET_OK;
	}
	if (!ready) {
		// The library never saw the buffers: free them as it would have.
		for (size_t i = 0; i < n; i++)
			if (items[i].data != NULL) jinanet_free_owned(NULL, items[i].data, items[i].len);
	} else if (ex) {
		rc = jina_net_pool_send_owned_ex(pool, items, n, jinanet_free_owned, NULL, st.dep, &o, jinanet_trampoline,
			(void *)handle, out_send_id);
	} else {
		rc = jina_net_pool_send_owned(pool, kind, items, n, jinanet_free_owned, NULL, st.dep, head, shard_id,
			shards, st.ep, timeout_ms, jinanet_trampoline, (void *)handle, out_send_id);
	}
	if (md_n == 0 || md != NULL) jinanet_strings_free(&st);
	if (md != md_small) free(md);
	return rc;
}

static jina_net_result jinanet_send_requests_sync(uint32_t kind, const uint8_t *data,
		const size_t *lens, size_t n, size_t single_len, const char *target, uint64_t timeout_ms, bool tls,
		const uint8_t *pem, size_t pem_len, const char *endpoint, const uint8_t *chain, size_t chain_len,
		const uint8_t *key, size_t key_len, const char *server_name, uint32_t compression, jina_net_response **out) {
	jina_net_oneshot_options options;
	jina_net_result rc = jina_net_oneshot_options_init(&options, sizeof options);
	if (rc != JINA_NET_OK) return rc;
	options.timeout_ms = timeout_ms;
	options.tls = tls;
	options.root_certificates_pem = pem;
	options.root_certificates_pem_len = pem_len;
	options.endpoint = endpoint;
	// C ABI 0.2.2: only what is set is written, so a library that predates these fields sees the
	// tail of the struct untouched.
	if (chain_len > 0) {
		options.tls_cert_chain_pem = chain;
		options.tls_cert_chain_pem_len = chain_len;
	}
	if (key_len > 0) {
		options.tls_private_key_pem = key;
		options.tls_private_key_pem_len = key_len;
	}
	if (server_name != NULL) options.tls_server_name = server_name;
	if (compression != 0) options.compression = compression;
	if (lens == NULL) lens = &single_len;
	jina_net_bytes one;
	jina_net_bytes *items = jinanet_items(data, lens, n, &one);
	if (items == NULL) return JINA_NET_RUNTIME_ERROR;
	rc = jina_net_send_requests_sync(kind, items, n, target, &options, out);
	if (items != &one) free(items);
	return rc;
}

// Pool options with their defaults (resilient: the library's recommended settings), initialised with
// the caller's sizeof as the ABI asks.
static jina_net_result jinanet_pool_options_init(jina_net_pool_options *o, bool resilient) {
	if (resilient) return jina_net_pool_options_init_resilient(o, sizeof *o);
	return jina_net_pool_options_init(o, sizeof *o);
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
	"runtime"
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

// poolSend calls the jinanet_pool_send shim (C statics are visible only in this file): the plain
// jina_net_pool_send, or jina_net_pool_send_ex for a send that is idempotent or carries metadata
// (md; nil = none). The shim makes a deployment "" (dep.p nil) the C string "" and an endpoint ""
// (endpoint.p nil) NULL (none).
func poolSend(pool *C.jina_net_pool, kind C.uint32_t, data *C.uint8_t, lens *C.size_t, n, single C.size_t,
	dep goString, head C.bool, shard C.int64_t, shards C.uint32_t, endpoint goString, timeoutMS C.uint64_t,
	idempotent C.bool, md *sendMetadata, handle C.uintptr_t, outID *C.uint64_t) C.jina_net_result {
	mdData, mdLens, mdN := md.args()
	return C.jinanet_pool_send(pool, kind, data, lens, n, single, dep.p, dep.n, head, shard, shards,
		endpoint.p, endpoint.n, timeoutMS, idempotent, mdData, mdLens, mdN, handle, outID)
}

// poolSendOwned calls jina_net_pool_send_owned (idempotent, or with metadata:
// jina_net_pool_send_owned_ex) with the C free function of CBuffers. items holds only C pointers
// (CBuffer memory), so it may live in Go memory.
func poolSendOwned(pool *C.jina_net_pool, kind C.uint32_t, items *C.jina_net_bytes, n C.size_t, dep goString,
	head C.bool, shard C.int64_t, shards C.uint32_t, endpoint goString, timeoutMS C.uint64_t, idempotent C.bool,
	md *sendMetadata, handle C.uintptr_t, outID *C.uint64_t) C.jina_net_result {
	mdData, mdLens, mdN := md.args()
	return C.jinanet_pool_send_owned(pool, kind, items, n, dep.p, dep.n, head, shard, shards, endpoint.p,
		endpoint.n, timeoutMS, idempotent, mdData, mdLens, mdN, handle, outID)
}

// initPoolOptions fills o with the library's defaults (resilient: its recommended settings).
func initPoolOptions(o *C.jina_net_pool_options, resilient bool) C.jina_net_result {
	return C.jinanet_pool_options_init(o, C.bool(resilient))
}

// ownedFreedByLibrary is how many CBuffers the library has freed so far (for the tests).
func ownedFreedByLibrary() uint64 { return uint64(C.jinanet_owned_freed_count()) }

// oneShotTransport is the TLS identity, server name and compression of a one-shot send: the
// identity's bytes are Go memory (without Go pointers) read by the shim during the call, the server
// name is a C string (nil = none).
type oneShotTransport struct {
	chain, key  []byte
	serverName  *C.char
	compression Compression
}

// sendRequestsSync calls the jina_net_send_requests_sync shim.
func sendRequestsSync(kind C.uint32_t, data *C.uint8_t, lens *C.size_t, n, single C.size_t, target *C.char,
	timeoutMS C.uint64_t, tls C.bool, pem *C.uint8_t, pemLen C.size_t, endpoint *C.char, tr *oneShotTransport,
	out **C.jina_net_response) C.jina_net_result {
	var chain, key *C.uint8_t
	if len(tr.chain) > 0 {
		chain = (*C.uint8_t)(unsafe.Pointer(&tr.chain[0]))
	}
	if len(tr.key) > 0 {
		key = (*C.uint8_t)(unsafe.Pointer(&tr.key[0]))
	}
	rc := C.jinanet_send_requests_sync(kind, data, lens, n, single, target, timeoutMS, tls, pem, pemLen, endpoint,
		chain, C.size_t(len(tr.chain)), key, C.size_t(len(tr.key)), tr.serverName, C.uint32_t(tr.compression), out)
	runtime.KeepAlive(tr.chain)
	runtime.KeepAlive(tr.key)
	return rc
}

// addConnectionEx calls jina_net_pool_add_connection_ex through its shim.
func addConnectionEx(pool *C.jina_net_pool, dep, addr *C.char, head C.bool, shard C.int64_t, serverName *C.char,
	added *C.bool) C.jina_net_result {
	return C.jinanet_add_connection_ex(pool, dep, addr, head, shard, serverName, added)
}

// poolWaitReady calls jina_net_pool_wait_ready, the thread marked for the callbacks run inside it.
func poolWaitReady(pool *C.jina_net_pool, dep *C.char, timeoutMS C.uint64_t) C.jina_net_result {
	return C.jinanet_pool_wait_ready(pool, dep, timeoutMS)
}

// workerControl calls jina_net_activate_worker (activate) or jina_net_deactivate_worker.
func workerControl(activate bool, host *C.char, port C.uint16_t, head *C.char, shard C.int64_t,
	handle C.uintptr_t) C.jina_net_result {
	return C.jinanet_worker_control(C.bool(activate), host, port, head, shard, handle)
}
