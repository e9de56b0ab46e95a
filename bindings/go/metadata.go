package jinanet

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// Metadata is gRPC metadata, shaped as grpc-go's metadata.MD (without importing grpc): a key maps to
// its values, in order.
//
// As request metadata (NewOutgoingContext, AppendToOutgoingContext, SendOptions.Metadata) it goes
// with every attempt of a pool send (retries, fail-over, hedges): an authorization header, a request
// id, a W3C traceparent. Keys are lower-cased as grpc-go does (Pairs, NewMetadata, Set and Append
// lower-case them, and a send lower-cases the ASCII letters of any key it finds, so a literal
// Metadata{"X-Request-Id": ...} works too). After that the library's rules apply: keys are digits,
// a-z, '_', '-' and '.'; a key ending in "-bin" takes any bytes (sent base64-encoded, as gRPC does),
// other values are printable ASCII and space; the names gRPC, HTTP/2 or the library set ("grpc-*",
// "te", "content-type", "user-agent", "connection", "keep-alive", "proxy-connection",
// "transfer-encoding", "upgrade", "host", and "endpoint" on a send that sets Request.Endpoint) are
// refused. A send with metadata that breaks these rules fails with ErrInvalidArgument (the message
// names the entry) before anything is sent.
//
// As trailing metadata (Response.Trailer) keys are lower-case and values are as on the wire: base64
// without padding for keys ending in "-bin".
type Metadata map[string][]string

// NewMetadata makes Metadata from a map (as grpc-go's metadata.New): keys lower-cased, one value each.
func NewMetadata(m map[string]string) Metadata {
	md := make(Metadata, len(m))
	for k, v := range m {
		k = strings.ToLower(k)
		md[k] = append(md[k], v)
	}
	return md
}

// Pairs makes Metadata from key, value, key, value... (as grpc-go's metadata.Pairs): keys
// lower-cased, a repeated key collects its values in order. It panics when len(kv) is odd.
func Pairs(kv ...string) Metadata {
	if len(kv)%2 == 1 {
		panic(fmt.Sprintf("jinanet: Pairs got an odd number of input pairs for metadata: %d", len(kv)))
	}
	md := make(Metadata, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k := strings.ToLower(kv[i])
		md[k] = append(md[k], kv[i+1])
	}
	return md
}

// Len is the number of keys.
func (m Metadata) Len() int { return len(m) }

