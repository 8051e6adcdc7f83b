//! `volley relay` on loopback: the round trip through a relay is the direct one plus the delay
//! each way (within the jitter and a generous bound for a busy machine), TCP keeps its bytes in
//! order through the byte cap and passes half-closes on, UDP keeps one flow per client address
//! and honours its flow cap and idle expiry. A correctness check, not a benchmark.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use volley::relay::{self, Delay, Limits, RelayConfig, RelayHandle};

const DELAY: Duration = Duration::from_millis(30);
const JITTER: Duration = Duration::from_millis(2);
/// Far above the added 60 ms: a loaded two-core machine, not a measurement.
const SLACK: Duration = Duration::from_millis(250);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("invariant: a valid address")
}

async fn start(to: SocketAddr, tcp: bool, udp: bool, limits: Limits) -> RelayHandle {
    let delay = Delay::new(DELAY, JITTER).expect("jitter within the delay");
    relay::spawn(RelayConfig {
        listen: loopback(),
        to,
        forward: delay,
        back: delay,
        tcp,
        udp,
        seed: 1,
        limits,
    })
    .await
    .expect("the relay listens on loopback")
}

/// A TCP server that echoes every connection's bytes until the client half-closes, then
/// writes `bye` and closes.
async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.expect("echo binds");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) => {
                            let _ = stream.write_all(b"bye").await;
                            let _ = stream.shutdown().await;
                            return;
                        }
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    addr
}

/// A UDP server that echoes every datagram to its sender.
async fn udp_echo() -> SocketAddr {
    let socket = UdpSocket::bind(loopback()).await.expect("echo binds");
    let addr = socket.local_addr().expect("bound address");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// Round trips of one line each over a TCP connection to `addr`.
async fn tcp_round_trips(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).await.expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    let (rx, mut tx) = stream.into_split();
    let mut rx = BufReader::new(rx);
    let mut rtts = Vec::with_capacity(n);
    let mut line = String::new();
    for i in 0..n {
        let t0 = Instant::now();
        tx.write_all(format!("ping {i}\n").as_bytes())
            .await
            .expect("writes");
        line.clear();
        tokio::time::timeout(Duration::from_secs(5), rx.read_line(&mut line))
            .await
            .expect("the echo comes back within 5 s")
            .expect("reads");
        assert_eq!(line, format!("ping {i}\n"));
        rtts.push(t0.elapsed());
    }
    rtts
}

/// Round trips of one datagram each from a fresh socket to `addr`.
async fn udp_round_trips(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let socket = UdpSocket::bind(loopback()).await.expect("client binds");
    socket.connect(addr).await.expect("connects");
    let mut buf = [0u8; 64];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n {
        let msg = format!("ping {i}");
        let t0 = Instant::now();
        socket.send(msg.as_bytes()).await.expect("sends");
        let got = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("the echo comes back within 5 s (nothing is lost on loopback)")
            .expect("receives");
        assert_eq!(&buf[..got], msg.as_bytes());
        rtts.push(t0.elapsed());
    }
    rtts
}

fn check_added_rtt(what: &str, direct: &[Duration], relayed: &[Duration]) {
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let floor = 2 * (DELAY - JITTER);
    let ceiling = 2 * (DELAY + JITTER) + SLACK;
    eprintln!(
        "{what}: direct median {:?}, relayed median {:?} (min {:?}, max {:?})",
        median(direct),
        median(relayed),
        relayed.iter().min(),
        relayed.iter().max()
    );
    for (i, rtt) in relayed.iter().enumerate() {
        assert!(
            *rtt >= floor,
            "{what}: round trip {i} took {rtt:?}, less than the emulated {floor:?}"
        );
    }
    assert!(
        median(relayed) <= ceiling,
        "{what}: median round trip {:?} beyond {ceiling:?}",
        median(relayed)
    );
}

#[tokio::test]
async fn a_tcp_round_trip_through_the_relay_takes_the_delay_both_ways() {
    let echo = tcp_echo().await;
    let relay = start(echo, true, false, Limits::default()).await;
    let direct = tcp_round_trips(echo, 10).await;
    let relayed = tcp_round_trips(relay.tcp_addr.expect("TCP relayed"), 20).await;
    check_added_rtt("TCP", &direct, &relayed);
}

