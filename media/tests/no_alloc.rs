//! Proves the per-packet path allocates nothing: a counting global allocator watches
//! a steady stream through the relay (phones included) after warm-up. This is its own
//! test binary because the allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use media::relay::{Relay, Side};
use tokio::net::UdpSocket;
use tokio::time::timeout;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[test]
fn steady_state_relaying_does_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let relay = Relay::new(LOCALHOST, 31300..=31309);
        let s = relay.allocate().unwrap();
        let a = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let b = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        s.set_remote(Side::A, a.local_addr().unwrap(), None, false);
        s.set_remote(Side::B, b.local_addr().unwrap(), None, false);
        let (to_a, to_b) = (s.local_rtp(Side::A), s.local_rtp(Side::B));

        let mut packet = [0u8; 172];
        packet[0] = 0x80;
        let mut buf = [0u8; 2048];
        let mut exchange = async |seq: u16| {
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            a.send_to(&packet, to_a).await.unwrap();
            let (n, _) = timeout(Duration::from_secs(2), b.recv_from(&mut buf))
                .await
                .expect("A→B packet lost")
                .unwrap();
            assert_eq!(n, packet.len());
            b.send_to(&packet, to_b).await.unwrap();
            let (n, _) = timeout(Duration::from_secs(2), a.recv_from(&mut buf))
                .await
                .expect("B→A packet lost")
                .unwrap();
            assert_eq!(n, packet.len());
        };

        // Warm-up: latching, first stats publication, lazily grown runtime tables.
        for seq in 0..200 {
            exchange(seq).await;
        }
        let before = ALLOCATIONS.load(Relaxed);
        for seq in 200..1200 {
            exchange(seq).await;
        }
        let allocated = ALLOCATIONS.load(Relaxed) - before;
        assert_eq!(allocated, 0, "allocations while relaying 2000 packets");
        assert_eq!(s.forwarded(Side::A), 1200);
        assert_eq!(s.stats(Side::B).lost, 0);
    });
}
