//! baresip as a user runs it: its own config directory, an account line, and the
//! `ctrl_tcp` module for remote control. Audio goes to and from files.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{stop, wait_until};

pub struct Baresip {
    pub dir: tempfile::TempDir,
    pub sip: SocketAddr,
    ctrl: SocketAddr,
    child: Option<Child>,
}

pub struct BaresipOptions {
    pub ip: IpAddr,
    pub sip_port: u16,
    pub rtp_ports: (u16, u16),
    pub ctrl_port: u16,
    /// The account line, e.g. `<sip:1001@127.0.0.1:5060>;auth_pass=secret1001;regint=600`.
    pub account: String,
    /// Audio sent on calls (a WAV file); silence when absent.
    pub source: Option<PathBuf>,
    /// Write the audio of every call to `dump-*-dec.wav` (received) in its directory.
    pub record: bool,
}

impl Baresip {
    pub fn start(opts: BaresipOptions) -> Baresip {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = match &opts.source {
            Some(p) => format!("aufile,{}", p.display()),
            None => "aubridge,nil".into(),
        };
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{ip}:{port}\n\
             net_interface\t\t{ip}\n\
             audio_player\t\taubridge,nil\n\
             audio_source\t\t{source}\n\
             audio_alert\t\taubridge,nil\n\
             rtp_ports\t\t{r0}-{r1}\n\
             ctrl_tcp_listen\t\t{ip}:{ctrl}\n\
             snd_path\t\t{dump}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tstdio.so\n\
             module\t\t\tg711.so\n\
             module\t\t\tg722.so\n\
             module\t\t\taubridge.so\n\
             module\t\t\taufile.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\tctrl_tcp.so\n{record}",
            ip = opts.ip,
            port = opts.sip_port,
            r0 = opts.rtp_ports.0,
            r1 = opts.rtp_ports.1,
            ctrl = opts.ctrl_port,
            dump = dir.path().display(),
            record = if opts.record {
                "module\t\t\tsndfile.so\n"
            } else {
                ""
            },
        );
        std::fs::write(dir.path().join("config"), config).expect("baresip config");
        std::fs::write(dir.path().join("accounts"), format!("{}\n", opts.account))
            .expect("accounts");
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start baresip (is it installed?)");
        Baresip {
            sip: SocketAddr::new(opts.ip, opts.sip_port),
            ctrl: SocketAddr::new(opts.ip, opts.ctrl_port),
            dir,
            child: Some(child),
        }
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(
            &std::fs::read(self.dir.path().join("baresip.log")).unwrap_or_default(),
        )
        .into_owned()
    }

    /// Waits for baresip to report a successful registration.
    pub fn wait_registered(&self, limit: Duration) -> bool {
        wait_until(limit, || self.log().contains("200 OK"))
    }

    /// Sends a `ctrl_tcp` command (a JSON netstring) and returns baresip's reply.
    pub fn command(&self, command: &str, params: &str) -> Option<String> {
        use std::io::{Read as _, Write as _};
        let body =
            serde_json::json!({ "command": command, "params": params, "token": "t1" }).to_string();
        let mut conn =
            std::net::TcpStream::connect_timeout(&self.ctrl, Duration::from_secs(3)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        conn.write_all(format!("{}:{body},", body.len()).as_bytes())
            .ok()?;
        let mut buf = vec![0u8; 4096];
        let n = conn.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The WAV files `sndfile` wrote with the audio this phone received.
    pub fn received_audio(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("dump-") && n.ends_with("-dec.wav"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c, Duration::from_secs(5));
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
    }
}
