package jinanet_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testServers is a running jina-net-test-server process (one or more gRPC servers on 127.0.0.1).
type testServers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  map[string]string // server name -> "127.0.0.1:port" (or "unix:PATH")
	done  chan struct{}
	stats chan string // the STATS lines printed after READY (on SIGUSR1)
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
	s := &testServers{cmd: cmd, stdin: stdin, addr: map[string]string{}, done: make(chan struct{}),
		stats: make(chan string, 16)}
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
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "STATS ") {
						select {
						case s.stats <- sc.Text():
						default: // nobody asked
						}
					}
				}
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

// servers starts test servers for one test and stops them in its cleanup. Options of the test
// server (--tls-cert=FILE, --compress=gzip, --unix=PATH, ...) may be given among the specs.
func servers(t testing.TB, specs ...string) map[string]string {
	t.Helper()
	return serverProcess(t, specs...).addr
}

// serverProcess is servers, returning the process.
func serverProcess(t testing.TB, specs ...string) *testServers {
	t.Helper()
	s, err := startTestServers(specs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// tcpBytes asks the process for the TCP bytes its servers read and wrote so far (SIGUSR1, STATS).
func (s *testServers) tcpBytes(t testing.TB) (read, written int64) {
	t.Helper()
	for len(s.stats) > 0 { // a stale line
		<-s.stats
	}
	// The test server installs its SIGUSR1 handler after it printed READY; until then SIGUSR1 would
	// kill it. Wait until the handler is in place (SigCgt in /proc/PID/status).
	for start := time.Now(); !catchesSIGUSR1(s.cmd.Process.Pid); {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the test server does not catch SIGUSR1")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-s.stats:
		if _, err := fmt.Sscanf(line, "STATS read=%d written=%d", &read, &written); err != nil {
			t.Fatalf("test server printed %q: %v", line, err)
		}
		return read, written
	case <-time.After(10 * time.Second):
		t.Fatal("the test server printed no STATS line after SIGUSR1")
	}
	return 0, 0
}

// catchesSIGUSR1 says whether process pid has a handler for SIGUSR1.
func catchesSIGUSR1(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v := strings.TrimPrefix(line, "SigCgt:"); v != line {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(syscall.SIGUSR1)-1)) != 0
		}
	}
	return false
}
