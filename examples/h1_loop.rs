//! Measures what the HTTP/1.1 client costs per request: CPU time of the
//! client thread (user + system, from `/proc/thread-self/schedstat`) and
//! heap allocations, with many VUs on a single-threaded runtime.
//!
//! ```text
//! cargo build --release --example h1_loop
//! taskset -c 1 target/release/examples/h1_loop serve 127.0.0.1:8099 &
//! taskset -c 0 target/release/examples/h1_loop client 127.0.0.1:8099 50 4000
//! ```
//!
//! `serve` is a minimal keep-alive server (fixed 2-byte body); `client`
//! runs VUS tasks, each with its own `VuClient`, doing REQUESTS sequential
//! GETs after a warm-up round.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use volley::engine::http::{HttpClientConfig, OutRequest, Response, VuClient};
use volley::plan::HttpOptions;

/// Counts allocations so the example can report them per request.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: h1_loop serve ADDR | h1_loop client ADDR VUS REQUESTS_PER_VU";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let addr = args.get(2).ok_or_else(|| anyhow::anyhow!(usage))?;
            rt.block_on(serve(addr))
        }
        Some("client") => {
            let addr = args.get(2).ok_or_else(|| anyhow::anyhow!(usage))?;
            let vus: usize = args.get(3).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
            let per_vu: usize = args.get(4).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
            rt.block_on(client(addr, vus, per_vu))
        }
        _ => Err(anyhow::anyhow!(usage)),
    }
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("serving on {}", listener.local_addr()?);
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut out = Vec::with_capacity(16 * 1024);
            let mut pending = 0usize;
            loop {
                let n = match stream.read(&mut buf[pending..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let filled = pending + n;
                // Bodiless GETs: every blank line ends one request.
                let mut start = 0;
                while let Some(end) = find_head_end(&buf[start..filled]) {
                    out.extend_from_slice(RESPONSE);
                    start += end;
                }
                buf.copy_within(start..filled, 0);
                pending = filled - start;
                if !out.is_empty() {
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
        });
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow::anyhow!("empty schedstat"))?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

async fn client(addr: &str, vus: usize, per_vu: usize) -> anyhow::Result<()> {
    let opts = HttpOptions {
        discard_response_bodies: true,
        user_agent: "volley/0.1".into(),
        timeout: Duration::from_secs(10),
        ..HttpOptions::default()
    };
    let config = Arc::new(HttpClientConfig::new(&opts)?);
    let url: Arc<str> = format!("http://{addr}/").into();
    let mut clients: Vec<(VuClient, Response)> = (0..vus)
        .map(|_| (VuClient::new(Arc::clone(&config)), Response::default()))
        .collect();
    // Warm-up: connections, buffers and the runtime's own structures.
    clients = round(clients, &url, 200).await?;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let cpu = thread_cpu()?;
    let wall = Instant::now();
    round(clients, &url, per_vu).await?;
    let wall = wall.elapsed();
    let cpu = thread_cpu()? - cpu;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let total = (vus * per_vu) as f64;
    println!(
        "{vus} VUs x {per_vu} GETs: {:.0} req/s, client CPU {:.2} us/request ({:.0}% of one core), {:.3} allocations/request",
        total / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / total,
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        allocations as f64 / total,
    );
    Ok(())
}

async fn round(
    clients: Vec<(VuClient, Response)>,
    url: &Arc<str>,
    requests: usize,
) -> anyhow::Result<Vec<(VuClient, Response)>> {
    let mut tasks = Vec::with_capacity(clients.len());
    for (mut client, mut out) in clients {
        let url = Arc::clone(url);
        tasks.push(tokio::spawn(async move {
            let req = OutRequest::get(&url, Duration::from_secs(10));
            let mut failures = 0u64;
            for _ in 0..requests {
                client.send(&req, &mut out).await;
                if out.error.is_some() {
                    failures += 1;
                }
            }
            (client, out, failures)
        }));
    }
    let mut back = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for task in tasks {
        let (client, out, failed) = task.await?;
        failures += failed;
        back.push((client, out));
    }
    if failures > 0 {
        anyhow::bail!("{failures} requests failed");
    }
    Ok(back)
}
