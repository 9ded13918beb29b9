//! The plugin contract: which world a component implements, or precisely
//! why it implements none (`runnel check` prints this report).

use anyhow::{bail, Result};
use wasmtime::component::Component;

use super::runtime::PluginRuntime;
use super::PluginSource;

/// The contract version this host speaks (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.2.0";
pub const TRANSFORM_EXPORT: &str = "runnel:plugin/transformer@0.2.0";
pub const AGGREGATE_EXPORT: &str = "runnel:plugin/aggregator@0.2.0";

/// The two plugin kinds. Their names ("transform", "aggregate": the WIT
/// worlds) are written here only: parsed with `FromStr` (or serde) at the
/// edge (HTTP, exercise files), printed with `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Transform,
    Aggregate,
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [Kind::Transform, Kind::Aggregate]
            .into_iter()
            .find(|k| k.world() == name)
            .ok_or_else(|| format!("a plugin kind is \"transform\" or \"aggregate\", not {name:?}"))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.world())
    }
}

impl Kind {
    pub fn world(&self) -> &'static str {
        match self {
            Kind::Transform => "transform",
            Kind::Aggregate => "aggregate",
        }
    }

    pub fn export(&self) -> &'static str {
        match self {
            Kind::Transform => TRANSFORM_EXPORT,
            Kind::Aggregate => AGGREGATE_EXPORT,
        }
    }
}

/// What `runnel check` reports about a component.
#[derive(Clone, Debug)]
pub struct Report {
    pub kind: Kind,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub size: usize,
    pub hash: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "contract: runnel:plugin@{CONTRACT_VERSION}, world `{}`", self.kind.world())?;
        writeln!(f, "size:     {} bytes", self.size)?;
        writeln!(f, "version:  {} (BLAKE3 of the file)", self.hash)?;
        writeln!(f, "exports:  {}", self.exports.join(", "))?;
        write!(f, "imports:  {}", if self.imports.is_empty() { "(none)".to_string() } else { self.imports.join(", ") })
    }
}

/// Finds the world a compiled component implements.
pub fn inspect(runtime: &PluginRuntime, source: &PluginSource, component: &Component) -> Result<Report> {
    let ty = component.component_type();
    let engine = runtime.engine();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let kind = if exports.iter().any(|e| e == TRANSFORM_EXPORT) {
        Kind::Transform
    } else if exports.iter().any(|e| e == AGGREGATE_EXPORT) {
        Kind::Aggregate
    } else {
        let other_version = exports.iter().find(|e| e.starts_with("runnel:plugin/"));
        match other_version {
            Some(found) => bail!(
                "{} was built against another version of the plugin contract: it exports \
                 `{found}`, but this runnel speaks runnel:plugin@{CONTRACT_VERSION}. Rebuild the \
                 plugin with this repository's guest SDK (guest-transforms/sdk): `cargo build \
                 --release --target wasm32-wasip2` in its folder{}.",
                source.name,
                if found.contains("@0.1.") {
                    " (a 0.1 plugin needs no source change, unless it reads whole events with \
                     Event::bytes: then it returns true from Transform::whole_events)"
                } else {
                    ""
                }
            ),
            None => bail!(
                "{} does not implement the runnel plugin contract: it exports [{}], but a \
                 plugin must export `{TRANSFORM_EXPORT}` (a transform) or `{AGGREGATE_EXPORT}` \
                 (an aggregate). Write it with runnel-sdk's export_transform! or export_aggregate!.",
                source.name,
                exports.join(", ")
            ),
        }
    };
    let foreign: Vec<&String> = imports.iter().filter(|i| !i.starts_with("wasi:") && !i.starts_with("runnel:plugin/types")).collect();
    if !foreign.is_empty() {
        bail!(
            "{} imports {} which runnel does not provide; plugins may import only WASI \
             (and get no files, network or environment)",
            source.name,
            foreign.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(Report { kind, exports, imports, size: source.bytes.len(), hash: source.hash.clone() })
}

/// Compiles and inspects a plugin, requiring the given kind.
pub fn load(runtime: &PluginRuntime, source: &PluginSource, want: Kind) -> Result<(Component, Report)> {
    let component = runtime.compile(source)?;
    let report = inspect(runtime, source, &component)?;
    if report.kind != want {
        bail!(
            "{} is {} plugin, but this slot needs {} plugin (world `{}`)",
            source.name,
            article(report.kind),
            article(want),
            want.world()
        );
    }
    Ok((component, report))
}

fn article(kind: Kind) -> &'static str {
    match kind {
        Kind::Transform => "a transform",
        Kind::Aggregate => "an aggregate",
    }
}
