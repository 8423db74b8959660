//! TCP: accept loop, one reader and one writer task per connection, Content-Length
//! framing, CRLF keepalive pongs, idle timeouts and a size limit.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::framing::{Frame, next_frame};
use super::{Connections, Inbound};
use crate::sip::transaction::{Peer, TransportKind};

/// Messages queued for one connection's writer before sends start failing.
const WRITE_QUEUE: usize = 512;

pub struct TcpListenerHandle {
    pub local: SocketAddr,
}

#[derive(Clone, Copy)]
pub struct StreamLimits {
    pub max_message: usize,
    pub idle: Duration,
}

/// Binds a listening socket (done before anything else starts, so a busy port is
/// reported at once).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections on `listener` for as long as the runtime lives.
pub fn serve_tcp(
    listener: TcpListener,
    limits: StreamLimits,
    connections: Arc<Connections>,
    inbound: Arc<dyn Inbound>,
) -> TcpListenerHandle {
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    run_connection(stream, peer, limits, connections.clone(), inbound.clone());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    TcpListenerHandle { local }
}

/// Opens a connection to `addr` (RFC 3261 §18.1.1: requests too large for UDP, and
/// peers reached over TCP) and returns its id.
pub async fn connect_tcp(
    addr: SocketAddr,
    limits: StreamLimits,
    connections: Arc<Connections>,
    inbound: Arc<dyn Inbound>,
) -> io::Result<u64> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(run_connection(stream, addr, limits, connections, inbound))
}

fn run_connection(
    stream: TcpStream,
    peer_addr: SocketAddr,
    limits: StreamLimits,
    connections: Arc<Connections>,
    inbound: Arc<dyn Inbound>,
) -> u64 {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let id = connections.register(peer_addr, tx.clone());
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    tokio::spawn(async move {
        let peer = Peer {
            transport: TransportKind::Tcp,
            addr: peer_addr,
            conn: Some(id),
        };
        let mut buf = BytesMut::with_capacity(8192);
        'conn: loop {
            let read = tokio::time::timeout(limits.idle, reader.read_buf(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => {
                    tracing::debug!(peer = %peer_addr, "closing idle tcp connection");
                    break;
                }
            }
            loop {
                match next_frame(&buf, limits.max_message) {
                    Ok(Frame::Message { len }) => {
                        let bytes = buf.split_to(len).freeze();
                        inbound.on_message(bytes, peer);
                    }
                    Ok(Frame::Ping { len }) => {
                        buf.advance(len);
                        let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                    }
                    Ok(Frame::Skip { len }) => buf.advance(len),
                    Ok(Frame::Incomplete) => break,
                    Err(e) => {
                        // Framing is lost for good on this stream (§18.3): close it.
                        tracing::info!(peer = %peer_addr, error = %e, "closing tcp connection");
                        break 'conn;
                    }
                }
            }
        }
        connections.unregister(id);
    });
    id
}
