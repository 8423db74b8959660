//! UDP: one socket per listen address, shared by several receive tasks so parsing and
//! handling spread over the runtime's workers; sends never wait.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{Inbound, SendError};
use crate::sip::transaction::{Peer, TransportKind};

/// Kernel buffers sized for bursts: a default-sized buffer drops packets under load
/// long before the CPU is busy (shared/reference/crates.md §5).
const SOCKET_BUFFER: usize = 4 << 20;

pub struct UdpEndpoint {
    pub local: SocketAddr,
    socket: Arc<UdpSocket>,
}

pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpEndpoint> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    Ok(UdpEndpoint {
        local: socket.local_addr()?,
        socket: Arc::new(socket),
    })
}

impl UdpEndpoint {
    pub fn send(&self, bytes: &Bytes, to: SocketAddr) -> Result<(), SendError> {
        match self.socket.try_send_to(bytes, to) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The send buffer is full: finish the send off the caller's path.
                let socket = self.socket.clone();
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let _ = socket.send_to(&bytes, to).await;
                });
                Ok(())
            }
            Err(source) => Err(SendError::Io { addr: to, source }),
        }
    }

    /// Starts `tasks` receive loops on this socket; `index` becomes `Peer::conn`.
    pub fn spawn_receivers(
        &self,
        index: usize,
        tasks: usize,
        max_size: usize,
        inbound: Arc<dyn Inbound>,
    ) {
        for _ in 0..tasks.max(1) {
            let socket = self.socket.clone();
            let inbound = inbound.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; max_size + 1];
                loop {
                    match socket.recv_from(&mut buf).await {
                        Ok((n, _)) if n > max_size => {
                            tracing::debug!(bytes = n, "dropped an oversize datagram");
                        }
                        Ok((n, src)) => inbound.on_message(
                            Bytes::copy_from_slice(&buf[..n]),
                            Peer {
                                transport: TransportKind::Udp,
                                addr: src,
                                conn: Some(index as u64),
                            },
                        ),
                        // ICMP errors from earlier sends surface here on Linux; they say
                        // nothing about the next datagram.
                        Err(e) => tracing::trace!(error = %e, "udp receive error"),
                    }
                }
            });
        }
    }
}
