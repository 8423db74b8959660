//! relay-load: G.711-shaped RTP through a media relay, measured per packet.
//!
//! Each call is two endpoints on `--gen-ip` that send one 172-byte RTP packet
//! every 20 ms toward the relay, one to each side; the relay sends each side's
//! packets to the other endpoint. The relay under test is one of:
//!
//! - `softswitch`: the switch's own relay (the `media` crate), in a child process
//!   (`relay-load serve`) so its CPU is measured apart from the generator's;
//! - `rtpengine`: the rtpengine daemon in userspace, sessions made over its ng
//!   control protocol (offer/answer);
//! - `c`: `minimal-relay` (bench/relay/minimal-relay.c), the baseline.
//!
//! After a warm-up (latching), the relay's CPU time (utime+stime of its process,
//! all threads) is read at the start and end of the measured window; every packet
//! sent in the window must arrive. One JSON line per run goes to stdout.
//!
//!   relay-load run --target softswitch --calls 1250 --seconds 10
//!   relay-load serve --ip 127.0.0.80 --calls 1250 [--threads 1]   (used by `run`)

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::net::UdpSocket as MioSocket;
use mio::{Events, Interest, Poll, Token};

const PACKET: usize = 172;
const TICK: Duration = Duration::from_millis(20);
const BASE_PORT: u16 = 30000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => Err("usage: relay-load run|serve [options] (see the source's header)".into()),
    };
    if let Err(e) = result {
        eprintln!("relay-load: {e}");
        std::process::exit(2);
    }
}

fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn opt_parse<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match opt(args, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name}: `{v}` is not valid")),
    }
}

/// The switch's relay with `--calls` sessions; prints "A B" ports per session, then
/// "ready", and runs until stdin closes.
fn serve(args: &[String]) -> Result<(), String> {
    let ip: IpAddr = opt_parse(args, "--ip", IpAddr::from([127, 0, 0, 80]))?;
    let calls: usize = opt_parse(args, "--calls", 500)?;
    let threads: usize = opt_parse(args, "--threads", 1)?;
    let relay = media::relay::Relay::with_threads(ip, ip, BASE_PORT..=BASE_PORT + 20_000, threads)
        .map_err(|e| e.to_string())?;
    let mut sessions = Vec::with_capacity(calls);
    let mut out = std::io::stdout().lock();
    for _ in 0..calls {
        let s = relay.allocate().map_err(|e| e.to_string())?;
        writeln!(
            out,
            "{} {}",
            s.local_rtp(media::relay::Side::A).port(),
            s.local_rtp(media::relay::Side::B).port()
        )
        .map_err(|e| e.to_string())?;
        sessions.push(s);
    }
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let mut line = String::new();
    while std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?
        > 0
    {
        line.clear();
    }
    drop(sessions);
    Ok(())
}

/// One call: the generator's two endpoints and where each sends.
struct Stream {
    a: UdpSocket,
    b: UdpSocket,
    to_a_side: SocketAddr,
    to_b_side: SocketAddr,
}

struct Target {
    child: Child,
    /// Relay ports (A side, B side) per call, known once sessions exist.
    ports: Vec<(u16, u16)>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let target = opt(args, "--target").ok_or("--target softswitch|rtpengine|c")?;
    let calls: usize = opt_parse(args, "--calls", 500)?;
    let seconds: u64 = opt_parse(args, "--seconds", 10)?;
    let warmup: u64 = opt_parse(args, "--warmup", 2)?;
    let relay_ip: IpAddr = opt_parse(args, "--relay-ip", IpAddr::from([127, 0, 0, 80]))?;
    let gen_ip: IpAddr = opt_parse(args, "--gen-ip", IpAddr::from([127, 0, 0, 81]))?;
    for ip in [relay_ip, gen_ip] {
        if !ip.is_loopback() {
            return Err(format!("{ip} is not a loopback address"));
        }
    }

