package jinanet

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// libjina_net's runtime threads write to sockets with writev, which raises SIGPIPE when the
// connection is already shut down or reset (seen when a pool is closed with sends in flight, and
// possible whenever a server drops a connection). The library does not block SIGPIPE on its threads,
// and a Rust library gets no SIG_IGN from a Rust main. In a Go program the runtime forwards a SIGPIPE
// raised on a non-Go thread to the default action, which kills the process, unless the program
// has asked for SIGPIPE with signal.Notify. So the first use of the library does just that.
//
// Side effect, as documented by os/signal: once SIGPIPE is notified, a write to a broken pipe on
// stdout or stderr returns EPIPE instead of killing the program. Child processes are unaffected
// (SIGPIPE is not ignored, only caught).

var sigpipeOnce sync.Once

func guardSIGPIPE() {
	sigpipeOnce.Do(func() {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	})
}
