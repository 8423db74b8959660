//! `softswitch balance`: the SIP load balancer in front of a cluster of nodes. One
//! address (UDP and TCP) for phones and peers; new dialogs spread over healthy nodes by
//! Call-ID, in-dialog requests to the node that owns the dialog, requests toward
//! phones back out on the address they registered from. See [`proxy`] for the
//! forwarding rules and [`nodes`] for health and choice.

pub mod config;
pub mod nodes;
pub mod proxy;
mod retry;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::net::UdpSocket;

use config::BalancerConfig;
use nodes::{NodeSet, NodeView};
use proxy::{Flow, Forward, Proxy, ProxyStats};

use crate::sip::transaction::{Peer, Transmit, TransportKind};
use crate::sip::transport::{Connections, Inbound, StreamLimits, Transports};

/// A running balancer's shared parts.
struct Balancer {
    config: BalancerConfig,
    proxy: Mutex<Proxy>,
    socket: UdpSocket,
    /// TCP connections phones opened (no UDP sockets: those go through `socket`).
    streams: Transports,
    started: Instant,
}

impl Balancer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Proxy> {
        self.proxy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The datagrams to send for `out`; a message for a TCP phone is queued on
    /// its connection here.
    fn datagrams(&self, out: Forward) -> Vec<(SocketAddr, bytes::Bytes)> {
        match out {
            Forward::Send(to, bytes) => vec![(to, bytes)],
            Forward::Several(all) => all,
            Forward::Stream(to, bytes) => {
                self.stream(to, bytes);
                Vec::new()
            }
            Forward::Nothing => Vec::new(),
        }
    }

    /// Out on the connection the phone at `to` opened. A closed one drops the
    /// message, as a lost datagram would be: the phone reconnects when it next
    /// registers.
    fn stream(&self, to: SocketAddr, bytes: bytes::Bytes) {
        let peer = Peer {
            transport: TransportKind::Tcp,
            addr: to,
            conn: None,
        };
        if let Err(e) = self.streams.send(Transmit { peer, bytes }) {
            tracing::debug!(%to, error = %e, "no connection to the phone; dropped");
        }
    }

    fn status(&self) -> serde_json::Value {
        let now = Instant::now();
        let (nodes, stats, pending): (Vec<NodeView>, ProxyStats, usize) = {
            let p = self.lock();
            (p.nodes.view(now), p.stats, p.pending_invites())
        };
        serde_json::json!({
            "balancer": self.config.balance.name,
            "listen": self.config.listen().to_string(),
            "advertised": self.config.advertised(),
            "share": self.config.balance.share,
            "up_for_ms": self.started.elapsed().as_millis() as u64,
            "nodes_taking_calls": nodes.iter().filter(|n| matches!(n.state, "up" | "suspect")).count(),
            "stats": stats,
            "invites_kept_for_retry": pending,
            "nodes": nodes,
        })
    }
}

/// Binds, starts probing and forwarding, and runs until SIGINT or SIGTERM.
pub async fn run(config: BalancerConfig) -> anyhow::Result<()> {
    let listen = config.listen();
    let socket = bind(listen).with_context(|| format!("cannot listen on udp:{listen}"))?;
    let tcp = crate::sip::transport::bind_tcp(listen)
        .with_context(|| format!("cannot listen on tcp:{listen}"))?;
    let connections = Arc::new(Connections::default());
    let nodes = NodeSet::new(
        config.node_specs(),
        config.balance.probe.keepalive(),
        Instant::now(),
    );
    let proxy = Proxy::new(config.advertised(), listen, nodes, config.balance.share);
    let admin = config.admin.addr();
    let balancer = Arc::new(Balancer {
        config,
        proxy: Mutex::new(proxy),
        socket,
        streams: Transports {
            udp: Vec::new(),
            connections: connections.clone(),
        },
        started: Instant::now(),
    });
    let limits = StreamLimits {
        max_message: 65_535,
        idle: Duration::from_secs(balancer.config.balance.tcp_idle_timeout.max(1)),
    };
    let ingress: Arc<dyn Inbound> = Arc::new(TcpIngress(balancer.clone()));
    crate::sip::transport::serve_tcp(tcp, limits, connections, ingress);
    let mut listening = vec![format!("udp:{listen}"), format!("tcp:{listen}")];
    if let Some(addr) = admin {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the admin API"))?;
        listening.push(format!("admin:http://{}", listener.local_addr()?));
        let app = router(balancer.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the admin API stopped");
            }
        });
    }
    tokio::spawn(probe_loop(balancer.clone()));
    tracing::info!(
        balancer = %balancer.config.balance.name,
        listening = %listening.join(", "),
        advertised = %balancer.config.advertised(),
        nodes = balancer.config.nodes.len(),
        "softswitch balancer started"
    );
    let forwarding = tokio::spawn(forward_loop(balancer.clone()));
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        r = forwarding => r.context("the forwarding task failed")??,
    }
    tracing::info!("softswitch balancer stopped");
    Ok(())
}