    let mut endpoints = Vec::with_capacity(calls);
    for _ in 0..calls {
        let a = UdpSocket::bind((gen_ip, 0)).map_err(|e| e.to_string())?;
        let b = UdpSocket::bind((gen_ip, 0)).map_err(|e| e.to_string())?;
        endpoints.push((a, b));
    }
    let target_proc = match target {
        "softswitch" => start_softswitch(relay_ip, calls, opt(args, "--threads").unwrap_or("1"))?,
        "c" => start_c(args, relay_ip, calls)?,
        "rtpengine" => start_rtpengine(args, relay_ip, &endpoints)?,
        other => return Err(format!("unknown target `{other}`")),
    };
    let streams: Vec<Stream> = endpoints
        .into_iter()
        .zip(&target_proc.ports)
        .map(|((a, b), (pa, pb))| Stream {
            a,
            b,
            to_a_side: SocketAddr::new(relay_ip, *pa),
            to_b_side: SocketAddr::new(relay_ip, *pb),
        })
        .collect();
    let pid = target_proc.child.id();
    let report = load(&streams, pid, warmup, seconds)?;
    println!(
        "{}",
        serde_json::json!({
            "target": target,
            "calls": calls,
            "seconds": seconds,
            "offered_pps": calls * 2 * 50,
            "sent": report.sent,
            "send_errors": report.send_errors,
            "streams_short": report.streams_short,
            "streams_empty": report.streams_empty,
            "received": report.received,
            "lost": report.sent.saturating_sub(report.received),
            "loss_pct": if report.sent == 0 { 0.0 } else {
                100.0 * report.sent.saturating_sub(report.received) as f64 / report.sent as f64
            },
            "relay_cpu_s": report.cpu_s,
            "relay_cpu_pct": 100.0 * report.cpu_s / seconds as f64,
            "cpu_us_per_packet": if report.received == 0 { 0.0 } else {
                1e6 * report.cpu_s / report.received as f64
            },
        })
    );
    drop(target_proc);
    Ok(())
}

fn start_softswitch(ip: IpAddr, calls: usize, threads: &str) -> Result<Target, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(me)
        .args([
            "serve",
            "--ip",
            &ip.to_string(),
            "--calls",
            &calls.to_string(),
        ])
        .args(["--threads", threads])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    let ports = read_ports(&mut child)?;
    Ok(Target { child, ports })
}

fn start_c(args: &[String], ip: IpAddr, calls: usize) -> Result<Target, String> {
    let bin = opt(args, "--c-relay").unwrap_or("minimal-relay");
    let mut child = Command::new(bin)
        .args([&ip.to_string(), &BASE_PORT.to_string(), &calls.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    read_ports(&mut child)?;
    let ports = (0..calls as u16)
        .map(|i| (BASE_PORT + 4 * i, BASE_PORT + 4 * i + 2))
        .collect();
    Ok(Target { child, ports })
}

/// Reads "A B" lines up to "ready" from the child's stdout.
fn read_ports(child: &mut Child) -> Result<Vec<(u16, u16)>, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut ports = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line == "ready" {
            return Ok(ports);
        }
        let mut it = line.split_whitespace().map(str::parse::<u16>);
        match (it.next(), it.next()) {
            (Some(Ok(a)), Some(Ok(b))) => ports.push((a, b)),
            _ => return Err(format!("unexpected line from the relay: {line}")),
        }
    }
    Err("the relay exited before it was ready".into())
}

