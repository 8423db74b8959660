//! Values the transaction machines exchange with the layer and the transport driver.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

/// The transport a message travels on. Reliable transports switch off retransmission
/// timers (RFC 3261 §17: timers A, E, G are unreliable-only; D, I, J, K become zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    pub fn as_via(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
}

/// Where a message came from or goes to. `conn` names the stream connection a request
/// arrived on, so its responses go back on the same connection (RFC 3261 §18.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: TransportKind,
    pub addr: SocketAddr,
    pub conn: Option<u64>,
}

impl Peer {
    pub fn udp(addr: SocketAddr) -> Peer {
        Peer {
            transport: TransportKind::Udp,
            addr,
            conn: None,
        }
    }
}

/// Bytes to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Bytes,
}

/// RFC 3261 timer bases (§17.1.1.1, Table 4). Tests may shrink them; the defaults are the
/// RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// How long a non-2xx INVITE client waits for response retransmissions (Timer D);
    /// "at least 32 s" for unreliable transports.
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J, L and M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}
