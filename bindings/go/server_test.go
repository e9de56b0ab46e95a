package jinanet_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testServers is a running jina-net-test-server process (one or more gRPC servers on 127.0.0.1).
type testServers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  map[string]string // server name -> "127.0.0.1:port"
	done  chan struct{}
}

func serverBinary() string {
	if p := os.Getenv("JINA_NET_TEST_SERVER"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "target", "debug", "jina-net-test-server"))
	return p
}

// startTestServers runs the test server binary with specs like "echo=a", "head:worker=h",
// "slow:3000=s" and waits for READY. The process also exits when its stdin closes, so it does not
// outlive a test binary that dies.
func startTestServers(specs ...string) (*testServers, error) {
	cmd := exec.Command(serverBinary(), append([]string{"--exit-on-stdin-eof"}, specs...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (build it with cargo build --workspace, or set JINA_NET_TEST_SERVER): %w", cmd.Path, err)
	}
	s := &testServers{cmd: cmd, stdin: stdin, addr: map[string]string{}, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 4 && f[0] == "SERVER":
				s.addr[f[1]] = f[3]
			case len(f) == 1 && f[0] == "READY":
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("test server exited before READY (%v)", sc.Err())
	}()
	select {
	case err = <-ready:
	case <-time.After(20 * time.Second):
		err = fmt.Errorf("test server not READY after 20s")
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop ends the process (SIGTERM, stdin closed; SIGKILL after 5 s) and waits for it.
func (s *testServers) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// servers starts test servers for one test and stops them in its cleanup.
func servers(t testing.TB, specs ...string) map[string]string {
	t.Helper()
	s, err := startTestServers(specs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s.addr
}
