//! A `jina-net-test-server` in its own process (the binary next to the benchmark's), so that a
//! benchmark can freeze it, or read what it read and wrote and the CPU it used.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

/// One `jina-net-test-server` process.
pub struct Process {
    child: Child,
    /// Its stdout, kept open (it prints `STATS` lines on SIGUSR1).
    lines: Lines<BufReader<ChildStdout>>,
    pub address: String,
}

impl Process {
    /// Starts the server with one `ROLE=NAME` spec (e.g. `echo=r0`) and waits until it listens.
    pub fn start(spec: &str) -> Process {
        let binary = std::env::current_exe()
            .expect("the benchmark's path")
            .with_file_name("jina-net-test-server");
        let mut child = Command::new(&binary)
            .arg(spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release --workspace)", binary.display()));
        let mut address = None;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            if let Some(rest) = line.strip_prefix("SERVER ") {
                address = rest.rsplit(' ').next().map(str::to_owned);
            }
            if line == "READY" {
                break;
            }
        }
        Process {
            child,
            lines,
            address: address.expect("the server printed its address"),
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Bytes the server read from and wrote to its TCP connections so far (the TCP payload, HTTP/2
    /// framing included), as it counts them.
    pub fn io(&mut self) -> (u64, u64) {
        self.signal(libc::SIGUSR1);
        for line in self.lines.by_ref() {
            let line = line.unwrap_or_default();
            if let Some(rest) = line.strip_prefix("STATS ") {
                let kv = crate::stats::parse_kv(rest.split_whitespace());
                let get = |k: &str| kv.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
                return (get("read"), get("written"));
            }
        }
        panic!("the test server closed its stdout");
    }

    /// CPU seconds (user + system) the process used so far.
    pub fn cpu_s(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // after `pid (comm)`: state is field 0, utime field 11, stime field 12
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks(11) + ticks(12)) / hz
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