fn start_rtpengine(
    args: &[String],
    ip: IpAddr,
    endpoints: &[(UdpSocket, UdpSocket)],
) -> Result<Target, String> {
    let bin = opt(args, "--rtpengine").unwrap_or("rtpengine");
    let ng = SocketAddr::new(ip, 2223);
    let child = Command::new(bin)
        .args([
            "--foreground",
            "--log-stderr",
            "--log-level=4",
            "--table=-1",
            &format!("--interface={ip}"),
            &format!("--listen-ng={ng}"),
            &format!("--port-min={BASE_PORT}"),
            &format!("--port-max={}", BASE_PORT + 20_000),
            "--num-threads=2",
        ])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    let mut target = Target {
        child,
        ports: Vec::new(),
    };
    let ctl = UdpSocket::bind((ip, 0)).map_err(|e| e.to_string())?;
    ctl.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let mut ready = false;
    for _ in 0..50 {
        if ng_request(&ctl, ng, &[("command", "ping")]).is_ok() {
            ready = true;
            break;
        }
    }
    if !ready {
        return Err("rtpengine did not answer ng pings".into());
    }
    for (i, (a, b)) in endpoints.iter().enumerate() {
        let call_id = format!("bench-{i}");
        let sdp_of = |s: &UdpSocket| -> Result<String, String> {
            let addr = s.local_addr().map_err(|e| e.to_string())?;
            Ok(format!(
                "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
                 m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
                ip = addr.ip(),
                port = addr.port()
            ))
        };
        let offer = sdp_of(a)?;
        let to_b = ng_request(
            &ctl,
            ng,
            &[
                ("call-id", &call_id),
                ("command", "offer"),
                ("from-tag", "a"),
                ("sdp", &offer),
            ],
        )?;
        let answer = sdp_of(b)?;
        let to_a = ng_request(
            &ctl,
            ng,
            &[
                ("call-id", &call_id),
                ("command", "answer"),
                ("from-tag", "a"),
                ("sdp", &answer),
                ("to-tag", "b"),
            ],
        )?;
        // The offer's rewrite is what B sends to; the answer's, what A sends to.
        target.ports.push((audio_port(&to_a)?, audio_port(&to_b)?));
    }
    Ok(target)
}

/// One ng request (bencoded dictionary of strings, keys already sorted) and the
/// `sdp` of its answer (empty for a ping's pong).
fn ng_request(ctl: &UdpSocket, ng: SocketAddr, dict: &[(&str, &str)]) -> Result<String, String> {
    let cookie = format!("{:08x}", rand_u32());
    let mut msg = format!("{cookie} d").into_bytes();
    for (k, v) in dict {
        msg.extend(format!("{}:{k}{}:", k.len(), v.len()).as_bytes());
        msg.extend(v.as_bytes());
    }
    msg.push(b'e');
    ctl.send_to(&msg, ng).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    let n = ctl.recv(&mut buf).map_err(|e| format!("ng: {e}"))?;
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    let body = reply
        .strip_prefix(&cookie)
        .ok_or_else(|| format!("ng: unexpected reply {reply}"))?;
    if body.contains("6:result4:pong") {
        return Ok(String::new());
    }
    if !body.contains("6:result2:ok") {
        return Err(format!("ng: {body}"));
    }
    let at = body.find("3:sdp").ok_or("ng: no sdp in the reply")? + 5;
    let rest = &body[at..];
    let colon = rest.find(':').ok_or("ng: malformed sdp")?;
    let len: usize = rest[..colon]
        .parse()
        .map_err(|_| "ng: malformed sdp length")?;
    Ok(rest[colon + 1..colon + 1 + len].to_owned())
}

fn audio_port(sdp: &str) -> Result<u16, String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no audio port in {sdp}"))
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ std::process::id()
}

struct Report {
    /// Receiving endpoints that got fewer packets than were sent to them, and none.
    streams_short: usize,
    streams_empty: usize,
    sent: u64,
    send_errors: u64,
    received: u64,
    cpu_s: f64,
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks as f64 / hz)
}

