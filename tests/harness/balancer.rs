//! `softswitch balance` started for a test: its config written from the nodes'
//! addresses, its log kept, its status read through `softswitch balance --status`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{stop, wait_until};

pub struct Balancer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    addr: SocketAddr,
    child: Option<Child>,
    starts: usize,
}

impl Balancer {
    /// A balancer on `ip:5060` (admin API on `ip:8060`) over these nodes.
    pub fn start(ip: IpAddr, nodes: &[(&str, SocketAddr)]) -> Balancer {
        Balancer::start_with(ip, nodes, "")
    }

    /// The same with `balance` lines added to its `[balance]` table.
    pub fn start_with(ip: IpAddr, nodes: &[(&str, SocketAddr)], balance: &str) -> Balancer {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("balancer.toml");
        let mut text = format!(
            "[balance]\nname = \"lb-{ip}\"\nlisten = \"{ip}:5060\"\n{balance}\n\n[admin]\nlisten = \"{ip}:8060\"\n\n"
        );
        for (name, addr) in nodes {
            text.push_str(&format!(
                "[[node]]\nname = \"{name}\"\naddress = \"{addr}\"\n\n"
            ));
        }
        std::fs::write(&config, text).expect("write balancer config");
        let mut b = Balancer {
            dir,
            config,
            addr: SocketAddr::new(ip, 5060),
            child: None,
            starts: 0,
        };
        b.launch();
        b
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.addr
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("balancer.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(crate::binary())
            .args(["balance", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start softswitch balance");
        self.child = Some(child);
        let started = wait_until(Duration::from_secs(10), || {
            self.log().matches("softswitch balancer started").count() > self.starts
        });
        assert!(started, "the balancer did not start; log:\n{}", self.log());
        self.starts += 1;
    }

    /// `softswitch balance --status --json`.
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(crate::binary())
            .args(["balance", "--status", "--json", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run softswitch balance --status");
        assert!(
            out.status.success(),
            "balance --status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("balance --status --json prints JSON")
    }

    /// The node a new dialog with `call_id` goes to (`softswitch balance --explain`).
    pub fn route_of(&self, call_id: &str) -> String {
        let out = Command::new(crate::binary())
            .args(["balance", "--explain", call_id, "--json", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run softswitch balance --explain");
        assert!(
            out.status.success(),
            "balance --explain failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("balance --explain --json prints JSON");
        v["node"].as_str().unwrap_or("none").to_owned()
    }

    /// The state the balancer gives `node` (`up`, `down`, `draining` …).
    pub fn node_state(&self, node: &str) -> String {
        self.status()["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["name"] == node))
            .and_then(|n| n["state"].as_str())
            .unwrap_or("missing")
            .to_owned()
    }

    /// Stops the process abruptly, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same config (after [`Balancer::kill`]).
    pub fn relaunch(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c, Duration::from_secs(5));
        }
    }
}
