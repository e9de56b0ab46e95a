package jinanet_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// binaryValue is a "-bin" value that is not text; the test server reports it as on the wire: base64
// without padding.
const (
	binaryValue     = "\x00\x01\x02\xff"
	binaryValueWire = "AAEC/w"
)

func TestMetadataHelpers(t *testing.T) {
	md := jinanet.Pairs("X-Request-Id", "1", "k", "a", "K", "b")
	if !reflect.DeepEqual(md, jinanet.Metadata{"x-request-id": {"1"}, "k": {"a", "b"}}) || md.Len() != 2 {
		t.Fatalf("Pairs: %v", md)
	}
	if md.Get("X-REQUEST-ID") != "1" || !reflect.DeepEqual(md.Values("K"), []string{"a", "b"}) || md.Get("none") != "" {
		t.Fatalf("Get/Values: %v", md)
	}
	md.Set("Auth", "t1")
	md.Append("AUTH", "t2")
	md.Append("empty")
	md.Delete("K")
	if !reflect.DeepEqual(md, jinanet.Metadata{"x-request-id": {"1"}, "auth": {"t1", "t2"}}) {
		t.Fatalf("Set/Append/Delete: %v", md)
	}
	c := md.Copy()
	c["auth"][0] = "changed"
	if md.Get("auth") != "t1" {
		t.Fatal("Copy shares its values")
	}
	if n := jinanet.NewMetadata(map[string]string{"Mixed-Case": "v"}); !reflect.DeepEqual(n, jinanet.Metadata{"mixed-case": {"v"}}) {
		t.Fatalf("NewMetadata: %v", n)
	}
	if j := jinanet.JoinMetadata(jinanet.Pairs("a", "1"), nil, jinanet.Pairs("a", "2", "b", "3")); !reflect.DeepEqual(j,
		jinanet.Metadata{"a": {"1", "2"}, "b": {"3"}}) {
		t.Fatalf("JoinMetadata: %v", j)
	}

	// the context: NewOutgoingContext replaces, AppendToOutgoingContext adds without changing the parent
	if _, ok := jinanet.FromOutgoingContext(context.Background()); ok {
		t.Fatal("metadata in a bare context")
	}
	parent := jinanet.NewOutgoingContext(context.Background(), jinanet.Metadata{"a": {"1"}})
	child := jinanet.AppendToOutgoingContext(parent, "B", "2", "a", "3")
	grandchild := jinanet.AppendToOutgoingContext(child, "c", "4")
	if got, ok := jinanet.FromOutgoingContext(grandchild); !ok ||
		!reflect.DeepEqual(got, jinanet.Metadata{"a": {"1", "3"}, "b": {"2"}, "c": {"4"}}) {
		t.Fatalf("FromOutgoingContext(grandchild) = %v, %v", got, ok)
	}
	if got, _ := jinanet.FromOutgoingContext(parent); !reflect.DeepEqual(got, jinanet.Metadata{"a": {"1"}}) {
		t.Fatalf("the parent changed: %v", got)
	}
	replaced := jinanet.NewOutgoingContext(grandchild, jinanet.Pairs("d", "5"))
	if got, _ := jinanet.FromOutgoingContext(replaced); !reflect.DeepEqual(got, jinanet.Metadata{"d": {"5"}}) {
		t.Fatalf("NewOutgoingContext does not replace: %v", got)
	}
	if got, ok := jinanet.FromOutgoingContext(jinanet.AppendToOutgoingContext(context.Background(), "e", "6")); !ok ||
		!reflect.DeepEqual(got, jinanet.Metadata{"e": {"6"}}) {
		t.Fatalf("AppendToOutgoingContext on a bare context: %v", got)
	}

	for name, f := range map[string]func(){
		"Pairs":                   func() { jinanet.Pairs("odd") },
		"AppendToOutgoingContext": func() { jinanet.AppendToOutgoingContext(context.Background(), "a", "1", "b") },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "odd number") {
					t.Errorf("%s with an odd number of strings: %v", name, r)
				}
			}()
			f()
		}()
	}
}

// sendForm is one way of sending a data request: the responses it got, its error.
type sendForm struct {
	name    string
	options bool // the form takes SendOptions
	send    func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, target jinanet.Target,
		opts jinanet.SendOptions) ([]*jinanet.Response, error)
}

