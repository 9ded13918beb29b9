//! The window engine alone (no plugins, native count): events/s for 1M
//! events over 100k keys through fixed and session windows, and the memory
//! one open (key, window) costs.
//!
//!   cargo bench -p runnel --bench window_engine            # full: 1M events
//!   cargo bench -p runnel --bench window_engine -- --smoke # small, for CI

use runnel::accumulate::{Accumulators, EventBatch, NativeCount};
use runnel::window::{EngineConfig, Trigger, TriggerSpec, WindowEngine, WindowFn};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn engine(window_fn: WindowFn) -> WindowEngine {
    WindowEngine::new(EngineConfig {
        window_fn,
        trigger: Trigger::compile(&TriggerSpec::Default).unwrap(),
        accumulating: false,
        allowed_lateness: 0,
    })
}

/// A deterministic pseudo-random stream: `n` events over `keys` keys,
/// event times over `span_us`, arriving in time order with jitter.
fn stream(n: usize, keys: usize, span_us: i64) -> (Vec<String>, Vec<(u32, i64)>) {
    let names: Vec<String> = (0..keys).map(|k| format!("{:032X}", (k as u128).wrapping_mul(0x9E3779B97F4A7C15))).collect();
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let events = (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % keys as u64) as u32;
            let ts = 1_533_279_600_000_000 + (i as i64 * span_us / n as i64) - (x % 3_000_000) as i64;
            (key, ts)
        })
        .collect();
    (names, events)
}

/// How the watermark moves in a throughput run.
#[derive(Clone, Copy)]
enum Watermark {
    /// 5 s behind the newest event, every fourth batch (a live stream).
    Follows,
    /// Held until the input ends (a file): every window stays open until
    /// then, so a key can hold thousands.
    AtTheEnd,
}

fn throughput(label: &str, window_fn: WindowFn, n: usize, keys: usize, span_us: i64, watermark: Watermark) {
    let (names, events) = stream(n, keys, span_us);
    let mut e = engine(window_fn);
    let mut count = NativeCount::default();
    let mut empty = EventBatch::default();
    let started = Instant::now();
    let mut panes = 0usize;
    for (i, chunk) in events.chunks(256).enumerate() {
        for &(k, ts) in chunk {
            e.process(&names[k as usize], ts, 0);
        }
        if matches!(watermark, Watermark::Follows) && i % 4 == 0 {
            e.advance_watermark(chunk.last().unwrap().1 - 5_000_000);
        }
        let (ops, mut p) = e.drain();
        count.apply(&ops, &mut empty, &mut p).unwrap();
        panes += p.len();
    }
    e.advance_watermark(i64::MAX);
    let (ops, mut p) = e.drain();
    count.apply(&ops, &mut empty, &mut p).unwrap();
    panes += p.len();
    let secs = started.elapsed().as_secs_f64();
    println!("{label}: {n} events over {keys} keys in {secs:.3} s = {:.0} events/s ({panes} panes)", n as f64 / secs);
}

fn memory(windows_per_key: usize, keys: usize) {
    let (names, _) = stream(1, keys, 1);
    let key_bytes: usize = names.iter().map(|k| k.len()).sum();
    let before = LIVE.load(Ordering::Relaxed);
    let mut e = engine(WindowFn::Fixed { size: 60_000_000 });
    let mut count = NativeCount::default();
    let mut empty = EventBatch::default();
    for w in 0..windows_per_key {
        for name in &names {
            e.process(name, w as i64 * 60_000_000, 0);
        }
        let (ops, mut p) = e.drain();
        count.apply(&ops, &mut empty, &mut p).unwrap();
    }
    let open = e.stats().open_windows as usize;
    let after = LIVE.load(Ordering::Relaxed);
    let total = (after - before) as usize;
    println!(
        "memory: {open} open (key, window) counts over {keys} keys: {total} bytes = {:.0} bytes per open window \
         ({:.0} beyond the key text itself; native count accumulators included)",
        total as f64 / open as f64,
        (total - key_bytes) as f64 / open as f64
    );
    drop(e);
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (n, keys) = if smoke { (50_000, 5_000) } else { (1_000_000, 100_000) };
    let (hour, day) = (3_600_000_000, 86_400_000_000);
    let fixed = WindowFn::Fixed { size: 60_000_000 };
    throughput("fixed 60 s windows", fixed, n, keys, hour, Watermark::Follows);
    throughput("session windows, 30 s gap", WindowFn::Session { gap: 30_000_000 }, n, keys, hour, Watermark::Follows);
    throughput(
        "sliding 60 s / 15 s windows",
        WindowFn::Sliding { size: 60_000_000, period: 15_000_000 },
        n,
        keys,
        hour,
        Watermark::Follows,
    );
    // A file: a day of events over few keys, every window open until the end
    // (about 1,100 per key).
    throughput("fixed 60 s windows, a day in a file (watermark at the end)", fixed, n, keys / 200, day, Watermark::AtTheEnd);
    let (per_key, keys) = if smoke { (10, 1_000) } else { (10, 100_000) };
    memory(per_key, keys);
}