fn packet(buf: &mut [u8; PACKET], seq: u16, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = 0; // PCMU
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Sends for `warmup + seconds`, counting only packets of the measured window.
fn load(streams: &[Stream], pid: u32, warmup: u64, seconds: u64) -> Result<Report, String> {
    let warm_ticks = (warmup * 50) as u16;
    let end_tick = warm_ticks + (seconds * 50) as u16;
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut receivers = Vec::with_capacity(streams.len() * 2);
    for (i, s) in streams.iter().enumerate() {
        for (j, sock) in [&s.a, &s.b].into_iter().enumerate() {
            let clone = sock.try_clone().map_err(|e| e.to_string())?;
            clone.set_nonblocking(true).map_err(|e| e.to_string())?;
            let mut m = MioSocket::from_std(clone);
            poll.registry()
                .register(&mut m, Token(i * 2 + j), Interest::READABLE)
                .map_err(|e| e.to_string())?;
            receivers.push(m);
        }
    }
    let rx = {
        let received = received.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut events = Events::with_capacity(1024);
            let mut buf = [0u8; 2048];
            let mut per_socket = vec![0u64; receivers.len()];
            while !stop.load(Ordering::Relaxed) {
                if poll
                    .poll(&mut events, Some(Duration::from_millis(50)))
                    .is_err()
                {
                    continue;
                }
                for ev in events.iter() {
                    let sock = &receivers[ev.token().0];
                    while let Ok(n) = sock.recv(&mut buf) {
                        if n >= 4 {
                            let seq = u16::from_be_bytes([buf[2], buf[3]]);
                            if (warm_ticks..end_tick).contains(&seq) {
                                received.fetch_add(1, Ordering::Relaxed);
                                per_socket[ev.token().0] += 1;
                            }
                        }
                    }
                }
            }
            per_socket
        })
    };

    for s in streams {
        s.a.set_nonblocking(true).map_err(|e| e.to_string())?;
        s.b.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let mut buf = [0xffu8; PACKET];
    let (mut sent, mut send_errors) = (0u64, 0u64);
    let mut cpu_start = 0.0;
    let start = Instant::now();
    // Each tick's sends are spread over 10 slices of 2 ms, as real phones' would be.
    const SLICES: usize = 10;
    let per_slice = streams.len().div_ceil(SLICES);
    for tick in 0..end_tick {
        if tick == warm_ticks {
            cpu_start = cpu_seconds(pid)?;
        }
        for slice in 0..SLICES {
            let at = start + TICK * u32::from(tick) + TICK / SLICES as u32 * slice as u32;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let chunk = streams
                .iter()
                .enumerate()
                .skip(slice * per_slice)
                .take(per_slice);
            for (i, s) in chunk {
                for (sock, to, ssrc) in [
                    (&s.a, s.to_a_side, 2 * i as u32),
                    (&s.b, s.to_b_side, 2 * i as u32 + 1),
                ] {
                    packet(&mut buf, tick, ssrc);
                    match sock.send_to(&buf, to) {
                        Ok(_) if tick >= warm_ticks => sent += 1,
                        Ok(_) => {}
                        Err(_) if tick >= warm_ticks => send_errors += 1,
                        Err(_) => {}
                    }
                }
            }
        }
    }
    // Wait until nothing more arrives: on a loaded machine the generator's own
    // receiver may run behind, with packets queued (not lost) in its sockets.
    let drain_until = Instant::now() + Duration::from_secs(10);
    let mut last = received.load(Ordering::Relaxed);
    while Instant::now() < drain_until {
        std::thread::sleep(Duration::from_millis(300));
        let now = received.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let cpu_end = cpu_seconds(pid)?;
    stop.store(true, Ordering::Relaxed);
    let per_socket = rx.join().unwrap_or_default();
    let expected = seconds * 50;
    Ok(Report {
        sent,
        send_errors,
        received: received.load(Ordering::Relaxed),
        cpu_s: cpu_end - cpu_start,
        streams_short: per_socket.iter().filter(|&&n| n < expected).count(),
        streams_empty: per_socket.iter().filter(|&&n| n == 0).count(),
    })
}