// viewCopy runs a SendView-like call and keeps what its function saw (trailers are Go memory).
func viewCopy(call func(view func([]*jinanet.Response, error) error) error) ([]*jinanet.Response, error) {
	var got []*jinanet.Response
	var gotErr error
	calls := 0
	err := call(func(rs []*jinanet.Response, err error) error {
		calls++
		got, gotErr = rs, err
		return err
	})
	if calls != 1 {
		return nil, fmt.Errorf("view called %d times", calls)
	}
	if err != gotErr {
		return nil, fmt.Errorf("SendView returned %v, its view got %v", err, gotErr)
	}
	return got, err
}

func owned(req jinanet.Request) jinanet.OwnedRequest {
	o := jinanet.OwnedRequest{Kind: req.Kind, Endpoint: req.Endpoint}
	for _, m := range req.Messages {
		o.Messages = append(o.Messages, jinanet.CBufferFrom(m))
	}
	return o
}

// sendForms are every send of a Pool; the forms without SendOptions ignore opts.
var sendForms = []sendForm{
	{"Send", false, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, _ jinanet.SendOptions) ([]*jinanet.Response, error) {
		return p.Send(ctx, req, t)
	}},
	{"SendWithOptions", true, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, o jinanet.SendOptions) ([]*jinanet.Response, error) {
		return p.SendWithOptions(ctx, req, t, o)
	}},
	{"SendView", false, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, _ jinanet.SendOptions) ([]*jinanet.Response, error) {
		return viewCopy(func(v func([]*jinanet.Response, error) error) error { return p.SendView(ctx, req, t, v) })
	}},
	{"SendViewWithOptions", true, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, o jinanet.SendOptions) ([]*jinanet.Response, error) {
		return viewCopy(func(v func([]*jinanet.Response, error) error) error {
			return p.SendViewWithOptions(ctx, req, t, o, v)
		})
	}},
	{"SendOwned", false, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, _ jinanet.SendOptions) ([]*jinanet.Response, error) {
		return p.SendOwned(ctx, owned(req), t)
	}},
	{"SendOwnedWithOptions", true, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, o jinanet.SendOptions) ([]*jinanet.Response, error) {
		return p.SendOwnedWithOptions(ctx, owned(req), t, o)
	}},
	{"SendOwnedView", false, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, _ jinanet.SendOptions) ([]*jinanet.Response, error) {
		return viewCopy(func(v func([]*jinanet.Response, error) error) error { return p.SendOwnedView(ctx, owned(req), t, v) })
	}},
	{"SendOwnedViewWithOptions", true, func(p *jinanet.Pool, ctx context.Context, req jinanet.Request, t jinanet.Target, o jinanet.SendOptions) ([]*jinanet.Response, error) {
		return viewCopy(func(v func([]*jinanet.Response, error) error) error {
			return p.SendOwnedViewWithOptions(ctx, owned(req), t, o, v)
		})
	}},
}

// Request metadata from the context and from SendOptions arrives with every send form, at every shard
// of an ALL send, "-bin" values as bytes; keys are lower-cased on the way.
func TestRequestMetadataArrives(t *testing.T) {
	s := servers(t, "echo=a", "echo=b")
	p := newPool(t, nil)
	dep := jinanet.Deployment("md")
	add(t, p, dep.Shard(0), s["a"])
	add(t, p, dep.Shard(1), s["b"])
	for _, f := range sendForms {
		for _, target := range []jinanet.Target{dep.Shard(1), dep.All()} {
			id := "req-" + f.name
			ctx := jinanet.NewOutgoingContext(context.Background(), jinanet.Pairs("X-Request-Id", id, "trace-bin", binaryValue))
			var opts jinanet.SendOptions
			if f.options {
				// a literal with an upper-case key: lower-cased by the send
				opts.Metadata = jinanet.Metadata{"Authorization": {"Bearer " + f.name}}
			} else {
				ctx = jinanet.AppendToOutgoingContext(ctx, "Authorization", "Bearer "+f.name)
			}
			rs, err := f.send(p, ctx, data(id).WithEndpoint("/index"), target, opts)
			if err != nil {
				t.Fatalf("%s to %v: %v", f.name, target, err)
			}
			want := 1
			if target == dep.All() {
				want = 2
			}
			if len(rs) != want {
				t.Fatalf("%s to %v: %d responses", f.name, target, len(rs))
			}
			for _, r := range rs {
				tr := r.Trailer
				if tr.Get("seen-x-request-id") != id || tr.Get("seen-trace-bin") != binaryValueWire ||
					tr.Get("seen-authorization") != "Bearer "+f.name || tr.Get("endpoint") != "/index" ||
					len(tr.Values("seen-x-request-id")) != 1 {
					t.Fatalf("%s to %v: shard %d trailers %v", f.name, target, r.Shard, tr)
				}
			}
		}
	}
}

