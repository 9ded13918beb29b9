//! Sinks: where panes go, as rows of `(key, value, window, pane info,
//! plugin versions)`.
//!
//! - [`stdout`]: a readable table of each window's most active keys;
//! - [`ndjson`]: one JSON row per pane, to a file;
//! - [`bigquery`]: rows streamed into a BigQuery table;
//! - [`NullSink`]: discards rows (benchmarks).

pub mod bigquery;
pub mod ndjson;
pub mod stdout;
pub mod tee;

use anyhow::Result;
use serde_json::{Map, Value as Json};

use crate::window::Pane;

/// Which plugin versions produced a pane.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub transform: Option<String>,
    pub aggregate: String,
}

/// Column names for rows.
#[derive(Clone, Debug)]
pub struct Columns {
    pub key: String,
    pub value: String,
}

/// A row the destination refused (it goes to the dead letters).
#[derive(Clone, Debug)]
pub struct RejectedRow {
    /// Index of the pane in the written slice (`usize::MAX` if unknown).
    pub pane: usize,
    pub reason: String,
    /// The row as JSON.
    pub row: String,
}

/// A destination for panes.
pub trait Sink {
    /// Writes panes; when this returns, they are safely stored, except the
    /// rows returned as refused.
    fn write(&mut self, panes: &[Pane], provenance: &Provenance) -> Result<Vec<RejectedRow>>;

    /// Called once at the end of a run.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Write requests retried so far (after throttling or server errors).
    fn retries(&self) -> u64 {
        0
    }
}

/// Discards everything.
pub struct NullSink;

impl Sink for NullSink {
    fn write(&mut self, _panes: &[Pane], _provenance: &Provenance) -> Result<Vec<RejectedRow>> {
        Ok(Vec::new())
    }
}

/// RFC 3339 text of a time in µs (the global window's bounds stay numbers).
pub fn rfc3339(us: i64) -> Json {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) if (-62_135_596_800_000_000..253_402_300_800_000_000).contains(&us) => {
            Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        _ => Json::from(us),
    }
}

/// The row for one pane, as a JSON object.
pub fn row(pane: &Pane, provenance: &Provenance, columns: &Columns) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert(columns.key.clone(), Json::String(pane.key.clone()));
    let value = pane.value.as_ref().map(|v| v.to_json_value()).unwrap_or(Json::Null);
    m.insert(columns.value.clone(), value);
    m.insert("window_start".into(), rfc3339(pane.window.start));
    m.insert("window_end".into(), rfc3339(pane.window.end));
    m.insert("timing".into(), Json::String(pane.timing.as_str().into()));
    m.insert("pane_index".into(), Json::from(pane.index));
    m.insert("is_last".into(), Json::Bool(pane.is_last));
    let mut plugins = Map::new();
    if let Some(t) = &provenance.transform {
        plugins.insert("transform".into(), Json::String(t.clone()));
    }
    let aggregate = pane.computed_by.as_deref().unwrap_or(&provenance.aggregate);
    plugins.insert("aggregate".into(), Json::String(aggregate.to_string()));
    m.insert("plugins".into(), Json::Object(plugins));
    m
}
