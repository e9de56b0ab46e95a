package jinanet_test

// Transport options (C ABI 0.2.2): mutual TLS, the TLS server name (pool-wide and per address),
// unix: and dns: addresses, compression (requests, and responses of a server that compresses),
// WaitReady and the replicas' states in Routes, and bad input. Against the real test server, in the
// suite's pool mode (test.sh runs the suite caller-driven and with LibraryThreads).

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// testPKI is what `jina-net-test-server pki DIR` writes (file name -> PEM), made once per test run.
type testPKI struct {
	dir   string
	files map[string][]byte
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

// TestMain removes the certificates made for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if pki.dir != "" {
		_ = os.RemoveAll(pki.dir)
	}
	os.Exit(code)
}

func certificates(t testing.TB) testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jinanet-pki-")
		if err != nil {
			pkiErr = err
			return
		}
		if out, err := exec.Command(serverBinary(), "pki", dir).CombinedOutput(); err != nil {
			pkiErr = errors.New("jina-net-test-server pki: " + err.Error() + ": " + string(out))
			return
		}
		pki = testPKI{dir: dir, files: map[string][]byte{}}
		for _, name := range []string{"server-ca.pem", "server.pem", "server.key", "svc.pem", "svc.key",
			"client-ca.pem", "client.pem", "client.key", "stranger.pem", "stranger.key"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				pkiErr = err
				return
			}
			pki.files[name] = b
		}
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

