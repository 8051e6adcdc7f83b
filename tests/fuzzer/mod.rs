//! A fuzzer that runs on stable Rust: seeds, a deterministic mutator, and a runner that feeds each
//! input to one target on a worker thread with a time and a memory bound.
//!
//! - **Inputs.** Each target brings seeds built in code (real encodings, real plans, pathological
//!   shapes); files under `tests/fuzz-corpus/<target>/` are added when the directory exists. Input
//!   `i` of a run is a stack of 1–8 mutations of one seed (bit flips, interesting bytes and
//!   integers, inserted, deleted, duplicated and swapped ranges, splices with another seed,
//!   truncation, dictionary tokens), drawn from a PRNG seeded with `(seed, i)` alone, so any one
//!   input is reproduced without the ones before it.
//! - **Bounds.** An input must finish within [`TIME_LIMIT`] (measured twice before it counts, a
//!   busy machine being no bug) and allocate at most [`MEMORY_LIMIT`] above what the worker
//!   thread held before it (a counting allocator, per thread); one that does not return within
//!   [`HANG_LIMIT`] is a hang. A panic is caught and reported with its input.
//! - **Knobs.** `VOLLEY_FUZZ_ITERS=N` runs N inputs per target instead of the small default,
//!   `VOLLEY_FUZZ_SEED=S` another sequence, `VOLLEY_FUZZ_REPLAY=FILE` only that input (the file a
//!   failure wrote). A failure names the target, seed and iteration, prints the input as hex and
//!   writes it under the test binary's temporary directory.

// Each target uses part of the mutator.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One input's time bound (debug build, busy machine): quadratic parsing shows as seconds.
pub const TIME_LIMIT: Duration = Duration::from_secs(1);
/// Past this an input counts as a hang and the run stops.
pub const HANG_LIMIT: Duration = Duration::from_secs(20);
/// What one input may allocate on top of what the worker held before it.
pub const MEMORY_LIMIT: usize = 64 << 20;
/// The worker thread's stack: what a tokio worker or blocking thread of an agent has.
const WORKER_STACK: usize = 2 << 20;

// === counting allocator ===

/// The system allocator, counting the bytes each thread holds and its peak, so one input's
/// allocations are measured on the thread that decodes it (tests run in parallel).
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the allocator also runs while thread locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is passed to `System` unchanged; the counters are plain thread locals
// without destructors, touched only through `try_with`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Runs `f`, returning what it returned and the most it held above the bytes held before.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, usize::try_from(peak - base).unwrap_or(0))
}

// === PRNG ===

/// splitmix64: the seed of input `i`, independent of the inputs before it.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

// === mutator ===

/// Bytes that make parsers take another branch.
const INTERESTING_BYTES: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xff, b'\n', b'\r', b'\t', b' ', b'"', b'\'', b'\\', b'{', b'}', b'[',
    b']', b':', b',', b'-', b'&', b'*', b'!', b'#', b'%', b'$', b'<', b'|', b'>', b'0', b'9', b'.',
];

/// Integers at the edges: lengths, counts and offsets.
const INTERESTING_INTS: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
];

/// The mutation engine of one target.
pub struct Mutator<'a> {
    seeds: &'a [Vec<u8>],
    tokens: &'a [&'a [u8]],
    max_len: usize,
}

