//! The switchboard binary as a child process, for tests of what only a whole process shows
//! (signals, exit codes, logs, memory).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

/// A running binary and the address it listens on.
pub struct Process {
    child: Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    stderr: std::sync::mpsc::Receiver<String>,
    /// The read end of a log pipe kept open and never read (`spawn_unread`).
    unread: Option<ChildStderr>,
}

impl Process {
    /// Start `command` and read the address it listens on.
    pub fn spawn(command: Command) -> Process {
        let mut process = Process::spawn_unread(command);
        let (tx, stderr) = std::sync::mpsc::channel();
        let err = process.unread.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        process.stderr = stderr;
        process
    }

    /// Start `command` and read the address it listens on; its log (stderr) goes into a
    /// pipe nobody reads, which fills up (64 KiB on Linux) as a stalled log collector's would.
    pub fn spawn_unread(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchboard");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("switchboard listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let unread = child.stderr.take();
        Process {
            child,
            addr,
            stderr: std::sync::mpsc::channel().1,
            unread,
        }
    }

    /// Send signal `name` (`TERM`, `HUP`…).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the exit, failing after 10 s.
    pub fn exit_code(&mut self) -> i32 {
        for _ in 0..1000 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("the process did not exit within 10 s");
    }

    /// The next log line holding `needle`, failing after 5 s without one.
    pub fn log_line(&self, needle: &str) -> String {
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(5)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The switchboard binary serving `config` on a free port.
pub fn binary(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout", "3s"])
        .env_remove("SWITCHBOARD_LISTEN")
        .env("NO_COLOR", "1");
    command
}

impl Process {
    /// The process's resident memory, in KiB, from `/proc`.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}