// Copy returns a deep copy of m.
func (m Metadata) Copy() Metadata {
	out := make(Metadata, len(m))
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Get returns the first value of key (case-insensitive), or "". (grpc-go's MD.Get returns every
// value: that is Values here.)
func (m Metadata) Get(key string) string {
	if v := m[strings.ToLower(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key (case-insensitive), nil when there is none.
func (m Metadata) Values(key string) []string { return m[strings.ToLower(key)] }

// Set sets the values of key (lower-cased), replacing those it had.
func (m Metadata) Set(key string, values ...string) {
	if len(values) == 0 {
		return
	}
	m[strings.ToLower(key)] = values
}

// Append adds values to those of key (lower-cased).
func (m Metadata) Append(key string, values ...string) {
	if len(values) == 0 {
		return
	}
	k := strings.ToLower(key)
	m[k] = append(m[k], values...)
}

// Delete removes key (case-insensitive).
func (m Metadata) Delete(key string) { delete(m, strings.ToLower(key)) }

// JoinMetadata merges mds into new Metadata (as grpc-go's metadata.Join): the values of a key that
// several hold are concatenated, in the order of mds.
func JoinMetadata(mds ...Metadata) Metadata {
	out := Metadata{}
	for _, md := range mds {
		for k, v := range md {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

// outgoingKey is the context key of a send's request metadata.
type outgoingKey struct{}

// outgoing is the request metadata a context carries: md (NewOutgoingContext) and the pairs added to
// it since (AppendToOutgoingContext), kept apart so that adding a pair copies no map (as grpc-go).
type outgoing struct {
	md    Metadata
	added [][]string // each: lower-cased key, value, key, value...
}

// NewOutgoingContext returns a context carrying md as the request metadata of the sends made with it
// (replacing what ctx carried). md is not copied: do not change it afterwards.
func NewOutgoingContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, outgoingKey{}, outgoing{md: md})
}

// AppendToOutgoingContext returns a context carrying the request metadata of ctx plus the pairs kv
// (key, value, key, value...; keys lower-cased). It panics when len(kv) is odd, as grpc-go's does.
func AppendToOutgoingContext(ctx context.Context, kv ...string) context.Context {
	if len(kv)%2 == 1 {
		panic(fmt.Sprintf("jinanet: AppendToOutgoingContext got an odd number of input pairs for metadata: %d", len(kv)))
	}
	o, _ := ctx.Value(outgoingKey{}).(outgoing)
	added := make([][]string, len(o.added)+1)
	copy(added, o.added)
	pairs := make([]string, len(kv))
	for i := 0; i < len(kv); i += 2 {
		pairs[i], pairs[i+1] = strings.ToLower(kv[i]), kv[i+1]
	}
	added[len(added)-1] = pairs
	return context.WithValue(ctx, outgoingKey{}, outgoing{md: o.md, added: added})
}

// FromOutgoingContext returns (a copy of) the request metadata ctx carries, keys lower-cased, and
// whether it carries any.
func FromOutgoingContext(ctx context.Context) (Metadata, bool) {
	o, ok := ctx.Value(outgoingKey{}).(outgoing)
	if !ok {
		return nil, false
	}
	out := make(Metadata, len(o.md))
	for k, v := range o.md {
		k = strings.ToLower(k)
		out[k] = append(out[k], v...)
	}
	for _, pairs := range o.added {
		for i := 0; i < len(pairs); i += 2 {
			out[pairs[i]] = append(out[pairs[i]], pairs[i+1])
		}
	}
	return out, true
}

// sendMetadata is the request metadata of one send laid out for the send shims (cgo_helpers.go):
// each entry's key (ASCII letters lower-cased) and a NUL, then its value, back to back in data;
// lens holds the key's and the value's length of each entry. (C may not read Go memory that holds
// Go pointers, so an array of jina_net_metadata pointing at Go strings cannot be passed; the shim
// builds that array on its side, pointing into data.) Reused through sendMetadataPool.
type sendMetadata struct {
	data []byte
	lens []C.size_t
}

var sendMetadataPool = sync.Pool{New: func() any { return new(sendMetadata) }}

// maxPooledMetadata: a buffer grown beyond this is not kept for reuse.
const maxPooledMetadata = 64 << 10

// requestMetadata collects the request metadata of a send: the context's (NewOutgoingContext, then
// AppendToOutgoingContext) followed by opts (SendOptions.Metadata). nil when there is none: a send
// without metadata allocates nothing here. Release the result after the send call returned.
func requestMetadata(ctx context.Context, opts Metadata, fn string) (*sendMetadata, error) {
	o, fromCtx := ctx.Value(outgoingKey{}).(outgoing)
	if !fromCtx && len(opts) == 0 {
		return nil, nil
	}
	b := sendMetadataPool.Get().(*sendMetadata)
	b.data, b.lens = b.data[:0], b.lens[:0]
	var err error
	if fromCtx {
		err = b.addAll(o.md, fn)
		for _, pairs := range o.added {
			for i := 0; i+1 < len(pairs) && err == nil; i += 2 {
				err = b.add(pairs[i], pairs[i+1], fn)
			}
		}
	}
	if err == nil {
		err = b.addAll(opts, fn)
	}
	if err != nil || len(b.lens) == 0 {
		b.release()
		return nil, err
	}
	return b, nil
}

func (b *sendMetadata) addAll(md Metadata, fn string) error {
	for k, vs := range md {
		for _, v := range vs {
			if err := b.add(k, v, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// add appends one entry. A key holding a NUL byte is refused here (C would cut it short); every
// other rule is the library's.
func (b *sendMetadata) add(key, value, fn string) error {
	if strings.IndexByte(key, 0) >= 0 {
		return newError(CodeInvalidArgument, fmt.Sprintf("%s: request metadata %q: the key contains a NUL byte", fn, key))
	}
	start := len(b.data)
	b.data = append(b.data, key...)
	for i, c := range b.data[start:] {
		if 'A' <= c && c <= 'Z' {
			b.data[start+i] = c + ('a' - 'A')
		}
	}
	b.data = append(b.data, 0)
	b.data = append(b.data, value...)
	b.lens = append(b.lens, C.size_t(len(key)), C.size_t(len(value)))
	return nil
}

// args are the shim's arguments: the data, the lengths and the number of entries (nil, nil, 0 for b nil).
func (b *sendMetadata) args() (data *C.uint8_t, lens *C.size_t, n C.size_t) {
	if b == nil {
		return nil, nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b.data[0])), &b.lens[0], C.size_t(len(b.lens) / 2)
}

// release gives b back for reuse (nil: nothing). The library copied the entries during the send call.
func (b *sendMetadata) release() {
	if b == nil || cap(b.data) > maxPooledMetadata {
		return
	}
	sendMetadataPool.Put(b)
}
