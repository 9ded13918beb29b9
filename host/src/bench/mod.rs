//! `runnel bench`: runnel against its own limit and against its peers, side
//! by side in one run (the machines are shared and noisy: ratios taken in
//! the same run are what is compared, absolute numbers drift).
//!
//! - [`input`]: the bundled events looped to millions, shifted in time;
//! - end to end: file → add-weekday (WASM) → fixed 60 s windows per user →
//!   count-events (WASM) → null sink, on this thread, against
//!   [`native`] twins of both plugins in the same pipeline, and against the
//!   limit of the design (`runnel-limit`: the same work as one plain Rust
//!   loop, its windows checked equal to runnel's);
//! - [`calls`]: plugin call cost by batch size;
//! - [`peers`]: Beam and Flink on the same file, with their windows checked;
//! - [`report`]: the markdown tables, one-line summaries and an SVG plot.
//!
//! Hot reload, window state and Pub/Sub have their own `cargo bench`
//! targets (host/benches); `scripts/bench.sh` runs everything and writes
//! BENCHMARKS.md.

pub mod calls;
pub mod input;
pub mod native;
pub mod peers;
pub mod report;

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::PipelineConfig;
use crate::pipeline::{Counters, Overrides, Pipeline};
use crate::sink::{Provenance, RejectedRow, Sink};
use crate::window::{Pane, Value};

/// What to run, and how big.
pub struct BenchOptions {
    /// Small sizes, one round, targets not judged (for CI).
    pub smoke: bool,
    /// Events for the end-to-end runs (default: 2,000,000; smoke 20,000).
    pub events: Option<usize>,
    /// Rounds of the end-to-end pair (WASM, native), interleaved.
    pub rounds: Option<usize>,
    /// Also run Beam and Flink (their virtualenvs must exist).
    pub peers: bool,
    /// With `peers`: the Python builds of the two plugins, to run on the
    /// peers' input too (or why they could not be built).
    pub python: Option<std::result::Result<PythonPlugins, String>>,
    /// The repository (for scripts/peers and the virtualenvs).
    pub repo: PathBuf,
    /// Where inputs and scratch files go.
    pub work: PathBuf,
}

/// The Python twins of the benchmark's plugins (guest-transforms/python/
/// examples), built by `runnel build`.
pub struct PythonPlugins {
    pub transform: PathBuf,
    pub aggregate: PathBuf,
}

/// The plugins of one run.
#[derive(Clone, Copy)]
pub enum Plugins<'a> {
    /// The bundled WASM guests, add-weekday and count-events.
    Wasm,
    /// Their native twins (no sandbox).
    Native,
    /// Their Python twins.
    Python(&'a PythonPlugins),
}

/// Everything one run measured.
#[derive(Debug, serde::Serialize)]
pub struct Results {
    pub smoke: bool,
    pub events: usize,
    /// events/s of each round.
    pub wasm: Vec<f64>,
    pub native: Vec<f64>,
    /// The plain program's events/s in each round (see `runnel_limit`).
    pub limit: Vec<f64>,
    pub calls: Vec<calls::CallCost>,
    /// Where an event's time went, in the median round of each case.
    pub wasm_breakdown: Option<Breakdown>,
    pub native_breakdown: Option<Breakdown>,
    /// runnel (WASM) on the peers' input, and each peer there.
    pub runnel_on_peer_input: Option<f64>,
    /// runnel with the Python plugins on the peers' input (their windows
    /// checked like a peer's).
    pub python_on_peer_input: Option<peers::PeerRun>,
    pub peers: Vec<peers::PeerRun>,
    pub peer_errors: Vec<String>,
}

pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

impl Results {
    pub fn wasm_rate(&self) -> f64 {
        median(&self.wasm)
    }
    pub fn native_rate(&self) -> f64 {
        median(&self.native)
    }
    pub fn limit_rate(&self) -> f64 {
        median(&self.limit)
    }
}

/// Collects `user,start_us,count` rows, to compare windows with the peers.
struct Rows(Arc<Mutex<Vec<String>>>);

impl Sink for Rows {
    fn write(&mut self, panes: &[Pane], _: &Provenance) -> Result<Vec<RejectedRow>> {
        let mut rows = self.0.lock().expect("not poisoned");
        for p in panes {
            let count = match &p.value {
                Some(Value::Int(n)) => n.to_string(),
                other => format!("{other:?}"),
            };
            rows.push(format!("{},{},{count}", p.key, p.window.start));
        }
        Ok(Vec::new())
    }
}