/// A UDP socket with room for bursts: a balancer carries every node's traffic.
fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

async fn forward_loop(b: Arc<Balancer>) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = match b.socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from an earlier send surface here on some systems.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e).context("receiving SIP"),
        };
        let data = bytes::Bytes::copy_from_slice(&buf[..n]);
        let out = b.lock().on_datagram(data, from, Instant::now());
        let sends = b.datagrams(out);
        for (to, bytes) in sends {
            if let Err(e) = b.socket.send_to(&bytes, to).await {
                tracing::debug!(%to, error = %e, "could not forward");
            }
        }
    }
}

/// Messages framed out of phones' TCP connections.
struct TcpIngress(Arc<Balancer>);

impl Inbound for TcpIngress {
    fn on_message(&self, bytes: bytes::Bytes, peer: Peer) {
        let b = &self.0;
        let out = b
            .lock()
            .on_message(bytes, Flow::tcp(peer.addr), Instant::now());
        let sends = b.datagrams(out);
        // Not awaited: this runs on the connection's reader. A full socket buffer
        // drops the datagram, which retransmission covers.
        for (to, bytes) in sends {
            if let Err(e) = b.socket.try_send_to(&bytes, to) {
                tracing::debug!(%to, error = %e, "could not forward");
            }
        }
    }
}

async fn probe_loop(b: Arc<Balancer>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probes = b.lock().probes(Instant::now());
        for (to, bytes) in probes {
            if let Err(e) = b.socket.send_to(&bytes, to).await {
                tracing::debug!(%to, error = %e, "could not probe");
            }
        }
    }
}

fn router(b: Arc<Balancer>) -> Router {
    Router::new()
        .route("/api/health", get(status))
        .route("/api/balancer", get(status))
        .route("/api/balancer/route", get(route))
        .layer(middleware::from_fn_with_state(b.clone(), require_token))
        .with_state(b)
}

async fn status(State(b): State<Arc<Balancer>>) -> Json<serde_json::Value> {
    Json(b.status())
}

#[derive(serde::Deserialize)]
struct RouteQuery {
    call_id: String,
}

/// `GET /api/balancer/route?call_id=X`: the node a new dialog with this Call-ID
/// goes to now (null when no node takes calls).
async fn route(
    State(b): State<Arc<Balancer>>,
    axum::extract::Query(q): axum::extract::Query<RouteQuery>,
) -> Json<serde_json::Value> {
    let p = b.lock();
    let node = p.nodes.peek(&q.call_id).map(|i| p.nodes.spec(i).clone());
    Json(serde_json::json!({
        "call_id": q.call_id,
        "node": node.as_ref().map(|n| n.name.clone()),
        "address": node.as_ref().map(|n| n.addr.to_string()),
    }))
}

async fn require_token(State(b): State<Arc<Balancer>>, req: Request, next: Next) -> Response {
    match crate::admin::refusal(b.config.admin.token.as_deref(), &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}