impl<'a> Mutator<'a> {
    pub fn new(seeds: &'a [Vec<u8>], tokens: &'a [&'a [u8]], max_len: usize) -> Self {
        assert!(!seeds.is_empty(), "a target needs at least one seed");
        Mutator {
            seeds,
            tokens,
            max_len,
        }
    }

    /// Input number `iteration` of the run seeded with `seed`.
    pub fn input(&self, seed: u64, iteration: u64) -> Vec<u8> {
        // The seeds themselves come first, unchanged.
        if let Some(seed) = usize::try_from(iteration)
            .ok()
            .and_then(|i| self.seeds.get(i))
        {
            return seed.clone();
        }
        let mut rng = fastrand::Rng::with_seed(mix(seed ^ mix(iteration)));
        let mut data = self.seeds[rng.usize(..self.seeds.len())].clone();
        // Half the inputs are one step from a seed, so they get past the first checks.
        let rounds = if rng.bool() { 1 } else { 1 + rng.usize(..8) };
        for _ in 0..rounds {
            self.mutate(&mut rng, &mut data);
        }
        data.truncate(self.max_len);
        data
    }

    fn mutate(&self, rng: &mut fastrand::Rng, data: &mut Vec<u8>) {
        let len = data.len();
        let at = |rng: &mut fastrand::Rng| rng.usize(..=len);
        match rng.u8(..12) {
            // Flip a bit.
            0 if len > 0 => {
                let i = rng.usize(..len);
                data[i] ^= 1 << rng.u8(..8);
            }
            // An interesting byte.
            1 if len > 0 => {
                let i = rng.usize(..len);
                data[i] = INTERESTING_BYTES[rng.usize(..INTERESTING_BYTES.len())];
            }
            // An interesting integer, big- or little-endian, 1 to 8 bytes wide.
            2 if len > 0 => {
                let v = INTERESTING_INTS[rng.usize(..INTERESTING_INTS.len())];
                let v = if rng.bool() {
                    v.wrapping_add(rng.u64(..3)).wrapping_sub(1)
                } else {
                    v
                };
                let width = [1usize, 2, 4, 8][rng.usize(..4)].min(len);
                let i = rng.usize(..=len - width);
                let bytes = if rng.bool() {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                let src = if rng.bool() {
                    &bytes[8 - width..]
                } else {
                    &bytes[..width]
                };
                data[i..i + width].copy_from_slice(src);
            }
            // Random bytes inserted.
            3 => {
                let i = at(rng);
                let n = 1 + rng.usize(..16);
                let junk: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
                data.splice(i..i, junk);
            }
            // A range deleted.
            4 if len > 0 => {
                let i = rng.usize(..len);
                let n = 1 + rng.usize(..(len - i).min(64));
                data.drain(i..i + n);
            }
            // A range repeated: nesting, long runs, many keys.
            5 if len > 0 => {
                let i = rng.usize(..len);
                let n = 1 + rng.usize(..(len - i).min(32));
                let most = if rng.u8(..8) == 0 { 2000 } else { 8 };
                let times = 1 + rng.usize(..most);
                let chunk = data[i..i + n].to_vec();
                let room = self.max_len.saturating_sub(len) / n.max(1);
                let repeated: Vec<u8> = chunk.repeat(times.min(room));
                data.splice(i..i, repeated);
            }
            // Cut short.
            6 if len > 0 => data.truncate(rng.usize(..len)),
            // A part of another seed spliced in.
            7 => {
                let other = &self.seeds[rng.usize(..self.seeds.len())];
                if !other.is_empty() {
                    let from = rng.usize(..other.len());
                    let to = from + rng.usize(..=(other.len() - from));
                    let i = at(rng);
                    let cut = i + rng.usize(..=(len - i).min(64));
                    data.splice(i..cut, other[from..to].iter().copied());
                }
            }
            // A dictionary token.
            8 | 9 if !self.tokens.is_empty() => {
                let token = self.tokens[rng.usize(..self.tokens.len())];
                let i = at(rng);
                if rng.bool() || len == 0 {
                    data.splice(i..i, token.iter().copied());
                } else {
                    let end = (i + token.len()).min(len);
                    data.splice(i..end, token.iter().copied());
                }
            }
            // Two ranges swapped.
            10 if len > 2 => {
                let a = rng.usize(..len / 2);
                let b = len / 2 + rng.usize(..len - len / 2);
                let n = 1 + rng.usize(..(b - a).min(len - b).clamp(1, 32));
                if a + n <= b && b + n <= len {
                    for k in 0..n {
                        data.swap(a + k, b + k);
                    }
                }
            }
            // A byte removed or doubled.
            _ if len > 0 => {
                let i = rng.usize(..len);
                if rng.bool() {
                    data.remove(i);
                } else {
                    data.insert(i, data[i]);
                }
            }
            _ => data.push(rng.u8(..)),
        }
    }
}

// === runner ===

/// What a target says of one input: whether the decoder accepted it (counted, to show how deep
/// the inputs reach), or `Err` when a property of the decoder failed (a panic is caught
/// separately).
pub type Check = fn(&[u8]) -> Result<bool, String>;

/// One target's run.
pub struct Target {
    pub name: &'static str,
    /// Inputs per run without `VOLLEY_FUZZ_ITERS`.
    pub default_iters: u64,
    /// Longest input the mutator makes (seeds may be longer).
    pub max_len: usize,
    pub seeds: Vec<Vec<u8>>,
    pub tokens: &'static [&'static [u8]],
    pub check: Check,
}

/// How one input went.
enum Outcome {
    Done {
        result: Result<bool, String>,
        took: Duration,
        peak: usize,
    },
    Panicked(String),
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

fn hex(bytes: &[u8]) -> String {
    const SHOWN: usize = 4096;
    let mut out: String = bytes
        .iter()
        .take(SHOWN)
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes.len() > SHOWN {
        out.push_str(&format!("… ({} bytes in all)", bytes.len()));
    }
    out
}

/// Files under `tests/fuzz-corpus/<target>/`, if any.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Runs `target` and panics with a reproducible report on the first failure.
pub fn run(mut target: Target) {
    let replay = std::env::var_os("VOLLEY_FUZZ_REPLAY").map(PathBuf::from);
    let seed = env_u64("VOLLEY_FUZZ_SEED").unwrap_or(0x766f_6c6c_6579);
    let iters = env_u64("VOLLEY_FUZZ_ITERS").unwrap_or(target.default_iters);
    target.seeds.extend(corpus(target.name));
    let check = target.check;

    let (input_tx, input_rx) = mpsc::channel::<Vec<u8>>();
    let (outcome_tx, outcome_rx) = mpsc::channel::<Outcome>();
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(WORKER_STACK)
        .spawn(move || {
            for input in input_rx {
                let start = Instant::now();
                let outcome = match catch_unwind(AssertUnwindSafe(|| measured(|| check(&input)))) {
                    Ok((result, peak)) => Outcome::Done {
                        result,
                        took: start.elapsed(),
                        peak,
                    },
                    Err(panic) => Outcome::Panicked(
                        panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "a panic without a message".to_owned()),
                    ),
                };
                if outcome_tx.send(outcome).is_err() {
                    return;
                }
            }
        })
        .expect("the fuzz worker starts");