fn config(input: &Path, work: &Path, plugins: Plugins) -> Result<PipelineConfig> {
    let (transform, aggregate) = match plugins {
        Plugins::Python(p) => (p.transform.display().to_string(), p.aggregate.display().to_string()),
        Plugins::Wasm | Plugins::Native => ("add-weekday".to_string(), "count-events".to_string()),
    };
    let text = format!(
        "[source]\ntype = \"file\"\npath = {input:?}\n\
         [event]\nkey = \"/user_pseudo_id\"\ntime = \"/event_timestamp\"\ntime_format = \"us\"\n\
         [transform]\nplugin = {transform:?}\n\
         [windowing]\nwindow = {{ type = \"fixed\", size_s = 60 }}\n\
         [aggregate]\nplugin = {aggregate:?}\n\
         [sink]\ntype = \"null\"\n\
         [dead_letters]\npath = {:?}\n",
        work.join("dead-letters.ndjson")
    );
    PipelineConfig::parse(&text).context("the benchmark's pipeline")
}

/// One end-to-end run; `rows` collects the windows instead of the null sink.
fn run_pipeline(input: &Path, work: &Path, plugins: Plugins, rows: Option<Arc<Mutex<Vec<String>>>>) -> Result<Counters> {
    let cfg = config(input, work, plugins)?;
    let overrides = Overrides {
        native: matches!(plugins, Plugins::Native).then(native::plugins),
        sink: rows.map(|r| Box::new(Rows(r)) as Box<dyn Sink>),
        ..Default::default()
    };
    let counters = Pipeline::with_overrides(&cfg, overrides)?.run()?;
    ensure!(
        counters.dead_letters == 0 && counters.elements == counters.events_in,
        "the benchmark run lost events: {} in, {} windowed, {} dead letters",
        counters.events_in,
        counters.elements,
        counters.dead_letters
    );
    Ok(counters)
}

/// runnel's windows on `input` as `user,start_us,count` lines, sorted.
pub fn windows(input: &Path, work: &Path, plugins: Plugins) -> Result<Vec<String>> {
    let rows = Arc::new(Mutex::new(Vec::new()));
    run_pipeline(input, work, plugins, Some(rows.clone()))?;
    let mut rows = std::mem::take(&mut *rows.lock().expect("not poisoned"));
    rows.sort();
    Ok(rows)
}

/// The limit must do the same work as runnel, or comparing them means
/// nothing: its windows must be runnel's, with the WASM plugins.
fn same_windows_as_the_limit(input: &Path, work: &Path) -> Result<()> {
    let runnel = windows(input, work, Plugins::Wasm)?;
    let limit = runnel_limit::count_file(input)?.rows;
    ensure!(
        runnel == limit,
        "the limit's windows differ from runnel's on {}: {} against {} rows, first difference {:?}",
        input.display(),
        limit.len(),
        runnel.len(),
        runnel.iter().zip(&limit).find(|(a, b)| a != b)
    );
    Ok(())
}

/// runnel with the Python plugins on the peers' input: the median of
/// `rounds` runs, its windows checked against the WASM run's.
fn python_run(input: &Path, expected: &[String], work: &Path, python: &PythonPlugins, rounds: usize) -> Result<peers::PeerRun> {
    let windows = windows(input, work, Plugins::Python(python))?;
    let runs: Vec<Counters> = (0..rounds).map(|_| run_pipeline(input, work, Plugins::Python(python), None)).collect::<Result<_>>()?;
    let rate = median(&runs.iter().map(Counters::events_per_second).collect::<Vec<_>>());
    let events = runs.first().map_or(0, |c| c.events_in as usize);
    Ok(peers::PeerRun {
        name: "runnel, Python plugins (componentize-py)".into(),
        events,
        seconds: events as f64 / rate,
        events_per_second: rate,
        windows: windows.len(),
        same_windows: windows == expected,
    })
}

/// Where one event's time goes in a run, in ns per input event.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Breakdown {
    pub total: f64,
    /// The host's pass over each event for the transform (scan, the
    /// declared fields' values, applying edits); for the native twin, all
    /// of its transform.
    pub transform_host: f64,
    /// Inside the WASM transform's calls.
    pub transform_guest: f64,
    /// The aggregate's calls.
    pub aggregate: f64,
    /// Everything else: reading the file, windowing and triggers, the sink.
    pub rest: f64,
}

impl Breakdown {
    pub fn of(c: &Counters) -> Self {
        let per = |d: std::time::Duration| d.as_nanos() as f64 / c.events_in.max(1) as f64;
        let total = per(c.elapsed);
        let transform_guest = per(c.transform_guest_time);
        let transform_host = per(c.transform_time) - transform_guest;
        let aggregate = per(c.aggregate_time);
        Self { total, transform_host, transform_guest, aggregate, rest: total - transform_host - transform_guest - aggregate }
    }
}

