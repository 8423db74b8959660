//! Loopback addressing and a raw UDP SIP client.
//!
//! Each test gets its own 127.x.y.0/24 block (127.0.0.0/8 is all loopback on Linux), so
//! tests running in parallel never share an address or a port.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static NEXT_BLOCK: AtomicU32 = AtomicU32::new(1);

/// A block of loopback addresses for one test: `.1` is the switch, others are clients.
#[derive(Debug, Clone, Copy)]
pub struct TestNet {
    second: u8,
    third: u8,
}

impl TestNet {
    pub fn new() -> TestNet {
        let n = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        TestNet {
            second: 20 + (pid % 200) as u8,
            third: (n % 250) as u8 + 1,
        }
    }

    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.second, self.third, host)
    }

    pub fn switch_ip(&self) -> Ipv4Addr {
        self.ip(1)
    }
}

impl Default for TestNet {
    fn default() -> Self {
        TestNet::new()
    }
}

/// A bare UDP socket that sends SIP text and reads replies: for torture messages and
/// exact header comparisons that a scripted client cannot express.
pub struct UdpClient {
    pub socket: UdpSocket,
}

impl UdpClient {
    pub fn bind(addr: SocketAddr) -> UdpClient {
        let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        UdpClient { socket }
    }

    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("bound")
    }

    pub fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.socket.send_to(bytes, to).expect("send");
    }

    /// The next datagram within `wait`, as text.
    pub fn recv(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = vec![0u8; 65_536];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// The next final (non-1xx) response within `wait`.
    pub fn recv_final(&self, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let msg = self.recv(left)?;
            if status_of(&msg).is_some_and(|s| s >= 200) {
                return Some(msg);
            }
        }
    }

    /// The next NOTIFY within `wait`, answered with 200 (to its Via's sent-by); its
    /// body.
    pub fn next_notify(&self, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        while let Some(msg) =
            self.recv(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if !msg.starts_with("NOTIFY ") {
                continue;
            }
            let mut ok = String::from("SIP/2.0 200 OK\r\n");
            for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                for v in headers(&msg, name) {
                    ok.push_str(&format!("{name}: {v}\r\n"));
                }
            }
            ok.push_str("Content-Length: 0\r\n\r\n");
            let via = headers(&msg, "Via")
                .first()
                .map(|v| v.to_string())
                .unwrap_or_default();
            let sent_by = via
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.split(';').next())
                .and_then(|s| s.parse::<SocketAddr>().ok());
            if let Some(to) = sent_by {
                self.send(to, ok.as_bytes());
            }
            return Some(msg.split("\r\n\r\n").nth(1).unwrap_or("").to_string());
        }
        None
    }

    /// Sends a request and returns its final response: the first final response with the
    /// request's Call-ID and CSeq (retransmissions of earlier answers are skipped).
    pub fn request(&self, to: SocketAddr, text: &str, wait: Duration) -> Option<String> {
        let number = |m: &str| {
            headers(m, "CSeq")
                .first()
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let call_id = headers(text, "Call-ID").first().map(|s| s.to_string());
        let cseq = number(text);
        self.send(to, text.as_bytes());
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let msg = self.recv_final(left)?;
            let same_call = call_id.is_none()
                || headers(&msg, "Call-ID").first().map(|s| s.to_string()) == call_id;
            let same_cseq = cseq.is_none() || number(&msg) == cseq;
            if same_call && same_cseq {
                return Some(msg);
            }
        }
    }
}

/// The status code of a response's first line.
pub fn status_of(msg: &str) -> Option<u16> {
    let rest = msg.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}

/// Values of every header with this name (case-insensitive; the compact forms of
/// Call-ID, From, To, Via, Contact and Content-Length count too).
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let compact = match name.to_ascii_lowercase().as_str() {
        "call-id" => Some("i"),
        "from" => Some("f"),
        "to" => Some("t"),
        "via" => Some("v"),
        "contact" => Some("m"),
        "content-length" => Some("l"),
        _ => None,
    };
    msg.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .take_while(|l| !l.is_empty())
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| {
            let n = n.trim();
            n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c))
        })
        .map(|(_, v)| v.trim())
        .collect()
}

impl UdpClient {
    /// Whether any message about `call_id` arrives within `wait` (others are skipped).
    pub fn hears_about(&self, call_id: &str, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let msg = self.recv(left)?;
            if headers(&msg, "Call-ID").first() == Some(&call_id) {
                return Some(msg);
            }
        }
    }
}
