//! Reading NDJSON files of records (dead letters, panes, goldens), with
//! errors that name the file and line.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Every non-blank line of `path`, parsed as a `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1)))
        .collect()
}
