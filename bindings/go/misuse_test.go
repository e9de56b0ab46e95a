package jinanet_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	jinanet "github.com/jina-ai/libjina_net/bindings/go"
)

// TestMisuseTable walks the misuse table of the README ("Misuse: the same result in every binding"):
// each case fails with the code C returns for it (the same rows are in tests/c/test_c_abi.c,
// bindings/cpp/test_jina_net.cpp and bindings/python/tests/test_misuse.py). Go strings cannot be
// NULL: the NULL rows are the C and Python ones.
func TestMisuseTable(t *testing.T) {
	s := servers(t, "echo=a")
	p := newPool(t, nil)
	add(t, p, jinanet.Deployment("enc"), s["a"])
	ctx := context.Background()

	expect := func(what string, err error, code jinanet.Code) {
		t.Helper()
		var e *jinanet.Error
		if !errors.Is(err, code) || !errors.As(err, &e) || e.Code != code {
			t.Errorf("%s: want %v, got %v", what, code, err)
			return
		}
		if strings.Contains(e.Error(), "JINA_NET_") {
			t.Errorf("%s: a C name in a Go error string: %q", what, e.Error())
		}
	}

	_, err := p.AddConnection(jinanet.Deployment("e\x00nc"), s["a"])
	expect("a NUL in a string", err, jinanet.CodeInvalidArgument)
	_, err = p.AddConnection(jinanet.Deployment(""), s["a"])
	expect("an empty deployment name", err, jinanet.CodeInvalidArgument)
	_, err = p.AddConnection(jinanet.Deployment("enc"), "not an address")
	expect("a malformed address", err, jinanet.CodeInvalidAddress)
	_, err = p.Send(ctx, data("x"), jinanet.Deployment("nope"))
	expect("an unknown deployment", err, jinanet.CodeUnknownDeployment)
	if err == nil || !strings.Contains(err.Error(), `unknown deployment "nope"`) {
		t.Errorf("an unknown deployment is said as unknown: %v", err)
	}
	_, err = p.Send(ctx, jinanet.NewDataRequest([]byte{0xff, 0xff, 0xff}), jinanet.Deployment("enc"))
	expect("garbage request bytes", err, jinanet.CodeInvalidRequest)
	_, err = p.Send(ctx, jinanet.NewDataRequest(), jinanet.Deployment("enc"))
	expect("no request", err, jinanet.CodeInvalidArgument)
	_, err = jinanet.NewPool(&jinanet.PoolOptions{Compression: jinanet.Compression(3)})
	expect("an unknown compression", err, jinanet.CodeInvalidArgument)
	_, err = jinanet.NewPool(&jinanet.PoolOptions{TLS: true, RootCertificatesPEM: []byte("not a pem")})
	expect("root certificates that are not PEM", err, jinanet.CodeTLSError)
	if err == nil || !strings.Contains(err.Error(), "root_certificates_pem") {
		t.Errorf("the PEM error names the setting: %v", err)
	}
	// the pool works after all of it
	one(t, p, data("ok"), jinanet.Deployment("enc"))

	// a closed pool: every call fails with ErrPoolClosed; closing twice is fine
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close twice: %v", err)
	}
	_, err = p.AddConnection(jinanet.Deployment("enc"), s["a"])
	expect("AddConnection on a closed pool", err, jinanet.CodePoolClosed)
	_, err = p.RemoveConnection(jinanet.Deployment("enc"), s["a"])
	expect("RemoveConnection on a closed pool", err, jinanet.CodePoolClosed)
	_, err = p.Send(ctx, data("x"), jinanet.Deployment("enc"))
	expect("Send on a closed pool", err, jinanet.CodePoolClosed)
	_, err = p.Routes()
	expect("Routes on a closed pool", err, jinanet.CodePoolClosed)
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	expect("WaitReady on a closed pool", p.WaitReady(wctx, "enc"), jinanet.CodePoolClosed)
}

// TestErrorStringsAreGoStyle: "jinanet: deadline exceeded: ...", the code in words; errors.Is
// compares codes.
func TestErrorStringsAreGoStyle(t *testing.T) {
	for _, c := range []struct {
		code jinanet.Code
		want string
	}{
		{jinanet.CodeDeadlineExceeded, "jinanet: deadline exceeded: m"},
		{jinanet.CodePoolClosed, "jinanet: pool closed: m"},
		{jinanet.CodeTLSError, "jinanet: TLS error: m"},
		{jinanet.CodeRPCError, "jinanet: RPC failed: m"},
		{jinanet.CodeUnknownDeployment, "jinanet: unknown deployment: m"},
		{jinanet.CodeInvalidUTF8, "jinanet: invalid UTF-8: m"},
	} {
		e := &jinanet.Error{Code: c.code, Message: "m"}
		if e.Error() != c.want {
			t.Errorf("%v: %q, want %q", c.code, e.Error(), c.want)
		}
		if !errors.Is(e, c.code) || errors.Is(e, jinanet.ErrPanic) {
			t.Errorf("%v: errors.Is", c.code)
		}
		if !strings.HasPrefix(c.code.String(), "JINA_NET_") {
			t.Errorf("%v: String is the C name", c.code)
		}
	}
	if got := (&jinanet.Error{Code: jinanet.CodeCancelled}).Error(); got != "jinanet: cancelled" {
		t.Errorf("without a message: %q", got)
	}
}
