//! What authenticating gossip costs per datagram: sealing and opening
//! (HMAC-SHA256) a small and a full-size payload, pure CPU; and one message
//! from socket to socket over loopback UDP, chitchat's plain `UdpSocket`
//! against Volley's authenticating socket (its two loopback codec hops, the
//! seal and the open included). The message is chitchat's smallest
//! (`BadCluster`), so the fixed cost per datagram shows.
//!
//! `cargo bench --bench gossip_auth`

use std::hint::black_box;
use std::net::SocketAddr;

use chitchat::transport::{Socket, Transport, UdpSocket};
use chitchat::{ChitchatEnvelope, ChitchatMessage, ProtocolVersion};
use criterion::{Criterion, criterion_group, criterion_main};
use volley::fleet::membership::{GossipKey, bind_udp};

const NOW_MS: u64 = 1_800_000_000_000;

fn envelope() -> ChitchatEnvelope {
    ChitchatEnvelope {
        version: ProtocolVersion::V1,
        message: ChitchatMessage::BadCluster,
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("invariant: a valid address")
}

fn bench(c: &mut Criterion) {
    let key = GossipKey::derive(b"a benchmark fleet secret").expect("invariant: long enough");
    let mut group = c.benchmark_group("gossip_auth");
    for (name, len) in [("seal+open 200 B", 200usize), ("seal+open 64 KiB", 65_000)] {
        let payload = vec![0x5a; len];
        let mut datagram = Vec::with_capacity(len + 64);
        group.bench_function(name, |b| {
            b.iter(|| {
                datagram.clear();
                key.seal(NOW_MS, black_box(&payload), &mut datagram);
                black_box(key.open(NOW_MS, &datagram).map(<[u8]>::len))
            });
        });
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("invariant: a runtime builds");

    let (mut plain_a, mut plain_b, plain_b_addr) = runtime.block_on(async {
        let a = UdpSocket::open(loopback()).await.expect("bind");
        let b = UdpSocket::open(loopback()).await.expect("bind");
        let b_addr = b.local_addr().expect("addr");
        (a, b, b_addr)
    });
    group.bench_function("one message over loopback: chitchat UdpSocket", |b| {
        b.iter(|| {
            runtime.block_on(async {
                plain_a.send(plain_b_addr, envelope()).await.expect("send");
                black_box(plain_b.recv().await.expect("recv"))
            })
        });
    });

    let (mut auth_a, mut auth_b, auth_b_addr) = runtime.block_on(async {
        let (ta, a_addr) = bind_udp(loopback(), key.clone()).await.expect("bind");
        let (tb, b_addr) = bind_udp(loopback(), key.clone()).await.expect("bind");
        let a = ta.open(a_addr).await.expect("open");
        let b = tb.open(b_addr).await.expect("open");
        (a, b, b_addr)
    });
    group.bench_function("one message over loopback: authenticating socket", |b| {
        b.iter(|| {
            runtime.block_on(async {
                auth_a.send(auth_b_addr, envelope()).await.expect("send");
                black_box(auth_b.recv().await.expect("recv"))
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