    let feed = |input: &[u8]| -> Result<Outcome, String> {
        input_tx
            .send(input.to_vec())
            .map_err(|_| "the worker is gone".to_owned())?;
        outcome_rx
            .recv_timeout(HANG_LIMIT)
            .map_err(|_| format!("no answer within {HANG_LIMIT:?} (a hang)"))
    };
    let fail = |iteration: Option<u64>, input: &[u8], why: String| -> ! {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        let file = dir.join(format!(
            "{}-{seed:x}-{}.bin",
            target.name,
            iteration.map_or("replay".to_owned(), |i| i.to_string())
        ));
        let saved = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&file, input))
            .map_or_else(
                |e| format!("(not saved: {e})"),
                |()| file.display().to_string(),
            );
        panic!(
            "fuzz target {} failed: {why}\n  seed: {seed:#x} (VOLLEY_FUZZ_SEED), iteration: {}\n  \
             input ({} bytes), saved to {saved}:\n  {}\n  replay: VOLLEY_FUZZ_REPLAY={saved} \
             cargo test --test fuzz fuzz_{}",
            target.name,
            iteration.map_or("replayed file".to_owned(), |i| i.to_string()),
            input.len(),
            hex(input),
            target.name,
        )
    };
    let accepted = std::cell::Cell::new(0u64);
    let slowest = std::cell::Cell::new((Duration::ZERO, None::<u64>));
    let judge = |iteration: Option<u64>, input: &[u8]| {
        let mut slow = 0;
        loop {
            match feed(input) {
                Err(why) => fail(iteration, input, why),
                Ok(Outcome::Panicked(message)) => {
                    fail(iteration, input, format!("panic: {message}"))
                }
                Ok(Outcome::Done { result, took, peak }) => {
                    match result {
                        Err(why) => fail(iteration, input, why),
                        Ok(true) if slow == 0 => accepted.set(accepted.get() + 1),
                        Ok(_) => {}
                    }
                    if peak > MEMORY_LIMIT {
                        fail(
                            iteration,
                            input,
                            format!("allocated {peak} bytes at once, limit {MEMORY_LIMIT}"),
                        );
                    }
                    if took > slowest.get().0 {
                        slowest.set((took, iteration));
                    }
                    if took <= TIME_LIMIT {
                        return;
                    }
                    slow += 1;
                    if slow == 2 {
                        fail(
                            iteration,
                            input,
                            format!("took {took:?} twice, limit {TIME_LIMIT:?}"),
                        );
                    }
                }
            }
        }
    };

    let started = Instant::now();
    if let Some(path) = replay {
        let input = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read VOLLEY_FUZZ_REPLAY={}: {e}", path.display()));
        judge(None, &input);
        eprintln!(
            "fuzz {}: replayed {} without failure",
            target.name,
            path.display()
        );
    } else {
        let mutator = Mutator::new(&target.seeds, target.tokens, target.max_len);
        for iteration in 0..iters {
            judge(Some(iteration), &mutator.input(seed, iteration));
        }
        let (took, at) = slowest.get();
        eprintln!(
            "fuzz {}: {iters} inputs ({} accepted), seed {seed:#x}, {:?}; slowest {took:?} \
             (iteration {})",
            target.name,
            accepted.get(),
            started.elapsed(),
            at.map_or("-".to_owned(), |i| i.to_string()),
        );
    }
    drop(input_tx);
    let _ = worker.join();
}
