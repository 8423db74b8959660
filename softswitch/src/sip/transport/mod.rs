//! Transport drivers: the only SIP code that touches sockets. Messages go up to the node
//! as `(Bytes, Peer)`; transmits come down as [`Transmit`]s.
//!
//! `Peer::conn` names the flow a message used: the index of the UDP socket it arrived on
//! (so a reply leaves from the address the phone sent to), or the TCP connection id.

pub mod framing;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::transaction::{Peer, Transmit, TransportKind};

pub use tcp::{StreamLimits, TcpListenerHandle, bind_tcp, connect_tcp, serve_tcp};
pub use udp::{UdpEndpoint, bind_udp};

/// RFC 3261 §18.1.1: a request within 200 bytes of the path MTU, or over 1300 bytes when
/// the MTU is unknown, must go over a congestion-controlled transport.
pub const UDP_REQUEST_LIMIT: usize = 1300;

/// The transport a request of `len` bytes should use toward a peer normally reached over
/// `preferred`.
pub fn transport_for_request(len: usize, preferred: TransportKind) -> TransportKind {
    if preferred == TransportKind::Udp && len > UDP_REQUEST_LIMIT {
        TransportKind::Tcp
    } else {
        preferred
    }
}

/// Whatever arrives on any transport goes here.
pub trait Inbound: Send + Sync + 'static {
    fn on_message(&self, bytes: Bytes, peer: Peer);
}

/// Open stream connections, by id and by remote address (for connection reuse, §18.1).
#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    by_id: Mutex<HashMap<u64, (SocketAddr, mpsc::Sender<Bytes>)>>,
    by_addr: Mutex<HashMap<SocketAddr, u64>>,
}

impl Connections {
    fn register(&self, addr: SocketAddr, tx: mpsc::Sender<Bytes>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.by_id
            .lock()
            .expect("connections lock")
            .insert(id, (addr, tx));
        self.by_addr
            .lock()
            .expect("connections lock")
            .insert(addr, id);
        id
    }

    fn unregister(&self, id: u64) {
        if let Some((addr, _)) = self.by_id.lock().expect("connections lock").remove(&id) {
            let mut by_addr = self.by_addr.lock().expect("connections lock");
            if by_addr.get(&addr) == Some(&id) {
                by_addr.remove(&addr);
            }
        }
    }

    fn sender(&self, id: u64) -> Option<mpsc::Sender<Bytes>> {
        self.by_id
            .lock()
            .expect("connections lock")
            .get(&id)
            .map(|(_, tx)| tx.clone())
    }

    /// The connection already open to `addr`, if any.
    pub fn to_addr(&self, addr: SocketAddr) -> Option<u64> {
        self.by_addr
            .lock()
            .expect("connections lock")
            .get(&addr)
            .copied()
    }

    pub fn len(&self) -> usize {
        self.by_id.lock().expect("connections lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every socket of the node, for sending.
pub struct Transports {
    pub udp: Vec<UdpEndpoint>,
    pub connections: std::sync::Arc<Connections>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no UDP socket for {0}")]
    NoUdpSocket(SocketAddr),
    #[error("connection {0} is closed")]
    ConnectionClosed(u64),
    #[error("no connection to {0}")]
    NoConnection(SocketAddr),
    #[error("send to {addr}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Transports {
    /// Sends without waiting. A full socket buffer or connection queue drops the
    /// message, which is what UDP would do anyway; retransmission timers cover it.
    pub fn send(&self, t: Transmit) -> Result<(), SendError> {
        match t.peer.transport {
            TransportKind::Udp => {
                let socket = self.udp_socket_for(&t.peer)?;
                socket.send(&t.bytes, t.peer.addr)
            }
            TransportKind::Tcp | TransportKind::Tls => {
                let id = t
                    .peer
                    .conn
                    .or_else(|| self.connections.to_addr(t.peer.addr))
                    .ok_or(SendError::NoConnection(t.peer.addr))?;
                let tx = self
                    .connections
                    .sender(id)
                    .ok_or(SendError::ConnectionClosed(id))?;
                tx.try_send(t.bytes)
                    .map_err(|_| SendError::ConnectionClosed(id))
            }
        }
    }

    fn udp_socket_for(&self, peer: &Peer) -> Result<&UdpEndpoint, SendError> {
        if let Some(s) = peer.conn.and_then(|i| self.udp.get(i as usize)) {
            return Ok(s);
        }
        self.udp
            .iter()
            .find(|s| s.local.is_ipv4() == peer.addr.is_ipv4())
            .ok_or(SendError::NoUdpSocket(peer.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_udp_requests_move_to_tcp() {
        assert_eq!(
            transport_for_request(1300, TransportKind::Udp),
            TransportKind::Udp
        );
        assert_eq!(
            transport_for_request(1301, TransportKind::Udp),
            TransportKind::Tcp
        );
        assert_eq!(
            transport_for_request(5000, TransportKind::Tcp),
            TransportKind::Tcp
        );
    }
}
