//! `runnel check PLUGIN.wasm`: which contract a plugin satisfies, or why not.

use anyhow::Result;
use std::path::Path;

use crate::plugin::contract::{inspect, Report};
use crate::plugin::runtime::{Limits, PluginRuntime};
use crate::plugin::PluginSource;

pub fn run(plugin: &Path) -> Result<Report> {
    let runtime = PluginRuntime::new(Limits::default())?;
    let source = PluginSource::resolve(&plugin.display().to_string(), Path::new(""))?;
    let component = runtime.compile(&source)?;
    inspect(&runtime, &source, &component)
}