func (p testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// tlsServer is the test server options for TLS with the certificate cert (server, svc) and, with
// clientCA, mutual TLS.
func (p testPKI) tlsServer(cert string, clientCA bool) []string {
	args := []string{"--tls-cert=" + p.path(cert+".pem"), "--tls-key=" + p.path(cert+".key")}
	if clientCA {
		args = append(args, "--client-ca="+p.path("client-ca.pem"))
	}
	return args
}

// tlsPool is PoolOptions for TLS trusting the test servers' CA, with opts' other settings.
func (p testPKI) tlsPool(opts jinanet.PoolOptions) *jinanet.PoolOptions {
	opts.TLS = true
	opts.RootCertificatesPEM = p.files["server-ca.pem"]
	return &opts
}

// sendErr sends one request to d and returns the send's error (nil: one OK response).
func sendErr(t *testing.T, p *jinanet.Pool, d jinanet.Target, id string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := p.Send(ctx, data(id), d)
	if err == nil && (len(rs) != 1 || parse(t, rs[0]).RequestID != id) {
		t.Fatalf("send %s: %+v", id, rs)
	}
	return err
}

// tlsFailure checks that err is the TLS failure of a send to address, its message containing one of
// wants.
func tlsFailure(t *testing.T, what string, err error, address string, wants ...string) {
	t.Helper()
	var e *jinanet.Error
	if !errors.Is(err, jinanet.ErrTLS) || !errors.As(err, &e) {
		t.Fatalf("%s: want ErrTLS, got %v", what, err)
	}
	says := false
	for _, want := range wants {
		says = says || strings.Contains(e.Message, want)
	}
	if e.Address != address || !strings.Contains(e.Error(), address) || !says {
		t.Fatalf("%s: want a TLS error naming %s and saying one of %q, got %+v", what, address, wants, e)
	}
}

func TestTransportOptionsAsC(t *testing.T) {
	defaults := jinanet.InitPoolOptionsAsC(false)
	if defaults.DNSRefresh != 30*time.Second || defaults.Compression != 0 || defaults.TLSServerName != "" ||
		defaults.TLSCertChainLen != 0 || defaults.TLSPrivateKeyLen != 0 {
		t.Fatalf("the library's transport defaults changed: %+v", defaults)
	}
	if r := jinanet.InitPoolOptionsAsC(true); r.DNSRefresh != defaults.DNSRefresh || r.Compression != 0 {
		t.Fatalf("the resilient preset's transport settings: %+v", r)
	}
	if o := jinanet.ResilientPoolOptions(); o.DNSRefresh != 0 || o.Compression != 0 || o.TLSServerName != "" {
		t.Fatalf("ResilientPoolOptions: transport fields are the defaults (zero): %+v", o)
	}
	c, err := jinanet.PoolOptionsAsC(&jinanet.PoolOptions{
		TLSCertChainPEM: []byte("chain"), TLSPrivateKeyPEM: []byte("key!"), TLSServerName: "executor.jina.svc",
		Compression: jinanet.CompressionDeflate, DNSRefresh: 1500 * time.Microsecond,
	})
	if err != nil || c.TLSCertChainLen != 5 || c.TLSPrivateKeyLen != 4 || c.TLSServerName != "executor.jina.svc" ||
		c.Compression != 2 || c.DNSRefresh != 2*time.Millisecond {
		t.Fatalf("transport fields as C: %+v, %v", c, err)
	}
	if c, err := jinanet.PoolOptionsAsC(&jinanet.PoolOptions{DNSRefresh: jinanet.Disabled}); err != nil || c.DNSRefresh != 0 {
		t.Fatalf("DNSRefresh Disabled as C: %+v, %v", c, err)
	}
	for name, o := range map[string]jinanet.PoolOptions{
		"negative DNSRefresh":           {DNSRefresh: -time.Second},
		"TLSServerName with a NUL byte": {TLSServerName: "a\x00b"},
	} {
		if _, err := jinanet.PoolOptionsAsC(&o); !errors.Is(err, jinanet.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// the library takes what NewPool builds
	for _, o := range []jinanet.PoolOptions{
		{TLSServerName: "executor.jina.svc", Compression: jinanet.CompressionGzip, DNSRefresh: jinanet.Disabled},
		{TLSServerName: "10.0.0.1", Compression: jinanet.CompressionDeflate, DNSRefresh: time.Nanosecond},
	} {
		o := o
		p, err := jinanet.NewPool(testOptions(&o))
		if err != nil {
			t.Fatalf("NewPool(%+v): %v", o, err)
		}
		_ = p.Close()
	}
}

func TestParseCompression(t *testing.T) {
	for name, want := range map[string]jinanet.Compression{
		"none": jinanet.CompressionNone, "gzip": jinanet.CompressionGzip, "deflate": jinanet.CompressionDeflate,
		"NoCompression": jinanet.CompressionNone, "Gzip": jinanet.CompressionGzip, "Deflate": jinanet.CompressionDeflate,
		"GZIP": jinanet.CompressionGzip, "nocompression": jinanet.CompressionNone,
	} {
		if c, err := jinanet.ParseCompression(name); err != nil || c != want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", name, c, err, want)
		}
	}
	for _, c := range []jinanet.Compression{jinanet.CompressionNone, jinanet.CompressionGzip, jinanet.CompressionDeflate} {
		if back, err := jinanet.ParseCompression(c.String()); err != nil || back != c {
			t.Errorf("ParseCompression(%v.String()) = %v, %v", c, back, err)
		}
	}
	if s := jinanet.Compression(7).String(); s != "Compression(7)" {
		t.Errorf("Compression(7).String() = %q", s)
	}
	for _, name := range []string{"", "brotli", "zstd", " gzip", "gzip\x00"} {
		c, err := jinanet.ParseCompression(name)
		var e *jinanet.Error
		if !errors.Is(err, jinanet.ErrInvalidArgument) || !errors.As(err, &e) || e.Message == "" || c != jinanet.CompressionNone {
			t.Errorf("ParseCompression(%q) = %v, %v; want ErrInvalidArgument", name, c, err)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	pki := certificates(t)
	s := servers(t, append(pki.tlsServer("server", true), "echo=m")...)
	addr := s["m"]
	d := jinanet.Deployment("mtls")

	// with the client identity: accepted
	p := newPool(t, pki.tlsPool(jinanet.PoolOptions{
		TLSCertChainPEM: pki.files["client.pem"], TLSPrivateKeyPEM: pki.files["client.key"],
	}))
	add(t, p, d, addr)
	for i := 0; i < 3; i++ {
		if err := sendErr(t, p, d, "mtls"); err != nil {
			t.Fatalf("mTLS send with the client identity: %v", err)
		}
	}

	// without: refused, the error naming the address and saying what to do
	bare := newPool(t, pki.tlsPool(jinanet.PoolOptions{MaxAttempts: 1}))
	add(t, bare, d, addr)
	tlsFailure(t, "send without a client identity", sendErr(t, bare, d, "bare"), addr, "client certificate")

	// with an identity of another CA: refused. The library says so when the connection breaks after
	// the handshake, but when it reads the server's alert first it reports "the server ended the
	// handshake (alert: decrypt error)" (the test CAs share their distinguished name, so the server
	// finds the client CA as the issuer and the signature check fails): both are accepted here.
	stranger := newPool(t, pki.tlsPool(jinanet.PoolOptions{MaxAttempts: 1,
		TLSCertChainPEM: pki.files["stranger.pem"], TLSPrivateKeyPEM: pki.files["stranger.key"]}))
	add(t, stranger, d, addr)
	tlsFailure(t, "send with a stranger's identity", sendErr(t, stranger, d, "stranger"), addr,
		"refused the client's certificate", "alert: decrypt error")

	// one-shot sends: the same
	resp, err := jinanet.SendRequestSync(data("oneshot-mtls"), addr, &jinanet.OneShotOptions{
		Timeout: 10 * time.Second, TLS: true, RootCertificatesPEM: pki.files["server-ca.pem"],
		TLSCertChainPEM: pki.files["client.pem"], TLSPrivateKeyPEM: pki.files["client.key"],
	})
	if err != nil || parse(t, resp).RequestID != "oneshot-mtls" {
		t.Fatalf("one-shot mTLS send: %+v, %v", resp, err)
	}
	_, err = jinanet.SendRequestSync(data("oneshot-bare"), addr, &jinanet.OneShotOptions{
		Timeout: 10 * time.Second, TLS: true, RootCertificatesPEM: pki.files["server-ca.pem"],
	})
	if !errors.Is(err, jinanet.ErrTLS) || !strings.Contains(err.Error(), "client certificate") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("one-shot send without a client identity: %v", err)
	}
}

func TestTLSServerName(t *testing.T) {
	pki := certificates(t)
	// a replica reached by IP whose certificate names only its service, executor.jina.svc
	s := servers(t, append(pki.tlsServer("svc", false), "echo=pod")...)
	addr := s["pod"]
	const svc = "executor.jina.svc"
	d := jinanet.Deployment("pods")

	plain := newPool(t, pki.tlsPool(jinanet.PoolOptions{MaxAttempts: 1}))
	add(t, plain, d, addr)
	tlsFailure(t, "send without a server name", sendErr(t, plain, d, "no-name"), addr, "not valid for the name")

	// pool-wide
	named := newPool(t, pki.tlsPool(jinanet.PoolOptions{TLSServerName: svc}))
	add(t, named, d, addr)
	if err := sendErr(t, named, d, "pool-wide"); err != nil {
		t.Fatalf("send with the pool's server name: %v", err)
	}

	// per address: over no pool-wide name, and over a wrong one
	for _, poolName := range []string{"", "wrong.example"} {
		p := newPool(t, pki.tlsPool(jinanet.PoolOptions{TLSServerName: poolName}))
		added, err := p.AddConnectionWithOptions(d, addr, jinanet.AddOptions{TLSServerName: svc})
		if err != nil || !added {
			t.Fatalf("AddConnectionWithOptions: %v, %v", added, err)
		}
		if err := sendErr(t, p, d, "per-address"); err != nil {
			t.Fatalf("send with the address's server name (pool's %q): %v", poolName, err)
		}
	}
	// the pool's wrong name applies to an address without its own
	wrong := newPool(t, pki.tlsPool(jinanet.PoolOptions{TLSServerName: "wrong.example", MaxAttempts: 1}))
	add(t, wrong, d.Head(), addr)
	tlsFailure(t, "send with a wrong pool-wide server name", sendErr(t, wrong, d.Head(), "wrong"), addr, "not valid for the name")

	// per address to a head and a shard, with the target's head/shard
	p := newPool(t, pki.tlsPool(jinanet.PoolOptions{}))
	for _, target := range []jinanet.Target{d.Head(), d.Shard(3)} {
		if added, err := p.AddConnectionWithOptions(target, addr, jinanet.AddOptions{TLSServerName: svc}); err != nil || !added {
			t.Fatalf("AddConnectionWithOptions(%v): %v, %v", target, added, err)
		}
		if added, err := p.AddConnectionWithOptions(target, addr, jinanet.AddOptions{TLSServerName: svc}); err != nil || added {
			t.Fatalf("AddConnectionWithOptions(%v) again: %v, %v", target, added, err)
		}
		rs, err := p.Send(context.Background(), data("ex"), target)
		if err != nil || len(rs) != 1 || rs[0].Head != (target == d.Head()) || (target != d.Head() && rs[0].Shard != 3) {
			t.Fatalf("send to %v: %+v, %v", target, rs, err)
		}
	}
	routes, err := p.Routes()
	if err != nil || len(routes) != 2 || !routes[0].Head || routes[1].Shard != 3 {
		t.Fatalf("routes after AddConnectionWithOptions: %+v, %v", routes, err)
	}

	// a dns: name over TLS: its replicas (by IP) check the name's certificate, or the server name
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	viaDNS := newPool(t, pki.tlsPool(jinanet.PoolOptions{}))
	if added, err := viaDNS.AddConnectionWithOptions(d, "dns:///localhost:"+port, jinanet.AddOptions{TLSServerName: svc}); err != nil || !added {
		t.Fatalf("a dns: address with a server name: %v, %v", added, err)
	}
	if err := sendErr(t, viaDNS, d, "dns-svc"); err != nil {
		t.Fatalf("send to a dns: replica with a server name: %v", err)
	}
	localhost := servers(t, append(pki.tlsServer("server", false), "echo=lh")...)["lh"]
	add(t, viaDNS, d.Shard(1), "dns:///localhost:"+localhost[strings.LastIndexByte(localhost, ':')+1:])
	if err := sendErr(t, viaDNS, d.Shard(1), "dns-localhost"); err != nil {
		t.Fatalf("send over TLS to the replica of dns:///localhost (server.pem names localhost): %v", err)
	}

	// one-shot
	resp, err := jinanet.SendRequestSync(data("oneshot-svc"), addr, &jinanet.OneShotOptions{
		Timeout: 10 * time.Second, TLS: true, RootCertificatesPEM: pki.files["server-ca.pem"], TLSServerName: svc,
	})
	if err != nil || parse(t, resp).RequestID != "oneshot-svc" {
		t.Fatalf("one-shot send with a server name: %+v, %v", resp, err)
	}
}

func TestUnixSocketAddress(t *testing.T) {
	dir, err := os.MkdirTemp("", "jinanet-unix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "echo.sock")
	s := servers(t, "--unix="+path, "echo=u")
	if s["u"] != "unix:"+path {
		t.Fatalf("the test server listens at %q, want unix:%s", s["u"], path)
	}
	p := newPool(t, nil)
	d := jinanet.Deployment("local")
	add(t, p, d, "unix:"+path)
	add(t, p, d.Shard(1), "unix://"+path) // unix:///abs/path
	for i := 0; i < 4; i++ {
		r := one(t, p, data("over-unix"), d)
		if r.Trailer.Get("replica") != "u" || parse(t, r).RequestID != "over-unix" {
			t.Fatalf("response over the Unix socket: %+v", r)
		}
	}
	routes, err := p.Routes()
	if err != nil || len(routes) != 2 || routes[0].Addresses[0] != "unix:"+path || routes[1].Addresses[0] != "unix://"+path {
		t.Fatalf("routes of unix: addresses (shown as given): %+v, %v", routes, err)
	}
	if routes[0].States[0] != jinanet.StateReady {
		t.Fatalf("state of a unix: replica that answered: %+v", routes[0])
	}
}

// compressible is a data request of about n bytes that compresses well.
func compressible(id string, n int) jinanet.Request {
	return data(id + strings.Repeat("z", n))
}

func TestCompression(t *testing.T) {
	const size = 256 << 10
	srv := serverProcess(t, "echo=e")
	addr := srv.addr["e"]
	// the bytes the server reads for one send of a compressible request with compression c
	read := func(c jinanet.Compression) int64 {
		t.Helper()
		p := newPool(t, &jinanet.PoolOptions{Compression: c})
		d := jinanet.Deployment("z")
		add(t, p, d, addr)
		before, _ := srv.tcpBytes(t)
		r := one(t, p, compressible(c.String(), size), d)
		if info := parse(t, r); info.RequestID != c.String()+strings.Repeat("z", size) {
			t.Fatalf("%v: the echo differs (%d bytes of request id)", c, len(info.RequestID))
		}
		after, _ := srv.tcpBytes(t)
		_ = p.Close()
		return after - before
	}
	plain := read(jinanet.CompressionNone)
	if plain < size {
		t.Fatalf("an uncompressed send of %d bytes: the server read %d", size, plain)
	}
	for _, c := range []jinanet.Compression{jinanet.CompressionGzip, jinanet.CompressionDeflate} {
		if n := read(c); n*10 > plain {
			t.Errorf("%v: the server read %d bytes, uncompressed %d", c, n, plain)
		}
	}

	// one-shot
	before, _ := srv.tcpBytes(t)
	resp, err := jinanet.SendRequestSync(compressible("oneshot", size), addr,
		&jinanet.OneShotOptions{Timeout: 10 * time.Second, Compression: jinanet.CompressionGzip})
	after, _ := srv.tcpBytes(t)
	if err != nil || !strings.HasPrefix(parse(t, resp).RequestID, "oneshot") || (after-before)*10 > plain {
		t.Fatalf("one-shot gzip send: %v (the server read %d bytes, uncompressed %d)", err, after-before, plain)
	}
}

// A server that compresses its responses (--compress) when the client accepts it: a pool that
// compresses its requests accepts compressed responses (gzip and deflate, whichever its own
// compression) and decodes them; a pool that does not compress is answered uncompressed.
func TestCompressedResponses(t *testing.T) {
	const size = 256 << 10
	for _, encoding := range []string{"gzip", "deflate"} {
		srv := serverProcess(t, "--compress="+encoding, "echo=c")
		for _, c := range []jinanet.Compression{jinanet.CompressionNone, jinanet.CompressionGzip, jinanet.CompressionDeflate} {
			p := newPool(t, &jinanet.PoolOptions{Compression: c})
			d := jinanet.Deployment("c")
			add(t, p, d, srv.addr["c"])
			_, before := srv.tcpBytes(t)
			id := encoding + "-" + c.String() + strings.Repeat("y", size)
			r := one(t, p, data(id), d)
			_, after := srv.tcpBytes(t)
			if parse(t, r).RequestID != id || r.Trailer.Get("replica") != "c" {
				t.Fatalf("--compress=%s, requests %v: the response differs", encoding, c)
			}
			if compressed := (after-before)*10 < size; compressed != (c != jinanet.CompressionNone) {
				t.Errorf("--compress=%s, requests %v: the server wrote %d bytes for a %d-byte echo", encoding, c, after-before, size)
			}
			_ = p.Close()
		}
	}
}

func TestDNSAddress(t *testing.T) {
	s := servers(t, "echo=a")
	port := s["a"][strings.LastIndexByte(s["a"], ':')+1:]
	for _, refresh := range []time.Duration{0, jinanet.Disabled, 200 * time.Millisecond} {
		p := newPool(t, &jinanet.PoolOptions{DNSRefresh: refresh})
		d := jinanet.Deployment("dns")
		add(t, p, d, "dns:///localhost:"+port)
		if added, err := p.AddConnection(d.Shard(1), "dns:localhost:"+port); err != nil || !added {
			t.Fatalf("dns:host:port: %v, %v", added, err)
		}
		routes, err := p.Routes()
		if err != nil || len(routes) != 2 {
			t.Fatalf("routes: %+v, %v", routes, err)
		}
		for _, r := range routes {
			if len(r.Addresses) != 1 || r.Addresses[0] != "127.0.0.1:"+port || len(r.States) != 1 {
				t.Fatalf("DNSRefresh %v: a dns: name resolving to 127.0.0.1 in the routes: %+v", refresh, r)
			}
		}
		r := one(t, p, data("by-name"), d.Shard(0))
		if r.Address != "127.0.0.1:"+port || r.Trailer.Get("replica") != "a" {
			t.Fatalf("send to a dns: replica: %+v", r)
		}
		one(t, p, data("by-name"), d.Shard(1))
	}
	p := newPool(t, nil)
	_, err := p.AddConnection(jinanet.Deployment("dns"), "dns:///no-such-host.invalid:1234")
	if !errors.Is(err, jinanet.ErrInvalidAddress) || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("an unresolvable dns: name: %v", err)
	}
	_, err = p.AddConnectionWithOptions(jinanet.Deployment("dns"), "dns:///no-such-host.invalid:1234", jinanet.AddOptions{})
	if !errors.Is(err, jinanet.ErrInvalidAddress) {
		t.Fatalf("an unresolvable dns: name (AddConnectionWithOptions): %v", err)
	}
}

func TestWaitReady(t *testing.T) {
	s := servers(t, "echo=a", "echo=b", "head:worker=h")
	p := newPool(t, nil)
	enc := jinanet.Deployment("enc")
	add(t, p, enc, s["a"])
	add(t, p, enc.Shard(1), s["b"])
	add(t, p, jinanet.Deployment("gw").Head(), s["h"])

	routes, err := p.Routes()
	if err != nil || len(routes) != 3 {
		t.Fatalf("routes: %+v, %v", routes, err)
	}
	for _, r := range routes {
		if len(r.States) != 1 || r.States[0] != jinanet.StateIdle || r.StateOf(r.Addresses[0]) != jinanet.StateIdle {
			t.Fatalf("a replica never connected: %+v", r)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, "enc"); err != nil {
		t.Fatalf("WaitReady(enc): %v", err)
	}
	routes, _ = p.Routes()
	if routes[0].Deployment != "enc" || routes[0].States[0] != jinanet.StateReady || routes[1].States[0] != jinanet.StateReady ||
		routes[2].Deployment != "gw" || routes[2].States[0] != jinanet.StateIdle {
		t.Fatalf("states after WaitReady(enc): %+v", routes)
	}
	if err := p.WaitReady(context.Background(), ""); err != nil { // every deployment, no deadline
		t.Fatalf("WaitReady(all): %v", err)
	}
	routes, _ = p.Routes()
	for _, r := range routes {
		if r.StateOf(r.Addresses[0]) != jinanet.StateReady {
			t.Fatalf("states after WaitReady(all): %+v", routes)
		}
	}

	// a dead replica: DEADLINE_EXCEEDED naming it, its state failing; the others still ready
	dead := deadAddress(t)
	add(t, p, enc.Shard(2), dead)
	short, cancelShort := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelShort()
	err = p.WaitReady(short, "enc")
	var e *jinanet.Error
	if !errors.Is(err, jinanet.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) ||
		!strings.Contains(e.Message, dead) || !strings.Contains(e.Message, `"enc"`) || strings.Contains(e.Message, s["a"]) ||
		!strings.HasPrefix(e.Message, "WaitReady: not ready after ") || !strings.Contains(e.Message, "(failing)") {
		t.Fatalf("WaitReady with a dead replica: %v", err)
	}
	routes, _ = p.Routes()
	if st := routes[0].StateOf(s["a"]); routes[2].Shard != 2 || routes[2].States[0] != jinanet.StateFailing || st != jinanet.StateReady {
		t.Fatalf("states with a dead replica: %+v", routes)
	}
	if err := p.WaitReady(ctx, "gw"); err != nil {
		t.Fatalf("WaitReady(gw) with a dead replica elsewhere: %v", err)
	}

	// cancelled: ErrCancelled, context.Canceled, still naming the replica not ready
	cctx, cancelNow := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancelNow)
	err = p.WaitReady(cctx, "")
	if !errors.Is(err, jinanet.ErrCancelled) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("WaitReady cancelled: %v", err)
	}
	if err := p.WaitReady(cctx, ""); !errors.Is(err, jinanet.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReady with a cancelled context: %v", err)
	}
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	if err := p.WaitReady(expired, "enc"); !errors.Is(err, jinanet.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady with an expired context: %v", err)
	}

	if err := p.WaitReady(ctx, "nope"); !errors.Is(err, jinanet.ErrUnknownDeployment) {
		t.Fatalf("WaitReady(unknown deployment): %v", err)
	}
	if err := p.WaitReady(ctx, "en\x00c"); !errors.Is(err, jinanet.ErrInvalidArgument) {
		t.Fatalf("WaitReady(deployment with a NUL byte): %v", err)
	}
	_ = p.Close()
	if err := p.WaitReady(ctx, ""); !errors.Is(err, jinanet.ErrPoolClosed) {
		t.Fatalf("WaitReady after Close: %v", err)
	}
	if err := newPool(t, nil).WaitReady(ctx, ""); err != nil {
		t.Fatalf("WaitReady of an empty pool: %v", err)
	}
}

// While WaitReady waits (on a caller-driven pool it runs the pool on its thread meanwhile), the sends
// of other goroutines complete, and so does a Close.
func TestWaitReadyWithConcurrentSends(t *testing.T) {
	s := servers(t, "echo=a", "slow:300=s")
	p := newPool(t, nil)
	live, slow, down := jinanet.Deployment("live"), jinanet.Deployment("slow"), jinanet.Deployment("down")
	add(t, p, live, s["a"])
	add(t, p, slow, s["s"])
	add(t, p, down, deadAddress(t))
	failuresBefore := jinanet.PollFailures()

	stop := make(chan struct{})
	var sent int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := live
			if g == 3 {
				target = slow
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if g%2 == 1 { // a cancellable context: the leader polls in slices
					ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
				}
				rs, err := p.Send(ctx, data("during-wait"), target)
				cancel()
				if err != nil || len(rs) != 1 || parse(t, rs[0]).RequestID != "during-wait" {
					errs <- err
					return
				}
				atomic.AddInt64(&sent, 1)
			}
		}()
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		err := p.WaitReady(ctx, "down")
		cancel()
		if !errors.Is(err, jinanet.ErrDeadlineExceeded) {
			t.Fatalf("WaitReady(down): %v", err)
		}
		if err := p.WaitReady(context.Background(), "live"); err != nil {
			t.Fatalf("WaitReady(live): %v", err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a send during WaitReady: %v", err)
	default:
	}
	if atomic.LoadInt64(&sent) == 0 {
		t.Fatal("no send completed during WaitReady")
	}
	t.Logf("%d sends, %d of them completed on a WaitReady's thread", atomic.LoadInt64(&sent), jinanet.DirectCompletions())
	if n := jinanet.PollFailures() - failuresBefore; n != 0 {
		t.Fatalf("%d polls failed", n)
	}

	// Close while a WaitReady waits: it ends (the pool closed), the Close returns
	done := make(chan error, 1)
	go func() { done <- p.WaitReady(context.Background(), "down") }()
	time.Sleep(300 * time.Millisecond)
	_ = p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, jinanet.ErrPoolClosed) {
			t.Fatalf("WaitReady during Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WaitReady did not return after Close")
	}
}

func TestNotReadyMessage(t *testing.T) {
	lib := `jina_net_pool_wait_ready: not ready after 1s: deployment "d" shard 0 at 127.0.0.1:1 (failing)`
	if m := jinanet.NotReadyMessage("WaitReady", lib, 12345*time.Millisecond); m !=
		`WaitReady: not ready after 12.345s: deployment "d" shard 0 at 127.0.0.1:1 (failing)` {
		t.Fatalf("rewritten: %q", m)
	}
	for _, other := range []string{"", "something else", "not ready after 1s"} {
		if m := jinanet.NotReadyMessage("WaitReady", other, time.Second); m != other {
			t.Fatalf("%q rewritten to %q", other, m)
		}
	}
}

func TestRoutesParsing(t *testing.T) {
	routes := jinanet.ParseRoutes("a\thead\t1.2.3.4:5\n" + // 0.2.1: three columns
		"a\tshard 0\t1.2.3.4:6,unix:/x\tready,unresponsive\n" +
		"b\tshard 2\t1.2.3.4:7\tfailing\tsomething-later\n" +
		"c\tshard 1\t1.2.3.4:8,1.2.3.4:9\tidle\n" + // fewer states than addresses
		"broken line\n")
	if len(routes) != 4 {
		t.Fatalf("%d routes: %+v", len(routes), routes)
	}
	if r := routes[0]; !r.Head || r.Shard != -1 || r.States != nil || r.StateOf("1.2.3.4:5") != "" {
		t.Fatalf("a three-column line: %+v", r)
	}
	if r := routes[1]; r.Shard != 0 || len(r.States) != 2 || r.StateOf("unix:/x") != jinanet.StateUnresponsive ||
		r.StateOf("1.2.3.4:6") != jinanet.StateReady {
		t.Fatalf("a four-column line: %+v", r)
	}
	if r := routes[2]; r.Deployment != "b" || r.Shard != 2 || r.StateOf("1.2.3.4:7") != jinanet.StateFailing {
		t.Fatalf("a line with a later column: %+v", r)
	}
	if r := routes[3]; len(r.States) != 2 || r.States[0] != jinanet.StateIdle || r.States[1] != "" {
		t.Fatalf("a line with fewer states: %+v", r)
	}
	if routes := jinanet.ParseRoutes(""); len(routes) != 0 {
		t.Fatalf("empty table: %+v", routes)
	}
}

// Bad input fails with the binding's error (the library's code and message), never a crash.
func TestTransportBadInput(t *testing.T) {
	pki := certificates(t)
	newPoolErr := func(name string, o jinanet.PoolOptions, want error, says string) {
		t.Helper()
		p, err := jinanet.NewPool(testOptions(&o))
		if err == nil {
			_ = p.Close()
		}
		var e *jinanet.Error
		if !errors.Is(err, want) || !errors.As(err, &e) || !strings.Contains(e.Message, says) {
			t.Errorf("%s: want %v saying %q, got %v", name, want, says, err)
		}
	}
	garbage := []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
	newPoolErr("identity without a key", jinanet.PoolOptions{TLSCertChainPEM: pki.files["client.pem"]}, jinanet.ErrTLS, "tls_private_key_pem")
	newPoolErr("key without a certificate", jinanet.PoolOptions{TLSPrivateKeyPEM: pki.files["client.key"]}, jinanet.ErrTLS, "tls_cert_chain_pem")
	newPoolErr("a certificate that is no PEM", jinanet.PoolOptions{TLSCertChainPEM: []byte("hello"),
		TLSPrivateKeyPEM: pki.files["client.key"]}, jinanet.ErrTLS, "certificate")
	newPoolErr("a certificate that does not decode", jinanet.PoolOptions{TLSCertChainPEM: garbage,
		TLSPrivateKeyPEM: pki.files["client.key"]}, jinanet.ErrTLS, "certificate")
	newPoolErr("a key that is no PEM", jinanet.PoolOptions{TLSCertChainPEM: pki.files["client.pem"],
		TLSPrivateKeyPEM: []byte("hello")}, jinanet.ErrTLS, "private key")
	newPoolErr("a certificate as the key", jinanet.PoolOptions{TLSCertChainPEM: pki.files["client.pem"],
		TLSPrivateKeyPEM: pki.files["client.pem"]}, jinanet.ErrTLS, "private key")
	newPoolErr("bad root certificates", jinanet.PoolOptions{TLS: true, RootCertificatesPEM: garbage}, jinanet.ErrTLS, "root_certificates_pem")
	newPoolErr("a server name that is no name", jinanet.PoolOptions{TLSServerName: "not a name!"}, jinanet.ErrTLS, "not a name!")
	newPoolErr("an unknown compression", jinanet.PoolOptions{Compression: 7}, jinanet.ErrInvalidArgument, "compression")

	p := newPool(t, nil)
	d := jinanet.Deployment("bad")
	for name, c := range map[string]struct {
		target  jinanet.Target
		address string
		opts    jinanet.AddOptions
		want    error
	}{
		"empty address":          {d, "", jinanet.AddOptions{}, jinanet.ErrInvalidAddress},
		"address without a port": {d, "localhost", jinanet.AddOptions{}, jinanet.ErrInvalidAddress},
		"unix: without a path":   {d, "unix:", jinanet.AddOptions{}, jinanet.ErrInvalidAddress},
		"dns: without a name":    {d, "dns:///", jinanet.AddOptions{}, jinanet.ErrInvalidAddress},
		"bad server name":        {d, "127.0.0.1:1", jinanet.AddOptions{TLSServerName: "bad name"}, jinanet.ErrTLS},
		"NUL in the server name": {d, "127.0.0.1:1", jinanet.AddOptions{TLSServerName: "a\x00"}, jinanet.ErrInvalidArgument},
		"NUL in the address":     {d, "127.0.0.1:1\x00", jinanet.AddOptions{}, jinanet.ErrInvalidArgument},
		"NUL in the deployment":  {jinanet.Deployment("b\x00"), "127.0.0.1:1", jinanet.AddOptions{}, jinanet.ErrInvalidArgument},
		"all shards":             {d.All(), "127.0.0.1:1", jinanet.AddOptions{}, jinanet.ErrInvalidArgument},
		"shard over 2^32-1":      {d.Shard(1 << 33), "127.0.0.1:1", jinanet.AddOptions{}, jinanet.ErrInvalidArgument},
	} {
		added, err := p.AddConnectionWithOptions(c.target, c.address, c.opts)
		if added || !errors.Is(err, c.want) {
			t.Errorf("AddConnectionWithOptions, %s: %v, %v; want %v", name, added, err, c.want)
		}
	}
	if routes, err := p.Routes(); err != nil || len(routes) != 0 {
		t.Errorf("routes after refused adds: %+v, %v", routes, err)
	}

	for name, o := range map[string]struct {
		opts jinanet.OneShotOptions
		want error
	}{
		"identity without a key": {jinanet.OneShotOptions{TLSCertChainPEM: pki.files["client.pem"]}, jinanet.ErrTLS},
		"bad identity PEM":       {jinanet.OneShotOptions{TLSCertChainPEM: garbage, TLSPrivateKeyPEM: []byte("x")}, jinanet.ErrTLS},
		"bad server name":        {jinanet.OneShotOptions{TLSServerName: "bad name"}, jinanet.ErrTLS},
		"NUL in the server name": {jinanet.OneShotOptions{TLSServerName: "a\x00b"}, jinanet.ErrInvalidArgument},
		"unknown compression":    {jinanet.OneShotOptions{Compression: 9}, jinanet.ErrInvalidArgument},
	} {
		o := o
		o.opts.Timeout = 2 * time.Second
		if _, err := jinanet.SendRequestSync(data("bad"), "127.0.0.1:1", &o.opts); !errors.Is(err, o.want) {
			t.Errorf("SendRequestSync, %s: %v; want %v", name, err, o.want)
		}
	}
	if _, err := jinanet.SendRequestSync(data("bad"), "", nil); err == nil {
		t.Error("SendRequestSync to an empty address succeeded")
	}
}
