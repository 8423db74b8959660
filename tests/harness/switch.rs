//! The switch under test: a config written to a temporary directory, the release
//! binary started on it, and its log captured.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{stop, wait_until};

#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file in the switch's directory.
    Sqlite,
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct SwitchOptions {
    pub ip: IpAddr,
    pub port: u16,
    pub tcp: bool,
    pub database: Database,
    pub endpoints: Vec<(String, String)>,
    /// Appended to the generated config (extra tables, overrides of defaults).
    pub extra: String,
    /// Lines added to the `[sip]` section.
    pub sip_extra: String,
    /// Replaces the `[registrar]` table.
    pub registrar: String,
    /// Replaces the `[security]` table.
    pub security: String,
    /// Extra addresses to listen on, in listen syntax (`udp:[::1]:5060`).
    pub extra_listen: Vec<String>,
    /// The extensions.conf written next to the config.
    pub dialplan: String,
    /// `callerid` of endpoints that have one, e.g. `("1001", "Alice <1001>")`.
    pub callerids: Vec<(String, String)>,
}

/// A small plan for tests that do not care about the dialplan.
pub const DEFAULT_DIALPLAN: &str =
    "[internal]\nexten => _1XXX,1,Dial(SIP/${EXTEN},20)\n same => n,Hangup()\n";

impl SwitchOptions {
    pub fn new(ip: impl Into<IpAddr>) -> SwitchOptions {
        SwitchOptions {
            ip: ip.into(),
            port: 5060,
            tcp: true,
            database: Database::Sqlite,
            endpoints: (1001..=1005)
                .map(|n| (n.to_string(), format!("secret{n}")))
                .collect(),
            extra: String::new(),
            sip_extra: String::new(),
            registrar: "min_expires = 1\nmax_expires = 3600\ndefault_expires = 3600\n".into(),
            security: String::new(),
            extra_listen: Vec::new(),
            dialplan: DEFAULT_DIALPLAN.to_owned(),
            callerids: Vec::new(),
        }
    }
}

pub struct Switch {
    pub opts: SwitchOptions,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    /// Completed launches, so a restart waits for a new "started" line.
    starts: usize,
}

impl Switch {
    pub fn start(opts: SwitchOptions) -> Switch {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("softswitch.toml");
        let mut sw = Switch {
            opts,
            dir,
            config,
            child: None,
            starts: 0,
        };
        std::fs::write(&sw.config, sw.render()).expect("write config");
        std::fs::write(sw.dialplan_path(), &sw.opts.dialplan).expect("write dialplan");
        sw.launch();
        sw
    }

    fn render(&self) -> String {
        let o = &self.opts;
        let host = match o.ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let mut listen = vec![format!("\"udp:{host}:{}\"", o.port)];
        if o.tcp {
            listen.push(format!("\"tcp:{host}:{}\"", o.port));
        }
        listen.extend(o.extra_listen.iter().map(|l| format!("\"{l}\"")));
        let db = match &o.database {
            Database::Sqlite => "sqlite://var/softswitch.db".to_owned(),
            Database::Postgres(url) => url.clone(),
        };
        let mut s = format!(
            "[sip]\nlisten = [{}]\ndomain = \"pbx.test\"\n{}\n[registrar]\n{}\n[database]\nurl = \"{db}\"\nsqlite_synchronous = \"normal\"\n\n",
            listen.join(", "),
            o.sip_extra,
            o.registrar
        );
        // The admin API on the switch's own address, so parallel tests never share it.
        let _ = writeln!(s, "[admin]\nlisten = \"{host}:{}\"\n", o.port + 3000);
        if !o.security.is_empty() {
            let _ = writeln!(s, "[security]\n{}\n", o.security);
        }
        s.push_str(&o.extra);
        s.push('\n');
        for (name, password) in &o.endpoints {
            let _ = writeln!(
                s,
                "[[endpoint]]\nname = \"{name}\"\npassword = \"{password}\"\ncontext = \"internal\""
            );
            if let Some((_, cid)) = o.callerids.iter().find(|(n, _)| n == name) {
                let _ = writeln!(s, "callerid = \"{}\"", cid.replace('"', "\\\""));
            }
            s.push('\n');
        }
        s
    }

    pub fn dialplan_path(&self) -> PathBuf {
        self.dir.path().join("extensions.conf")
    }

    /// Runs `softswitch ARGS --config <this switch's config>` to completion (bounded).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let child = Command::new(crate::binary())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run softswitch");
        let pid = child.id() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(out) => out.expect("collect softswitch output"),
            Err(_) => {
                // SAFETY: kill(2) on the PID we spawned; it is not reaped while the waiter blocks.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("softswitch {args:?} did not finish within 30 s");
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("softswitch.log")
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(crate::binary())
            .args(["run", "--config"])
            .arg(&self.config)
            .env(
                "RUST_LOG",
                std::env::var("SWITCH_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start softswitch");
        self.child = Some(child);
        let started = wait_until(Duration::from_secs(20), || {
            self.log().matches("softswitch started").count() > self.starts
                || self
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        });
        assert!(
            started && self.is_running(),
            "softswitch did not start; log:\n{}",
            self.log()
        );
        self.starts += 1;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::new(self.opts.ip, self.opts.port)
    }

    /// The admin API (HTTP).
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::new(self.opts.ip, self.opts.port + 3000)
    }

    /// Graceful stop (SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c, Duration::from_secs(10));
        }
    }

    /// Stops the process abruptly, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// `softswitch registrations --json`, one object per binding.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        let out = Command::new(crate::binary())
            .args(["registrations", "--json", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run softswitch registrations");
        assert!(
            out.status.success(),
            "softswitch registrations failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("registrations prints JSON lines"))
            .collect()
    }

    /// The contacts currently bound to `user`.
    pub fn contacts_of(&self, user: &str) -> Vec<String> {
        let aor = format!("{user}@pbx.test");
        self.registrations()
            .into_iter()
            .filter(|r| r["aor"] == aor.as_str())
            .map(|r| r["contact"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
    }
}