// The context's metadata and the options' are merged: every value of a key is sent, the context's
// (NewOutgoingContext's, then AppendToOutgoingContext's) first.
func TestRequestMetadataMerged(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("md")
	add(t, p, dep, s["a"])
	ctx := jinanet.NewOutgoingContext(context.Background(), jinanet.Metadata{"a": {"1"}, "only-ctx": {"x"}})
	ctx = jinanet.AppendToOutgoingContext(ctx, "b", "2", "A", "3")
	opts := jinanet.SendOptions{Metadata: jinanet.Pairs("a", "4", "c", "5", "c", "6")}
	for _, f := range sendForms {
		if !f.options {
			continue
		}
		rs, err := f.send(p, ctx, data("merged"), dep, opts)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		tr := rs[0].Trailer
		for key, want := range map[string][]string{
			"seen-a": {"1", "3", "4"}, "seen-b": {"2"}, "seen-c": {"5", "6"}, "seen-only-ctx": {"x"},
		} {
			if got := tr.Values(key); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: %s = %q, want %q (trailers %v)", f.name, key, got, want, tr)
			}
		}
	}
	// options alone, and an empty context metadata: both fine
	rs, err := p.SendWithOptions(jinanet.NewOutgoingContext(context.Background(), nil), data("opts"), dep,
		jinanet.SendOptions{Metadata: jinanet.Pairs("only-opts", "y")})
	if err != nil || rs[0].Trailer.Get("seen-only-opts") != "y" {
		t.Fatalf("options alone: %v %v", err, rs)
	}
	// no metadata at all: nothing custom arrives
	rs, err = p.Send(context.Background(), data("none"), dep)
	if err != nil {
		t.Fatal(err)
	}
	for k := range rs[0].Trailer {
		if strings.HasPrefix(k, "seen-") {
			t.Fatalf("a send without metadata delivered %s", k)
		}
	}
}

// Metadata goes with every attempt: a replica that fails twice with UNAVAILABLE sees it on the third.
func TestRequestMetadataOnRetries(t *testing.T) {
	s := servers(t, "flaky:2=f")
	p := newPool(t, nil) // 3 attempts, as jina
	dep := jinanet.Deployment("flaky")
	add(t, p, dep, s["f"])
	rs, err := p.Send(jinanet.AppendToOutgoingContext(context.Background(), "x-attempt", "any"), data("retried"), dep)
	if err != nil || rs[0].Trailer.Get("seen-x-attempt") != "any" {
		t.Fatalf("after retries: %v %+v", err, rs)
	}
}

// metricValue is the value of a series in Prometheus text (0 when absent).
func metricValue(t *testing.T, text, series string) int64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest := strings.TrimPrefix(line, series+" "); rest != line {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("series %s: %q", series, line)
			}
			return int64(v)
		}
	}
	return 0
}

func requestsTo(t *testing.T, p *jinanet.Pool, deployment, shard, address string) int64 {
	t.Helper()
	text, err := p.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	return metricValue(t, text, fmt.Sprintf(`jina_net_requests_total{deployment=%q,shard=%q,address=%q}`, deployment, shard, address))
}

