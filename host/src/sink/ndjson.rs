//! The NDJSON sink: one JSON object per pane (see [`super::row`]).
//!
//! Behind an acknowledging source (Pub/Sub) the file is *durable*: it is
//! opened for appending, so a restarted run keeps the output whose messages
//! the run before acknowledged, and every write is fsynced before it
//! returns, since the messages it covers are acknowledged right after.
//! Behind a file source a run recomputes everything, so the file is
//! started afresh and not fsynced.

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{row, Columns, Provenance, RejectedRow, Sink};
use crate::window::Pane;

pub struct NdjsonSink {
    out: BufWriter<std::fs::File>,
    path: PathBuf,
    columns: Columns,
    durable: bool,
}

impl NdjsonSink {
    /// A sink that starts the file afresh (for sources that are read whole).
    pub fn create(path: &Path, columns: Columns) -> Result<Self> {
        Self::open(path, columns, false)
    }

    /// `durable`: append, and fsync every write (see the module comment).
    pub fn open(path: &Path, columns: Columns, durable: bool) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        crate::files::check_output(path, "the output file ([sink] path)")?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if durable {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(path).with_context(|| format!("cannot open the output file {}: check [sink] path", path.display()))?;
        Ok(Self { out: BufWriter::new(file), path: path.to_path_buf(), columns, durable })
    }
}

impl Sink for NdjsonSink {
    fn write(&mut self, panes: &[Pane], provenance: &Provenance) -> Result<Vec<RejectedRow>> {
        for pane in panes {
            serde_json::to_writer(&mut self.out, &row(pane, provenance, &self.columns))?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush().with_context(|| format!("cannot write to {}", self.path.display()))?;
        if self.durable && !panes.is_empty() {
            self.out.get_ref().sync_data().with_context(|| format!("cannot fsync {}", self.path.display()))?;
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Value;

    fn write_one(path: &Path, durable: bool, key: &str) {
        let columns = Columns { key: "user_pseudo_id".into(), value: "event_count".into() };
        let mut sink = NdjsonSink::open(path, columns, durable).unwrap();
        let pane = Pane { key: key.into(), value: Some(Value::Int(1)), ..Pane::smoke() };
        let provenance = Provenance { transform: None, aggregate: "count-events".into() };
        assert!(sink.write(&[pane], &provenance).unwrap().is_empty());
    }

    fn keys(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["user_pseudo_id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_restarted_durable_sink_keeps_what_the_run_before_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/rows.ndjson");
        write_one(&path, true, "first run");
        write_one(&path, true, "restarted run");
        assert_eq!(keys(&path), ["first run", "restarted run"]);
    }

    #[test]
    fn a_file_run_starts_its_output_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.ndjson");
        write_one(&path, false, "first run");
        write_one(&path, false, "second run");
        assert_eq!(keys(&path), ["second run"]);
    }
}
