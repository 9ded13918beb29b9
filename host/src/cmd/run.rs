//! `runnel run --config FILE`: runs a pipeline file.

use anyhow::Result;
use std::path::Path;

use crate::config::PipelineConfig;
use crate::pipeline::{Counters, Pipeline};

pub fn run(config: &Path) -> Result<Counters> {
    let cfg = PipelineConfig::load(config)?;
    let mut pipeline = Pipeline::from_config(&cfg)?;
    let counters = pipeline.run()?;
    super::print_summary(&counters, pipeline.dead_letters());
    Ok(counters)
}
