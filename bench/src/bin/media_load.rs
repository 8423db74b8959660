//! media-load: how many conference members and announcement streams one media
//! thread carries.
//!
//! The switch's relay (the `media` crate) runs in this process with one media
//! thread; the load generator runs on other threads. The media thread's own CPU
//! time (utime+stime of the thread named `media-0`, from /proc) is read over the
//! measured window, so the generator's work is not counted.
//!
//! - `conference`: `--rooms` rooms of `--members` callers; every caller sends one
//!   20 ms G.711 packet every 20 ms (as a phone does) and the room's mixer sends
//!   each caller the others' mix every 20 ms.
//! - `playback`: `--streams` sessions each playing a looped prompt to a phone.
//!
//! Per run one JSON line: the load, the media thread's CPU share of one core, and
//! the capacity that share implies (members or streams per core), plus the packets
//! the sample phones received, to show the work was really done.
//!
//!   media-load conference --rooms 4 --members 50 --seconds 10
//!   media-load playback --streams 1000 --seconds 10

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use media::relay::{Relay, Session, Side};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TICK: Duration = Duration::from_millis(20);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("conference") => conference(&args[1..]),
        Some("playback") => playback(&args[1..]),
        _ => {
            Err("usage: media-load conference|playback [options] (see the source's header)".into())
        }
    };
    if let Err(e) = result {
        eprintln!("media-load: {e}");
        std::process::exit(2);
    }
}

fn opt<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
    {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name}: `{v}` is not valid")),
    }
}

/// CPU seconds (user + system) of this process's thread called `name`.
fn thread_cpu(name: &str) -> Result<f64, String> {
    let ticks = 100.0; // USER_HZ on Linux
    for entry in std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())? {
        let dir = entry.map_err(|e| e.to_string())?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).map_err(|e| e.to_string())?;
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')').ok_or("odd stat")? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields[11].parse().map_err(|_| "utime")?;
        let stime: f64 = fields[12].parse().map_err(|_| "stime")?;
        return Ok((utime + stime) / ticks);
    }
    Err(format!("no thread named {name}"))
}

/// A phone: a socket that the session's caller side sends to.
struct Phone {
    socket: UdpSocket,
    session: Session,
}

fn phone(relay: &Relay) -> Result<Phone, String> {
    let session = relay.allocate().map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind((LOOPBACK, 0)).map_err(|e| e.to_string())?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    session.set_remote(Side::A, socket.local_addr().unwrap(), None, false);
    Ok(Phone { socket, session })
}

/// Drains every phone's socket, counting packets, until `stop`.
fn drain(phones: Arc<Vec<Phone>>, stop: Arc<AtomicBool>, received: Arc<AtomicU64>) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        for p in phones.iter() {
            while p.socket.recv_from(&mut buf).is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Measures the media thread over `seconds` after a two-second warm-up.
fn measure(seconds: f64, received: &AtomicU64) -> Result<(f64, u64), String> {
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, rx0, t0) = (
        thread_cpu("media-0")?,
        received.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let cpu = thread_cpu("media-0")? - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    Ok((cpu / wall, received.load(Ordering::Relaxed) - rx0))
}

fn conference(args: &[String]) -> Result<(), String> {
    let rooms: usize = opt(args, "--rooms", 1)?;
    let members: usize = opt(args, "--members", 50)?;
    let seconds: f64 = opt(args, "--seconds", 10.0)?;
    let relay =
        Relay::with_threads(LOOPBACK, LOOPBACK, 40000..=60999, 1).map_err(|e| e.to_string())?;
    let mut phones = Vec::new();
    let mut seats = Vec::new();
    for r in 0..rooms {
        for _ in 0..members {
            let p = phone(&relay)?;
            seats.push(p.session.join(&format!("room{r}"), 0));
            phones.push(p);
        }
    }
    let phones = Arc::new(phones);
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    // The phones talk: 172-byte PCMU packets, 20 ms apart, a tone each.
    let sender = {
        let (phones, stop) = (Arc::clone(&phones), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seq = 0u16;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for (k, p) in phones.iter().enumerate() {
                    let mut packet = [0u8; 172];
                    packet[0] = 0x80;
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                    packet[8..12].copy_from_slice(&(k as u32).to_be_bytes());
                    for (i, b) in packet[12..].iter_mut().enumerate() {
                        let t = (usize::from(seq) * 160 + i) as f64 / 8000.0;
                        let f = 300.0 + 10.0 * k as f64;
                        *b = media::g711::ulaw_encode(
                            (3000.0 * (std::f64::consts::TAU * f * t).sin()) as i16,
                        );
                    }
                    let _ = p.socket.send_to(&packet, p.session.local_rtp(Side::A));
                }
                seq = seq.wrapping_add(1);
                next += TICK;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    let drainer = {
        let (phones, stop, received) = (
            Arc::clone(&phones),
            Arc::clone(&stop),
            Arc::clone(&received),
        );
        std::thread::spawn(move || drain(phones, stop, received))
    };
    let (share, packets) = measure(seconds, &received)?;
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let _ = drainer.join();
    let total = rooms * members;
    let expected = (total as f64 * seconds * 50.0) as u64;
    println!(
        "{{\"mode\":\"conference\",\"rooms\":{rooms},\"members\":{members},\"seconds\":{seconds},\
         \"media_thread_cpu\":{share:.3},\"members_per_core\":{:.0},\
         \"mix_packets_received\":{packets},\"mix_packets_expected\":{expected}}}",
        total as f64 / share.max(1e-9)
    );
    drop(seats);
    Ok(())
}

fn playback(args: &[String]) -> Result<(), String> {
    let streams: usize = opt(args, "--streams", 500)?;
    let seconds: f64 = opt(args, "--seconds", 10.0)?;
    let relay =
        Relay::with_threads(LOOPBACK, LOOPBACK, 40000..=60999, 1).map_err(|e| e.to_string())?;
    // A 3 s announcement, looped: what callers on hold or in a queue hear.
    let prompt = media::tones::tone("us", media::tones::Tone::Ringback).ok_or("tone")?;
    let payload: Arc<[u8]> = prompt.encode(0).into();
    let mut phones = Vec::new();
    for _ in 0..streams {
        let p = phone(&relay)?;
        p.session.play(Side::A, Arc::clone(&payload), 0, true);
        phones.push(p);
    }
    let phones = Arc::new(phones);
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let drainer = {
        let (phones, stop, received) = (
            Arc::clone(&phones),
            Arc::clone(&stop),
            Arc::clone(&received),
        );
        std::thread::spawn(move || drain(phones, stop, received))
    };
    let (share, packets) = measure(seconds, &received)?;
    stop.store(true, Ordering::Relaxed);
    let _ = drainer.join();
    let expected = (streams as f64 * seconds * 50.0) as u64;
    println!(
        "{{\"mode\":\"playback\",\"streams\":{streams},\"seconds\":{seconds},\
         \"media_thread_cpu\":{share:.3},\"streams_per_core\":{:.0},\
         \"packets_received\":{packets},\"packets_expected\":{expected}}}",
        streams as f64 / share.max(1e-9)
    );
    Ok(())
}
