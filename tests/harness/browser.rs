//! A real headless Chromium, driven over WebDriver (the W3C protocol
//! chromedriver speaks: JSON over HTTP), for the status page's tests. Debian
//! packages `chromium` and `chromium-driver`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http;
use crate::process::wait_until;

pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    /// chromedriver and one headless Chromium session with a phone-sized window.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver)");
        let ready = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(addr).is_ok()
                && http::get(addr, "/status").json()["value"]["ready"] == true
        });
        assert!(ready, "chromedriver did not come up on {addr}");
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
        ];
        // Chromium refuses to sandbox itself as root.
        if unsafe { libc::geteuid() } == 0 {
            args.push("--no-sandbox".into());
        }
        let mut options = json!({ "args": args });
        for binary in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
            if std::path::Path::new(binary).exists() {
                options["binary"] = binary.into();
                break;
            }
        }
        let caps = json!({
            "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": options } }
        });
        let r = http::request_json(addr, "POST", "/session", &caps);
        let session = r.json()["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {}", r.body))
            .to_owned();
        Browser {
            driver,
            addr,
            session,
        }
    }

    pub fn goto(&self, url: &str) {
        let r = http::request_json(
            self.addr,
            "POST",
            &format!("/session/{}/url", self.session),
            &json!({ "url": url }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub fn eval(&self, script: &str) -> Value {
        let r = http::request_json(
            self.addr,
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            &json!({ "script": script, "args": [] }),
        );
        assert_eq!(r.status, 200, "{script}: {}", r.body);
        r.json()["value"].clone()
    }

    /// The text of the element `selector` shows (empty when there is none).
    pub fn text(&self, selector: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : '';",
            json!(selector)
        );
        self.eval(&script).as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the browser; a driver that is already gone is no reason to panic
        // while a failing test unwinds.
        let (addr, path) = (self.addr, format!("/session/{}", self.session));
        let _ = std::panic::catch_unwind(move || http::request(addr, "DELETE", &path, None));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
