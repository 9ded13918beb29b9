//! `runnel demo`: the workshop's pipeline on the bundled Flood It events,
//! with the bundled plugins and no cloud — the embedded default.

use anyhow::Result;
use std::path::PathBuf;

use crate::config::PipelineConfig;
use crate::pipeline::{Counters, Overrides, Pipeline};
use crate::sink::ndjson::NdjsonSink;
use crate::sink::stdout::StdoutSink;
use crate::sink::tee::TeeSink;
use crate::sink::Sink;
use crate::source::file::FileSource;
use crate::source::paced::PacedSource;
use crate::source::synthetic::FLOOD_IT_GZ;
use crate::source::Source;

/// The demo's pipeline file, as shipped in `examples/demo.toml`.
pub const DEMO_TOML: &str = include_str!("../../../examples/demo.toml");

pub struct DemoOptions {
    /// Keys shown per window.
    pub top: usize,
    /// Windows printed (all are computed).
    pub windows: usize,
    /// Also write every pane as NDJSON here.
    pub output: Option<PathBuf>,
    pub dead_letters: PathBuf,
    /// Serve the dashboard and admin API on this address.
    pub admin: Option<String>,
    /// Events per second (default: as fast as possible).
    pub rate: Option<f64>,
    /// Keep serving the dashboard after the run, until interrupted.
    pub linger: bool,
}

pub fn run(opts: &DemoOptions) -> Result<Counters> {
    let mut cfg = PipelineConfig::parse(DEMO_TOML)?;
    cfg.dead_letters.path = opts.dead_letters.clone();
    let table = StdoutSink::new(std::io::stdout(), opts.top, Some(opts.windows));
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(table)];
    if let Some(path) = &opts.output {
        sinks.push(Box::new(NdjsonSink::create(path, cfg.sink.columns())?));
    }
    let mut source: Box<dyn Source> = Box::new(FileSource::from_reader("bundled:floodit-events.ndjson.gz", FLOOD_IT_GZ, true));
    if let Some(rate) = opts.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number of events per second");
        // A live stream: windows close as the data passes them, not at the end.
        cfg.watermark = Some(crate::window::watermark::WatermarkSpec::Bounded {
            max_out_of_orderness_s: 5.0,
            idle_timeout_s: None,
            startup_hold_s: None,
            max_future_s: 300.0,
        });
        source = Box::new(PacedSource::new(source, rate));
    }
    let overrides = Overrides { source: Some(source), sink: Some(Box::new(TeeSink(sinks))), ..Default::default() };
    let mut pipeline = Pipeline::with_overrides(&cfg, overrides)?;
    let admin = super::run::start_admin(&cfg, opts.admin.as_deref(), &pipeline)?;
    println!("runnel demo: Flood It events → add-weekday → events per user per minute → count-events\n");
    let counters = pipeline.run()?;
    if counters.panes > 0 && opts.windows > 0 {
        println!("… (the first {} one-minute windows; --windows N shows more)", opts.windows);
    }
    super::print_summary(&counters, pipeline.dead_letters());
    if let (Some(server), true) = (&admin, opts.linger) {
        eprintln!("the dashboard stays up at http://{}/ ; Ctrl-C to stop", server.addr());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(counters)
}
