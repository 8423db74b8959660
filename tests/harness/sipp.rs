//! SIPp runs: always bounded (`-m`, `-timeout`, and an outer wall-clock limit), with
//! the message trace kept for assertions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::wait_bounded;

pub struct Sipp {
    scenario: PathBuf,
    local: SocketAddr,
    remote: SocketAddr,
    args: Vec<String>,
    calls: u32,
    transport: &'static str,
}

#[derive(Debug)]
pub struct SippRun {
    /// SIPp's exit code: 0 all calls succeeded, 1 some failed, 255 fatal, None timed out.
    pub code: Option<i32>,
    pub stdout: String,
    pub messages: String,
    pub errors: String,
}

impl SippRun {
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// Everything SIPp received, split into messages.
    pub fn received(&self) -> Vec<String> {
        split_trace(&self.messages, "received")
    }

    pub fn sent(&self) -> Vec<String> {
        split_trace(&self.messages, "sent")
    }
}

impl std::fmt::Display for SippRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sipp exit {:?}\n--- errors ---\n{}\n--- messages ---\n{}",
            self.code, self.errors, self.messages
        )
    }
}

impl Sipp {
    pub fn new(scenario: impl AsRef<Path>, local: SocketAddr, remote: SocketAddr) -> Sipp {
        Sipp {
            scenario: scenario.as_ref().to_path_buf(),
            local,
            remote,
            args: Vec::new(),
            calls: 1,
            transport: "u1",
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Sipp {
        self.args.push(a.into());
        self
    }

    /// `-s USER -ap PASSWORD`.
    pub fn user(self, user: &str, password: &str) -> Sipp {
        self.arg("-s").arg(user).arg("-ap").arg(password)
    }

    /// A caller scenario's arguments: `user` (password `secret<user>`, as the
    /// harness configures endpoints) dials `dialed`.
    pub fn dialing(self, dialed: &str, user: &str) -> Sipp {
        self.arg("-s")
            .arg(dialed)
            .arg("-au")
            .arg(user)
            .arg("-ap")
            .arg(format!("secret{user}"))
            .key("caller", user)
    }

    /// The phone's RTP on its own address at `media_port`.
    pub fn media_at(self, media_port: u16) -> Sipp {
        let ip = self.local.ip().to_string();
        self.arg("-mi")
            .arg(ip)
            .arg("-mp")
            .arg(media_port.to_string())
    }

    pub fn key(self, k: &str, v: &str) -> Sipp {
        self.arg("-key").arg(k).arg(v)
    }

    pub fn calls(mut self, n: u32) -> Sipp {
        self.calls = n;
        self
    }

    pub fn tcp(mut self) -> Sipp {
        self.transport = "t1";
        self
    }

    pub fn run(self) -> SippRun {
        self.spawn().wait()
    }

    /// Starts SIPp in the background (a callee waiting for its INVITE).
    pub fn spawn(self) -> RunningSipp {
        let dir = tempfile::tempdir().expect("temp dir");
        let msg = dir.path().join("messages.log");
        let err = dir.path().join("errors.log");
        let host = |a: SocketAddr| match a {
            SocketAddr::V4(v) => v.ip().to_string(),
            SocketAddr::V6(v) => v.ip().to_string(),
        };
        let remote = match self.remote {
            SocketAddr::V4(v) => v.to_string(),
            SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
        };
        let mut cmd = Command::new("sipp");
        cmd.arg(remote)
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-i", &host(self.local)])
            .args(["-p", &self.local.port().to_string()])
            .args(["-t", self.transport])
            .args(["-m", &self.calls.to_string()])
            .args([
                "-timeout",
                "30s",
                "-timeout_error",
                "-nostdin",
                "-trace_msg",
                "-trace_err",
            ])
            .arg("-message_file")
            .arg(&msg)
            .arg("-error_file")
            .arg(&err)
            .args(&self.args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sipp (is sip-tester installed?)");
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut o) = stdout {
                use std::io::Read as _;
                let _ = o.read_to_string(&mut s);
            }
            s
        });
        RunningSipp {
            child,
            reader,
            dir,
            msg,
            err,
        }
    }
}

/// A SIPp process started with [`Sipp::spawn`]; killed if dropped unfinished.
pub struct RunningSipp {
    child: std::process::Child,
    reader: std::thread::JoinHandle<String>,
    /// Holds SIPp's working directory until the run is collected.
    #[allow(dead_code)]
    dir: tempfile::TempDir,
    msg: PathBuf,
    err: PathBuf,
}

impl RunningSipp {
    /// Waits (at most 60 s) for SIPp to finish and collects its traces.
    pub fn wait(mut self) -> SippRun {
        let status = wait_bounded(&mut self.child, Duration::from_secs(60));
        SippRun {
            code: status.and_then(|s| s.code()),
            stdout: std::mem::replace(&mut self.reader, std::thread::spawn(String::new))
                .join()
                .unwrap_or_default(),
            messages: std::fs::read_to_string(&self.msg).unwrap_or_default(),
            errors: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

impl Drop for RunningSipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// SIPp's message trace separates messages by lines like
/// `----------------------------------------------- <timestamp>` followed by
/// `UDP message received [N] bytes :`.
fn split_trace(trace: &str, direction: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in trace.lines() {
        if line.contains(" message ")
            && line.contains(" bytes")
            && (line.contains("received") || line.contains("sent"))
        {
            if let Some(m) = current.take() {
                out.push(m);
            }
            if line.contains(direction) {
                current = Some(String::new());
            }
            continue;
        }
        if line.starts_with("-----------------------------------------------") {
            continue;
        }
        if let Some(m) = current.as_mut() {
            m.push_str(line.trim_start());
            m.push_str("\r\n");
        }
    }
    if let Some(m) = current {
        out.push(m);
    }
    out.into_iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}
