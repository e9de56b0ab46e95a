package jinanet

/*
#include "jina_net.h"
#include "jinanet_shim.h"

// The library may give an empty buffer a dangling pointer (Rust's empty slices point at address 1).
// Go must never hold such a value in a pointer-typed variable: when a goroutine stack holding one
// is copied, the runtime aborts ("invalid pointer found on stack"). These wrappers write only NULL or
// a valid address (jinanet_empty for an empty buffer) into Go memory.
static const uint8_t jinanet_empty[1];

static jina_net_result jinanet_response_body(const jina_net_response *r, const uint8_t **out, size_t *out_len) {
	const uint8_t *data = NULL;
	size_t len = 0;
	jina_net_result rc = jina_net_response_body(r, &data, &len);
	if (rc == JINA_NET_OK) {
		*out = (len == 0 && data != NULL) ? jinanet_empty : data;
		*out_len = len;
	}
	return rc;
}

static jina_net_result jinanet_response_metadata(const jina_net_response *r, size_t index, const char **out_key,
		const uint8_t **out_value, size_t *out_len) {
	const char *key = NULL;
	const uint8_t *value = NULL;
	size_t len = 0;
	jina_net_result rc = jina_net_response_metadata(r, index, &key, &value, &len);
	if (rc == JINA_NET_OK) {
		*out_key = key;
		*out_value = (len == 0 && value != NULL) ? jinanet_empty : value;
		*out_len = len;
	}
	return rc;
}

// Reading a send result (convertSendResult). The library's accessors give target i of a result and
// entry j of a target's trailing metadata; one cgo call per target (jinanet_target) reads the target
// and copies up to JINANET_MD_BATCH of its entries into this thread's jinanet_md_batch, so Go walks
// them without a cgo call per entry. The values of the copies are NULL when empty (never a dangling
// pointer, see above). A callback runs on one OS thread from start to end, so the batch stays put
// while Go reads it; other callers must lock their goroutine to its thread.
#define JINANET_MD_BATCH 32
static _Thread_local jina_net_metadata jinanet_md_batch[JINANET_MD_BATCH];

typedef struct {
	const jina_net_target_result *target; // NULL: no such target
	const jina_net_metadata *md;          // jinanet_md_batch
	size_t md_n;                          // entries copied there
} jinanet_target_view;

// Copies the target's entries from index `from` on (at most JINANET_MD_BATCH) into the batch.
static size_t jinanet_md_fill(const jinanet_reader *rd, const jina_net_target_result *t, size_t from) {
	size_t n = 0;
	for (size_t j = from; j < t->metadata_len && n < JINANET_MD_BATCH; j++) {
		const jina_net_metadata *e = rd != NULL ? rd->metadata(t, j) : jina_net_target_result_metadata(t, j);
		if (e == NULL) break;
		jina_net_metadata *d = &jinanet_md_batch[n++];
		d->key = e->key != NULL ? e->key : "";
		d->value = e->value_len == 0 ? NULL : e->value;
		d->value_len = e->value_len;
	}
	return n;
}

// Target `index` of `r` (reader: NULL = the library's accessors) and its first metadata entries.
// Every field of jina_net_target_result read by Go exists since version 0.2.0, the first with
// struct_size, so any library of this soname has them.
static jinanet_target_view jinanet_target(const void *reader, const jina_net_send_result *r, size_t index) {
	const jinanet_reader *rd = reader;
	jinanet_target_view v = {NULL, jinanet_md_batch, 0};
	v.target = rd != NULL ? rd->target(r, index) : jina_net_send_result_target(r, index);
	if (v.target != NULL) v.md_n = jinanet_md_fill(rd, v.target, 0);
	return v;
}

// The target's metadata entries from index `from` on, for a target with more than JINANET_MD_BATCH.
static jinanet_target_view jinanet_target_metadata(const void *reader, const jina_net_target_result *t, size_t from) {
	jinanet_target_view v = {t, jinanet_md_batch, 0};
	v.md_n = jinanet_md_fill(reader, t, from);
	return v;
}
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// Response is the outcome of a send at one target (ALL polling: one per shard).
type Response struct {
	// Status is CodeOK when the target answered.
	Status Code
	// Err is nil when the target answered, else an *Error saying why it did not.
	Err error
	// Head says the target was the deployment's head.
	Head bool
	// Shard is the target's shard, -1 for a head or a one-shot send to an address.
	Shard int
	// Address is "host:port" of the replica that answered (or failed).
	Address string
	// Body is the serialized response message (a DataRequestProto, or a ControlRequestProto for
	// control requests); nil on failure.
	Body []byte
	// Trailer is the trailing metadata of the response (on failure: of the error status).
	Trailer Metadata

	// retained: a large body kept in the library by the callback (no copy there), copied into Body
	// by the sending goroutine before Send returns (materialize), or lent to SendView's function as
	// a view of the library's buffer and freed after it (lend, release).
	retained *C.jina_net_response
}

// sendOutcome is what the completion callback hands to the waiting goroutine.
type sendOutcome struct {
	responses []*Response
	err       error
}

// goBytes copies the n bytes that the pointer at field (in C memory) points to: nil for a NULL
// pointer, empty for n == 0. The pointer is read only when n > 0: an empty buffer's pointer may
// dangle (address 1), and a Go pointer-typed variable must never hold such a value (the runtime
// aborts when it copies a stack holding one). So never copy a C struct with such a field into a
// Go variable either; read it through a pointer to the struct.
func goBytes(field **C.uint8_t, n C.size_t) []byte {
	if n == 0 {
		if *field == nil { // compared, not kept
			return nil
		}
		return []byte{}
	}
	src := cBytes(field, n)
	b := make([]byte, len(src)) // make + copy of the same length: the compiler skips the zeroing
	copy(b, src)
	return b
}

// cBytes is the C buffer at *field as a []byte, without a copy (valid as long as the buffer; nil
// for n == 0, see goBytes).
func cBytes(field **C.uint8_t, n C.size_t) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(*field)), int(n))
}

// cStringBytes is the NUL-terminated C string p as a []byte, without a copy (nil for NULL).
func cStringBytes(p *C.char) []byte {
	if p == nil {
		return nil
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), n)
}

// internCache hands out the strings of earlier results again (addresses, metadata keys and short
// values repeat from one response to the next), so that converting a result like the ones before
// allocates none of them. A nil cache copies every string. Not safe for concurrent use: a caller-
// driven pool's cache is used only by the goroutine holding its role of poller.
type internCache struct {
	slots [64]string
}

// internMax: longer strings are copied, not cached.
const internMax = 64

func (c *internCache) bytes(b []byte) string {
	if c == nil || len(b) > internMax {
		return string(b)
	}
	h := uint32(2166136261) // FNV-1a
	for _, x := range b {
		h = (h ^ uint32(x)) * 16777619
	}
	slot := &c.slots[h%uint32(len(c.slots))]
	if *slot != string(b) { // compared without a copy
		*slot = string(b)
	}
	return *slot
}

func (c *internCache) str(p *C.char) string { return c.bytes(cStringBytes(p)) }

// goMetadata copies the trailing metadata of the target of v (entries read in place, see goBytes).
func goMetadata(reader unsafe.Pointer, v C.jinanet_target_view, c *internCache) Metadata {
	t := v.target
	n := int(t.metadata_len)
	md := make(Metadata, n)
	if n == 0 {
		return md
	}
	values := make([]string, n) // one array for the values of all keys (a repeated key appends)
	i := 0
	for {
		entries := unsafe.Slice(v.md, int(v.md_n))
		for j := range entries {
			e := &entries[j]
			k := c.str(e.key)
			val := c.bytes(cBytes(&e.value, e.value_len))
			if vs, ok := md[k]; ok {
				md[k] = append(vs, val)
			} else {
				values[i] = val
				md[k] = values[i : i+1 : i+1] // full slice: an append copies, never overwrites a neighbour
			}
			i++
		}
		if v.md_n < C.JINANET_MD_BATCH || i >= n {
			return md
		}
		v = C.jinanet_target_metadata(reader, t, C.size_t(i)) // more entries than one batch holds
	}
}

// largeBody: from this size on, the goroutine polling a caller-driven pool keeps a response body in
// the library (jina_net_send_result_retain_response) instead of copying it into Go memory, and the
// sending goroutine copies it (materialize). The copy of a large body, its allocation and the
// garbage collector's assists that the allocation triggers then run on the senders' threads, in
// parallel, instead of holding up the one goroutine that does the pool's I/O. Smaller bodies are
// copied at once (two cgo calls more would cost more than the copy).
const largeBody = 64 << 10

// retainedBodies, materializedBodies and lentBodies count the large bodies retained, copied, and
// lent to SendView and freed (for the tests).
var retainedBodies, materializedBodies, lentBodies int64

// convertSendResult copies a C send result into Go memory (only valid during the callback), reading
// it through the library's accessors (reader nil; the tests pass their own). It must run on one OS
// thread from start to end (a callback does; see jinanet_target). intern (nil: none) reuses strings
// of earlier results; with it, or with retain, large bodies are retained, not copied (see
// largeBody): the caller must materialize the responses, or lend and release them.
func convertSendResult(r *C.jina_net_send_result, reader unsafe.Pointer, intern *internCache, retain bool) sendOutcome {
	var out sendOutcome
	var firstFailed *Error
	if n := int(r.targets_len); n > 0 {
		var resps []Response
		if n == 1 { // the usual case: the response and the slice in one allocation
			one := new(struct {
				r Response
				s [1]*Response
			})
			one.s[0] = &one.r
			resps, out.responses = unsafe.Slice(&one.r, 1), one.s[:]
		} else {
			resps, out.responses = make([]Response, n), make([]*Response, n)
			for i := range resps {
				out.responses[i] = &resps[i]
			}
		}
		for i := 0; i < n; i++ {
			v := C.jinanet_target(reader, r, C.size_t(i))
			t := v.target
			if t == nil { // fewer targets than targets_len said: not expected
				out.responses = out.responses[:i]
				break
			}
			resp := &resps[i]
			*resp = Response{
				Status:  Code(t.status),
				Head:    bool(t.head),
				Shard:   int(t.shard_id),
				Address: intern.str(t.address),
				Trailer: goMetadata(reader, v, intern),
			}
			if (intern == nil && !retain) || t.response_len < largeBody ||
				C.jina_net_send_result_retain_response(r, C.size_t(i), &resp.retained) != C.JINA_NET_OK {
				resp.Body = goBytes(&t.response, t.response_len)
			} else {
				atomic.AddInt64(&retainedBodies, 1)
			}
			if resp.Status != CodeOK {
				e := &Error{
					Code:        resp.Status,
					Message:     C.GoString(t.error_message),
					Address:     resp.Address,
					Head:        resp.Head,
					Shard:       resp.Shard,
					GRPCCode:    int(t.grpc_code),
					GRPCMessage: C.GoString(t.grpc_message),
				}
				resp.Err = e
				if firstFailed == nil && e.Code == Code(r.status) {
					firstFailed = e
				}
			}
		}
	}
	if Code(r.status) != CodeOK {
		msg := C.GoString(r.error_message)
		if firstFailed != nil {
			e := *firstFailed // the send's error is a copy: it may be annotated with the context
			e.Message = msg
			out.err = &e
		} else {
			out.err = newError(Code(r.status), msg)
		}
	}
	return out
}

// materialize copies the bodies that the callback retained into Go memory and frees the library's
// responses. The sending goroutine calls it on every outcome before Send returns.
func (out *sendOutcome) materialize() {
	for _, resp := range out.responses {
		if resp.retained == nil {
			continue
		}
		if view := bodyView(resp.retained); view != nil {
			resp.Body = make([]byte, len(view)) // make + copy of the same length: no zeroing
			copy(resp.Body, view)
		}
		resp.freeRetained(&materializedBodies)
	}
}

// lend makes the Body of every retained response a view of the library's buffer (no copy), for
// SendView's function; release must follow.
func (out *sendOutcome) lend() {
	for _, resp := range out.responses {
		if resp.retained != nil {
			resp.Body = bodyView(resp.retained)
		}
	}
}

// release frees the library's responses that lend lent and clears the Bodies that were views of
// them (a *Response kept after SendView then has a nil Body, not a dangling one).
func (out *sendOutcome) release() {
	for _, resp := range out.responses {
		if resp.retained != nil {
			resp.Body = nil
			resp.freeRetained(&lentBodies)
		}
	}
}

// bodyView is the body of a retained response as a view of the library's buffer (no copy; nil when
// empty or unreadable).
func bodyView(r *C.jina_net_response) []byte {
	var data *C.uint8_t
	var n C.size_t
	if C.jinanet_response_body(r, &data, &n) != C.JINA_NET_OK {
		return nil
	}
	return cBytes(&data, n)
}

// freeRetained frees the library's response that resp retained and counts it in counter.
func (resp *Response) freeRetained(counter *int64) {
	C.jina_net_response_free(resp.retained)
	resp.retained = nil
	atomic.AddInt64(counter, 1)
}

// convertResponse copies a response the library returned (and does not free it).
func convertResponse(r *C.jina_net_response) (*Response, error) {
	var data *C.uint8_t
	var n C.size_t
	if err := call(func() C.jina_net_result { return C.jinanet_response_body(r, &data, &n) }); err != nil {
		return nil, err
	}
	resp := &Response{
		Status:  CodeOK,
		Shard:   -1,
		Address: C.GoString(C.jina_net_response_address(r)),
		Body:    goBytes(&data, n),
		Trailer: Metadata{},
	}
	if resp.Body == nil {
		resp.Body = []byte{}
	}
	count := C.jina_net_response_metadata_count(r)
	for i := C.size_t(0); i < count; i++ {
		var key *C.char
		var value *C.uint8_t
		var vlen C.size_t
		if err := call(func() C.jina_net_result {
			return C.jinanet_response_metadata(r, i, &key, &value, &vlen)
		}); err != nil {
			return nil, err
		}
		k := C.GoString(key)
		resp.Trailer[k] = append(resp.Trailer[k], string(goBytes(&value, vlen)))
	}
	return resp, nil
}
