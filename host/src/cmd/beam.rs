//! `runnel beam`: the pipeline file on Apache Beam, through the runnel_beam
//! package (beam/): it finds a Python that has it and hands over.
//!
//! Which Python: `RUNNEL_BEAM_PYTHON`; else the `python` beside this
//! `runnel` (the wheel installs both into one virtualenv's `bin/`); else
//! the repository's `target/beam-venv` (`scripts/beam.sh setup`) when run
//! from the repository; else `python3` on the PATH.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The candidates, in order.
fn pythons() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(p) = std::env::var_os("RUNNEL_BEAM_PYTHON") {
        found.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        found.push(dir.join("python"));
    }
    found.push(PathBuf::from("target/beam-venv/bin/python"));
    found.push(PathBuf::from("python3"));
    found
}

fn has_runnel_beam(python: &Path) -> bool {
    Command::new(python).args(["-c", "import runnel_beam._bridge"]).output().is_ok_and(|o| o.status.success())
}

/// Runs `python -m runnel_beam --config CONFIG BEAM_ARGS...`; returns its
/// exit code.
pub fn run(config: &Path, beam_args: &[String]) -> Result<i32> {
    let Some(python) = pythons().into_iter().find(|p| has_runnel_beam(p)) else {
        bail!(
            "no Python with runnel_beam was found: install the runnel wheel into a virtualenv \
             (scripts/wheel.sh, then pip install target/wheels/runnel-*.whl) and run its runnel, \
             or run scripts/beam.sh setup in the repository, or set RUNNEL_BEAM_PYTHON"
        );
    };
    let status = Command::new(&python)
        .args(["-m", "runnel_beam", "--config"])
        .arg(config)
        .args(beam_args)
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    Ok(status.code().unwrap_or(1))
}
