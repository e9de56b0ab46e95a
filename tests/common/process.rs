//! Test servers in their own processes (`jina-net-test-server`), so that a test can freeze one
//! (SIGSTOP: its TCP connections stay open and the kernel still acknowledges, as with a hung process),
//! thaw it (SIGCONT) or kill it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The test server binary cargo built next to the tests.
pub fn server_binary() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("debug/jina-net-test-server");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// One `jina-net-test-server` process serving one role.
pub struct ServerProcess {
    child: Child,
    pub address: String,
}

impl ServerProcess {
    /// Starts `ROLE=NAME` (e.g. `echo=a`) and waits until it listens.
    pub fn start(spec: &str) -> ServerProcess {
        let mut child = Command::new(server_binary())
            .arg(spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test server starts");
        let mut address = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap_or_default();
            if let Some(rest) = line.strip_prefix("SERVER ") {
                address = rest.rsplit(' ').next().map(str::to_owned);
            }
            if line == "READY" {
                break;
            }
        }
        ServerProcess {
            child,
            address: address.expect("the test server printed its address"),
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGSTOP: the process stops; its sockets stay open. Returns once every thread of it is stopped
    /// (the kernel stops the others only when the thread it woke for the signal runs: on a busy
    /// machine a thread could still answer a request just after the signal).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let tasks = format!("/proc/{}/task", self.child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let all_stopped = std::fs::read_dir(&tasks)
                .map(|dir| {
                    dir.flatten().all(|task| {
                        // `pid (comm) S ...`: the state follows the last `)`
                        std::fs::read_to_string(task.path().join("stat"))
                            .ok()
                            .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
                            .is_some_and(|rest| rest.starts_with('T') || rest.starts_with('t'))
                    })
                })
                .unwrap_or(false);
            if all_stopped {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the test server did not stop");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
