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

/// What a Python has: runnel_beam and Apache Beam, runnel_beam only (the
/// base wheel, without its `beam` extra), or neither.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Has {
    Both,
    RunnelBeamOnly,
    Neither,
}

/// Looks without importing (runnel_beam imports Beam when it loads).
fn probe(python: &Path) -> Has {
    const PROBE: &str = "import importlib.util as u, sys\n\
                         sys.exit(2 if u.find_spec('runnel_beam') is None else 0 if u.find_spec('apache_beam') else 3)";
    match Command::new(python).args(["-c", PROBE]).output().ok().and_then(|o| o.status.code()) {
        Some(0) => Has::Both,
        Some(3) => Has::RunnelBeamOnly,
        _ => Has::Neither,
    }
}

/// Runs `python -m runnel_beam --config CONFIG BEAM_ARGS...`; returns its
/// exit code.
pub fn run(config: &Path, beam_args: &[String]) -> Result<i32> {
    let found: Vec<(PathBuf, Has)> = pythons().into_iter().map(|p| (probe(&p), p)).map(|(h, p)| (p, h)).collect();
    let Some((python, _)) = found.iter().find(|(_, h)| *h == Has::Both) else {
        if let Some((python, _)) = found.iter().find(|(_, h)| *h == Has::RunnelBeamOnly) {
            bail!(
                "{} has runnel_beam but not Apache Beam: install the wheel's Beam extra into the same \
                 virtualenv (pip install 'runnel[beam]', or pip install 'target/wheels/runnel-*.whl[beam]')",
                python.display()
            );
        }
        bail!(
            "no Python with runnel_beam was found: install the runnel wheel with its Beam extra into a \
             virtualenv (scripts/wheel.sh, then pip install 'target/wheels/runnel-*.whl[beam]') and run its \
             runnel, or run scripts/beam.sh setup in the repository, or set RUNNEL_BEAM_PYTHON"
        );
    };
    let status = Command::new(python)
        .args(["-m", "runnel_beam", "--config"])
        .arg(config)
        .args(beam_args)
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    Ok(status.code().unwrap_or(1))
}
