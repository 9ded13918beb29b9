//! Hot reload: what a swap costs.
//!
//! - cold compile of a plugin (Cranelift), and a load of the same plugin
//!   from the on-disk cache of precompiled artifacts;
//! - the full load off the event path (compile or cache, instantiate,
//!   init, smoke call);
//! - the stall a swap puts on the event path (p50/p99), measured inside the
//!   pipeline while the workshop pipeline (add-weekday → count-events) runs
//!   on Flood It events and both plugins are swapped every few batches;
//! - throughput during that reload storm against the same run without
//!   reloads, and a check that no event was lost or counted twice.
//!
//!   cargo bench -p runnel --bench reload            # full: 400k events
//!   cargo bench -p runnel --bench reload -- --smoke # small, for CI

use runnel::config::PipelineConfig;
use runnel::pipeline::{Counters, Overrides, Pipeline};
use runnel::plugin::bundled;
use runnel::plugin::contract::Kind;
use runnel::plugin::reload::{load_transform, ReloadHandle};
use runnel::plugin::runtime::{CompiledFrom, Limits, PluginRuntime};
use runnel::plugin::transform::FieldsSpec;
use runnel::plugin::{with_build_tag, PluginSource};
use runnel::source::file::FileSource;
use runnel::source::{Source, SourceBatch};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Swaps both plugins every `every` batches, alternating between two
/// builds of each, waiting until the loader has them ready.
struct Storm {
    inner: FileSource,
    every: usize,
    batch: usize,
    handle: Arc<Mutex<Option<ReloadHandle>>>,
    versions: Vec<(Kind, PluginSource)>,
}

impl Source for Storm {
    fn next_batch(&mut self, max: usize) -> anyhow::Result<Option<SourceBatch>> {
        self.batch += 1;
        if self.every > 0 && self.batch.is_multiple_of(self.every) {
            let i = (self.batch / self.every) % self.versions.len();
            let (kind, plugin) = self.versions[i].clone();
            let handle = self.handle.lock().unwrap().clone().expect("set before the run");
            handle.request(kind, plugin);
            handle.wait_loaded(Duration::from_secs(60));
        }
        self.inner.next_batch(max)
    }
}

/// The bundled events `days` times over, a day apart, as an NDJSON file.
fn input(dir: &std::path::Path, days: i64) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(root.join("examples/data/floodit-events.ndjson.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut out = String::new();
    for day in 0..days {
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = v["event_timestamp"].as_i64().unwrap();
            out.push_str(&line.replacen(
                &format!("\"event_timestamp\":{ts}"),
                &format!("\"event_timestamp\":{}", ts + day * 86_400_000_000),
                1,
            ));
            out.push('\n');
        }
    }
    let path = dir.join("input.ndjson");
    std::fs::write(&path, out).unwrap();
    path
}

