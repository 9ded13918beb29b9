//! `runnel dlq replay --config FILE`: re-drives dead letters through the
//! pipeline's current plugins, after a fix.
//!
//! The dead-letter file is moved aside (`NAME.replayed-TIMESTAMP`), its
//! events run through the pipeline with an exact watermark (every window
//! fires once, nothing is late), and whatever still fails is written to a
//! fresh dead-letter file with its reason. Rows the sink refused are not
//! events and are kept aside, untouched.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

use crate::config::PipelineConfig;
use crate::deadletter::{self, Stage};
use crate::pipeline::{Counters, Overrides, Pipeline};
use crate::source::memory::MemorySource;
use crate::window::watermark::WatermarkSpec;

/// What a replay did.
pub struct ReplaySummary {
    pub replayed: usize,
    /// The byte length of a cut-off last line that was skipped.
    pub torn_last_line: Option<usize>,
    pub kept_aside: PathBuf,
    pub counters: Counters,
}

pub fn replay(config: &Path) -> Result<ReplaySummary> {
    let mut cfg = PipelineConfig::load(config)?;
    let path = cfg.resolve(&cfg.dead_letters.path);
    if !path.exists() {
        bail!("there are no dead letters to replay: {} does not exist", path.display());
    }
    let (letters, torn) = deadletter::read_all(&path)?;
    if let Some(bytes) = torn {
        eprintln!(
            "skipped the last line of {} ({bytes} bytes, cut off: a run stopped while writing it); \
             it stays in the file moved aside",
            path.display()
        );
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let aside = PathBuf::from(format!("{}.replayed-{stamp}", path.display()));
    std::fs::rename(&path, &aside).with_context(|| format!("cannot move {} aside", path.display()))?;
    let excerpts = letters.iter().filter(|l| !l.is_whole()).count();
    if excerpts > 0 {
        eprintln!(
            "{excerpts} dead letters hold only an excerpt of an oversized event (their size and BLAKE3 are \
             recorded): they cannot be replayed and stay in the file moved aside"
        );
    }
    let events: Vec<(String, Vec<u8>)> =
        letters.iter().filter(|l| l.stage != Stage::Sink && l.is_whole()).map(|l| (l.source.clone(), l.payload_bytes())).collect();
    let replayed = events.len();
    cfg.watermark = Some(WatermarkSpec::EndOfInput);
    let overrides = Overrides { source: Some(Box::new(MemorySource::new(events))), ..Default::default() };
    let mut pipeline = Pipeline::with_overrides(&cfg, overrides)?;
    let counters = pipeline.run()?;
    super::print_summary(&counters, pipeline.dead_letters());
    eprintln!("replayed {replayed} dead letters; the originals are in {}", aside.display());
    Ok(ReplaySummary { replayed, torn_last_line: torn, kept_aside: aside, counters })
}