// Invalid request metadata fails every send form with ErrInvalidArgument before anything is sent (the
// replica sees no call; owned buffers are freed once).
func TestInvalidRequestMetadataIsRefused(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, &jinanet.PoolOptions{Metrics: true})
	dep := jinanet.Deployment("md")
	add(t, p, dep, s["a"])
	one(t, p, data("first"), dep)
	if n := requestsTo(t, p, "md", "0", s["a"]); n != 1 {
		t.Fatalf("%d requests counted after one send", n)
	}
	cases := []struct {
		name     string
		md       jinanet.Metadata
		endpoint string
		mention  string // in the message
	}{
		{"space in a key", jinanet.Metadata{"bad key": {"v"}}, "", "bad key"},
		{"non-ASCII key", jinanet.Metadata{"x-ünicode": {"v"}}, "", "x-ünicode"},
		{"empty key", jinanet.Metadata{"": {"v"}}, "", "empty key"},
		{"NUL in a key", jinanet.Metadata{"x\x00y": {"v"}}, "", "NUL"},
		{"grpc-*", jinanet.Pairs("grpc-timeout", "1S"), "", "grpc-timeout"},
		{"te", jinanet.Pairs("te", "trailers"), "", `"te"`},
		{"content-type", jinanet.Pairs("Content-Type", "text/plain"), "", "content-type"},
		{"user-agent", jinanet.Pairs("user-agent", "me"), "", "user-agent"},
		{"connection header", jinanet.Pairs("connection", "close"), "", "connection"},
		{"host", jinanet.Pairs("host", "example.com"), "", "host"},
		{"newline in a value", jinanet.Pairs("x-note", "line\nbreak"), "", "x-note"},
		{"non-ASCII value", jinanet.Pairs("x-note", "é"), "", "x-note"},
		{"binary value without -bin", jinanet.Pairs("x-note", binaryValue), "", "x-note"},
		{"endpoint twice", jinanet.Pairs("endpoint", "/other"), "/index", "endpoint"},
	}
	base := cbufferCounts()
	var owned, freedInGo int64
	for _, c := range cases {
		for _, f := range sendForms {
			for _, fromCtx := range []bool{true, false} {
				if !fromCtx && !f.options {
					continue
				}
				ctx := context.Background()
				var opts jinanet.SendOptions
				if fromCtx {
					// valid metadata besides: the bad entry fails the whole send
					ctx = jinanet.NewOutgoingContext(ctx, jinanet.JoinMetadata(jinanet.Pairs("fine", "ok"), c.md))
				} else {
					opts.Metadata = c.md
				}
				rs, err := f.send(p, ctx, data("refused").WithEndpoint(c.endpoint), dep, opts)
				var e *jinanet.Error
				if !errors.Is(err, jinanet.ErrInvalidArgument) || !errors.As(err, &e) || !strings.Contains(e.Message, c.mention) ||
					len(rs) != 0 {
					t.Fatalf("%s, %s (from the context: %v): %v, %d responses", c.name, f.name, fromCtx, err, len(rs))
				}
				if strings.HasPrefix(f.name, "SendOwned") {
					owned++
					if c.name == "NUL in a key" {
						freedInGo++ // refused by the binding, before the library took the buffer
					}
				}
			}
		}
	}
	expectFrees(t, "refused owned sends", base, freeCounts{owned, freedInGo, owned - freedInGo})
	if n := requestsTo(t, p, "md", "0", s["a"]); n != 1 {
		t.Fatalf("the refused sends reached the replica: %d requests counted", n)
	}
	// and the pool works on: a valid -bin value may hold any byte, and "endpoint" is a custom key
	// on a send that sets no endpoint
	rs, err := p.SendWithOptions(context.Background(), data("after"), dep,
		jinanet.SendOptions{Metadata: jinanet.Pairs("x-bin", binaryValue, "endpoint", "/custom")})
	if err != nil || rs[0].Trailer.Get("seen-x-bin") != binaryValueWire || rs[0].Trailer.Get("endpoint") != "/custom" {
		t.Fatalf("valid metadata after refusals: %v %+v", err, rs)
	}
	if n := requestsTo(t, p, "md", "0", s["a"]); n != 2 {
		t.Fatalf("%d requests counted after the second valid send", n)
	}
}

// A send without request metadata allocates nothing for it, whatever its context.
func TestNoMetadataCostsNoAllocation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), struct{}{}, "other"))
	defer cancel()
	for name, c := range map[string]context.Context{"background": context.Background(), "cancellable": ctx} {
		if n := jinanet.MetadataAllocs(c, nil); n != 0 {
			t.Errorf("%s context without metadata: %.1f allocations per send", name, n)
		}
		if n := jinanet.MetadataAllocs(c, jinanet.Metadata{}); n != 0 {
			t.Errorf("%s context, empty SendOptions.Metadata: %.1f allocations per send", name, n)
		}
	}
}

// Many entries: the send shim's array of them is allocated rather than on its stack (more than 8),
// and the response's trailers are read in several batches (more than 32).
func TestManyMetadataEntries(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	dep := jinanet.Deployment("md")
	add(t, p, dep, s["a"])
	md := jinanet.Metadata{}
	for i := 0; i < 70; i++ {
		md.Append(fmt.Sprintf("k-%02d", i%50), fmt.Sprintf("v%d", i)) // 50 keys, 20 with two values
	}
	for _, f := range sendForms {
		ctx := jinanet.NewOutgoingContext(context.Background(), md)
		rs, err := f.send(p, ctx, data("many"), dep, jinanet.SendOptions{})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		tr := rs[0].Trailer
		for k, vs := range md {
			if got := tr.Values("seen-" + k); !reflect.DeepEqual(got, vs) {
				t.Fatalf("%s: seen-%s = %q, want %q", f.name, k, got, vs)
			}
		}
		if tr.Get("replica") != "a" || len(tr) != 50+3 {
			t.Fatalf("%s: %d trailer keys: %v", f.name, len(tr), tr)
		}
	}
}
