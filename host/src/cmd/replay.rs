//! `runnel replay SCENARIO`: runs a scripted stream through the window
//! engine and prints every pane as NDJSON; `--golden` compares with
//! expected panes (e.g. computed by Apache Beam) and fails with a diff.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

use crate::plugin::aggregate::AggregatePlugin;
use crate::plugin::runtime::{Limits, PluginRuntime};
use crate::plugin::PluginSource;
use crate::replay::{compare, read_panes, PaneRecord, Scenario};

pub fn run(scenario: &Path, aggregate: &str, golden: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let scenario = Scenario::from_file(scenario)?;
    let runtime = PluginRuntime::new(Limits::default())?;
    let source = PluginSource::resolve(aggregate, Path::new("")).context("--aggregate")?;
    let mut plugin = AggregatePlugin::load(&runtime, source, "")?;
    let panes = crate::replay::run(&scenario, &mut plugin)?;
    let records: Vec<PaneRecord> = panes.iter().map(PaneRecord::from_pane).collect();
    for r in &records {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    if let Some(golden) = golden {
        if let Err(diff) = compare(&records, &read_panes(golden)?) {
            bail!("the panes differ from {}:\n{diff}", golden.display());
        }
        eprintln!("{} panes, identical to {}", records.len(), golden.display());
    }
    Ok(())
}