fn run(dir: &std::path::Path, input: &std::path::Path, every: usize) -> (Counters, String) {
    let panes = dir.join(format!("panes-{every}.ndjson"));
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n[transform]\nplugin = \"add-weekday\"\n\
         [watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 0\n\
         [sink]\ntype = \"ndjson\"\npath = \"{}\"\n[dead_letters]\npath = \"{}\"\n",
        input.display(),
        panes.display(),
        dir.join("dead.ndjson").display()
    );
    let cfg = PipelineConfig::parse(&text).unwrap();
    let weekday = bundled::find("add-weekday").unwrap();
    let count = bundled::find("count-events").unwrap();
    let versions = vec![
        (Kind::Transform, PluginSource::from_bytes("add-weekday-b.wasm", with_build_tag(weekday, "b"))),
        (Kind::Aggregate, PluginSource::from_bytes("count-events-b.wasm", with_build_tag(count, "b"))),
        (Kind::Transform, PluginSource::from_bytes("add-weekday-a.wasm", with_build_tag(weekday, "a"))),
        (Kind::Aggregate, PluginSource::from_bytes("count-events-a.wasm", with_build_tag(count, "a"))),
    ];
    // Warm the disk cache, as a reload of a plugin seen before finds it.
    let warm = PluginRuntime::new(Limits::default()).unwrap();
    for (_, v) in &versions {
        warm.compile(v).unwrap();
    }
    let handle = Arc::new(Mutex::new(None));
    let storm = Storm { inner: FileSource::open(input).unwrap(), every, batch: 0, handle: handle.clone(), versions };
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(storm)), ..Default::default() }).unwrap();
    *handle.lock().unwrap() = Some(pipeline.reload_handle());
    let counters = pipeline.run().unwrap();
    // The panes, without the plugin versions, to compare the two runs.
    let mut rows: Vec<String> = std::fs::read_to_string(&panes)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("plugins");
            v.to_string()
        })
        .collect();
    rows.sort();
    (counters, rows.join("\n"))
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (days, tries) = if smoke { (1, 2) } else { (8, 5) };
    let dir = tempfile::tempdir().unwrap();
    let weekday = PluginSource::from_bytes("add-weekday.wasm", bundled::find("add-weekday").unwrap());

    // Compile cold, then load from the disk cache, each in a fresh runtime.
    let cache = dir.path().join("cache");
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    for i in 0..tries {
        let fresh = PluginSource::from_bytes("w.wasm", with_build_tag(&weekday.bytes, &format!("cold{i}")));
        let rt = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
        let t = Instant::now();
        assert_eq!(rt.compile_traced(&fresh).unwrap().1, CompiledFrom::Compiled);
        cold.push(ms(t.elapsed()));
        let rt = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
        let t = Instant::now();
        assert_eq!(rt.compile_traced(&fresh).unwrap().1, CompiledFrom::Disk);
        cached.push(ms(t.elapsed()));
    }
    // The whole load a reload does off the event path, from the disk cache.
    let rt = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
    let fields =
        FieldsSpec { key_pointer: Some("/user_pseudo_id".into()), time_pointer: Some("/event_timestamp".into()), ..Default::default() };
    let mut full = Vec::new();
    for _ in 0..tries * 4 {
        let rt2 = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
        let t = Instant::now();
        load_transform(&rt2, weekday.clone(), "", &fields).unwrap();
        full.push(ms(t.elapsed()));
    }
    drop(rt);

    let input = input(dir.path(), days);
    let (calm, calm_panes) = run(dir.path(), &input, 0);
    let (storm, storm_panes) = run(dir.path(), &input, 10);
    assert_eq!(calm_panes, storm_panes, "the reload storm changed the results");
    let stalls: Vec<f64> = storm.reload_stalls.iter().map(|d| d.as_secs_f64() * 1e6).collect();

    println!("| hot reload ({} events, add-weekday + count-events) | value |", calm.events_in);
    println!("|---|---|");
    println!("| cold compile of add-weekday (Cranelift), median of {tries} | {:.1} ms |", median(cold));
    println!("| load from the disk cache, median of {tries} | {:.3} ms |", median(cached));
    println!("| whole load off the event path (cache, instantiate, init, smoke call), median | {:.3} ms |", median(full));
    println!("| swaps during the storm (both plugins, every 10 batches) | {} |", stalls.len());
    println!("| stall on the event path per swap, p50 | {:.1} µs |", percentile(stalls.clone(), 0.5));
    println!("| stall on the event path per swap, p99 | {:.1} µs |", percentile(stalls.clone(), 0.99));
    println!("| stall on the event path per swap, max | {:.1} µs |", percentile(stalls, 1.0));
    println!("| throughput without reloads | {:.0} events/s |", calm.events_per_second());
    println!("| throughput during the reload storm | {:.0} events/s |", storm.events_per_second());
    println!("| panes equal to the run without reloads (no event lost or repeated) | yes ({} panes) |", storm.panes);
}