/// The breakdown of the round whose rate is the median.
fn median_round(rounds: &[Counters]) -> Option<Breakdown> {
    let mut by_rate: Vec<&Counters> = rounds.iter().collect();
    by_rate.sort_by(|a, b| a.events_per_second().total_cmp(&b.events_per_second()));
    by_rate.get(by_rate.len() / 2).map(|c| Breakdown::of(c))
}

pub fn run(opts: &BenchOptions, progress: &mut dyn FnMut(&str)) -> Result<Results> {
    let lines = input::bundled_lines()?;
    let events = opts.events.unwrap_or(if opts.smoke { 20_000 } else { 2_000_000 });
    let rounds = opts.rounds.unwrap_or(if opts.smoke { 1 } else { 3 });
    let data = opts.work.join("data");
    progress(&format!("writing the input: {events} events (kept in {})", data.display()));
    let big = input::looped(&data, &lines, events)?;
    input::warm(&big)?;
    let (mut wasm, mut native, mut limit) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wasm_rounds, mut native_rounds) = (Vec::new(), Vec::new());
    // The same plugin runtime cache as a run's; a first round warms it.
    run_pipeline(&input::looped(&data, &lines, 2_000)?, &opts.work, Plugins::Wasm, None)?;
    same_windows_as_the_limit(&input::looped(&data, &lines, events.min(lines.len()))?, &opts.work)?;
    for round in 1..=rounds {
        let w = run_pipeline(&big, &opts.work, Plugins::Wasm, None)?;
        progress(&format!("round {round}/{rounds}: WASM {:.0} events/s", w.events_per_second()));
        wasm.push(w.events_per_second());
        wasm_rounds.push(w);
        let n = run_pipeline(&big, &opts.work, Plugins::Native, None)?;
        progress(&format!("round {round}/{rounds}: native {:.0} events/s", n.events_per_second()));
        native.push(n.events_per_second());
        native_rounds.push(n);
        let l = runnel_limit::count_file(&big)?;
        progress(&format!("round {round}/{rounds}: the limit {:.0} events/s", l.events_per_second()));
        limit.push(l.events_per_second());
    }
    progress("plugin call cost by batch size");
    let runtime = crate::plugin::runtime::PluginRuntime::new(Default::default())?;
    let calls = calls::measure(&runtime, &lines, if opts.smoke { 20_000 } else { 200_000 })?;
    let mut results = Results {
        smoke: opts.smoke,
        events,
        wasm,
        native,
        limit,
        calls,
        wasm_breakdown: median_round(&wasm_rounds),
        native_breakdown: median_round(&native_rounds),
        runnel_on_peer_input: None,
        python_on_peer_input: None,
        peers: Vec::new(),
        peer_errors: Vec::new(),
    };
    if opts.peers {
        let peers = peers::Peers::in_repo(&opts.repo);
        let (small_n, large_n) = if opts.smoke { (2_000, 8_000) } else { (lines.len(), 8 * lines.len()) };
        let small = input::looped(&data, &lines, small_n)?;
        let large = input::looped(&data, &lines, large_n)?;
        let small_rows = windows(&small, &opts.work, Plugins::Wasm)?;
        let large_rows = windows(&large, &opts.work, Plugins::Wasm)?;
        let on_small: Vec<f64> = (0..rounds)
            .map(|_| run_pipeline(&small, &opts.work, Plugins::Wasm, None).map(|c| c.events_per_second()))
            .collect::<Result<_>>()?;
        results.runnel_on_peer_input = Some(median(&on_small));
        match &opts.python {
            Some(Ok(python)) => {
                progress(&format!("runnel with the Python plugins, {small_n} events"));
                match python_run(&small, &small_rows, &opts.work, python, rounds) {
                    Ok(r) => results.python_on_peer_input = Some(r),
                    Err(e) => results.peer_errors.push(format!("runnel with the Python plugins: {e:#}")),
                }
            }
            Some(Err(e)) => results.peer_errors.push(format!("the Python plugins were not built: {e}")),
            None => {}
        }
        for mode in ["streaming", "batch", "plugins"] {
            progress(&format!("Apache Beam, {mode}, {small_n} events"));
            match peers.beam(mode, &small, &small_rows, &opts.work) {
                Ok(r) => results.peers.push(r),
                Err(e) => results.peer_errors.push(format!("Beam {mode}: {e:#}")),
            }
        }
        progress(&format!("Apache Flink SQL, {small_n} and {large_n} events"));
        match peers.flink((&small, &small_rows), (&large, &large_rows), &opts.work) {
            Ok(r) => results.peers.push(r),
            Err(e) => results.peer_errors.push(format!("Flink: {e:#}")),
        }
    }
    Ok(results)
}
