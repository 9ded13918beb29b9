//! The NDJSON sink: one JSON object per pane (see [`super::row`]).

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{row, Columns, Provenance, RejectedRow, Sink};
use crate::window::Pane;

pub struct NdjsonSink {
    out: BufWriter<std::fs::File>,
    path: PathBuf,
    columns: Columns,
}

impl NdjsonSink {
    pub fn create(path: &Path, columns: Columns) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create the output file {}: check [sink] path", path.display()))?;
        Ok(Self {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            columns,
        })
    }
}

impl Sink for NdjsonSink {
    fn write(&mut self, panes: &[Pane], provenance: &Provenance) -> Result<Vec<RejectedRow>> {
        for pane in panes {
            serde_json::to_writer(&mut self.out, &row(pane, provenance, &self.columns))?;
            self.out.write_all(b"\n")?;
        }
        self.out
            .flush()
            .with_context(|| format!("cannot write to {}", self.path.display()))?;
        Ok(Vec::new())
    }
}