#[tokio::test]
async fn tcp_bytes_arrive_in_order_through_a_small_queue_and_half_close_passes_on() {
    let echo = tcp_echo().await;
    let limits = Limits {
        max_queued_bytes: 32 * 1024,
        ..Limits::default()
    };
    let relay = start(echo, true, false, limits).await;
    let stream = TcpStream::connect(relay.tcp_addr.expect("TCP relayed"))
        .await
        .expect("connects");
    let (mut rx, mut tx) = stream.into_split();
    // 1 MiB: many times the queue's cap, so the relay must push back rather than buffer.
    let payload: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        tx.write_all(&sent).await.expect("writes");
        // The half-close: the echo answers `bye` only once it sees the end.
        tx.shutdown().await.expect("half-closes");
    });
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), rx.read_to_end(&mut received))
        .await
        .expect("the echo ends within 20 s")
        .expect("reads to the end");
    writer.await.expect("the writer finishes");
    assert_eq!(received.len(), payload.len() + 3, "every byte came back");
    assert!(received[..payload.len()] == payload[..], "in order");
    assert_eq!(&received[payload.len()..], b"bye");
}

#[tokio::test]
async fn a_udp_round_trip_through_the_relay_takes_the_delay_both_ways() {
    let echo = udp_echo().await;
    let relay = start(echo, false, true, Limits::default()).await;
    let direct = udp_round_trips(echo, 10).await;
    let relayed = udp_round_trips(relay.udp_addr.expect("UDP relayed"), 20).await;
    check_added_rtt("UDP", &direct, &relayed);
    // Two clients at once: each gets its own replies (a flow per client address).
    let addr = relay.udp_addr.expect("UDP relayed");
    let (a, b) = tokio::join!(udp_round_trips(addr, 5), udp_round_trips(addr, 5));
    check_added_rtt("UDP, two clients", &direct, &[a, b].concat());
}

#[tokio::test]
async fn udp_flows_are_capped_and_an_idle_flow_makes_room() {
    let echo = udp_echo().await;
    let limits = Limits {
        max_udp_flows: 1,
        udp_idle: Duration::from_millis(300),
        ..Limits::default()
    };
    let relay = start(echo, false, true, limits).await;
    let addr = relay.udp_addr.expect("UDP relayed");
    let first = udp_round_trips(addr, 1).await;
    assert_eq!(first.len(), 1);
    // A second client while the first flow lives: dropped and counted.
    let second = UdpSocket::bind(loopback()).await.expect("binds");
    second.connect(addr).await.expect("connects");
    second.send(b"early").await.expect("sends");
    let deadline = Instant::now() + Duration::from_secs(5);
    while relay
        .stats
        .udp_dropped
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the over-the-cap datagram was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Once the first flow was idle for 300 ms it is forgotten and the second gets through.
    let mut buf = [0u8; 16];
    let mut answered = false;
    for _ in 0..50 {
        second.send(b"later").await.expect("sends");
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), second.recv(&mut buf)).await
        {
            assert_eq!(&buf[..n], b"later");
            answered = true;
            break;
        }
    }
    assert!(
        answered,
        "the second client never got through: {}",
        relay.stats.describe()
    );
}

#[tokio::test]
async fn volley_relay_forwards_with_the_delay_and_refuses_a_jitter_beyond_it() {
    let echo = tcp_echo().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["relay", "--listen", "127.0.0.1:0", "--to"])
        .arg(echo.to_string())
        .args(["--delay", "30ms", "--jitter", "2ms", "--tcp", "--seed", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("volley relay starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the ready line within 10 s")
        .expect("reads")
        .expect("a line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["seed"], 5);
    assert!(ready["udp"].is_null(), "only TCP: {line}");
    let addr: SocketAddr = ready["tcp"]
        .as_str()
        .expect("a TCP address")
        .parse()
        .expect("an address");
    let direct = tcp_round_trips(echo, 5).await;
    let relayed = tcp_round_trips(addr, 5).await;
    check_added_rtt("volley relay, TCP", &direct, &relayed);
    child.start_kill().expect("stops");

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["relay", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"])
        .args(["--delay", "1ms", "--jitter", "2ms"])
        .output()
        .await
        .expect("volley relay runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(104), "{stderr}");
    assert!(
        stderr.contains("--jitter") && stderr.contains("exceeds"),
        "{stderr}"
    );
}
