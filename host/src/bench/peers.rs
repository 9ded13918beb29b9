//! Peers on the same file: Apache Beam's Python DirectRunner (streaming and
//! batch) and Apache Flink SQL through PyFlink, each run by its script in
//! `scripts/peers/` with the Python of a virtualenv `scripts/bench.sh`
//! installs at a pinned version. Each writes its windows as
//! `user,start_us,count` lines, which must equal runnel's.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One peer run: its rate and whether its windows equal runnel's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerRun {
    pub name: String,
    pub events: usize,
    pub seconds: f64,
    /// Events per second; for Flink, from the difference of two input
    /// sizes, so its start-up is left out.
    pub events_per_second: f64,
    pub windows: usize,
    pub same_windows: bool,
}

#[derive(serde::Deserialize)]
struct Timing {
    events: usize,
    seconds: f64,
}

/// Runs `script` with `python`; returns its timing and its sorted rows.
/// The script gets a temp folder of its own, removed after it: Beam's
/// DirectRunner leaves folders and files in the temp folder after every
/// batch run (its job server's `beam-temp*` root among them).
fn run_script(python: &Path, script: &Path, args: &[&str], rows: &Path) -> Result<(Timing, Vec<String>)> {
    let temp = tempfile::tempdir().context("cannot make a temp folder for the peer")?;
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .arg(rows)
        .env("TMPDIR", temp.path())
        .output()
        .with_context(|| format!("cannot run {} (install the peers with scripts/bench.sh)", python.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        bail!("{} failed:\n{}", script.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).context("the peer printed no timing line")?;
    let timing: Timing = serde_json::from_str(line).with_context(|| format!("the peer's timing line {line:?}"))?;
    let mut lines: Vec<String> = std::fs::read_to_string(rows)?.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    lines.sort();
    Ok((timing, lines))
}

/// The name of the Beam peer that runs runnel's plugins (runnel_beam).
pub const PLUGINS_ON_BEAM: &str = "runnel_beam: Beam 2.77 DirectRunner with runnel's WASM plugins";

/// Where the peers' virtualenvs and scripts are.
pub struct Peers {
    pub root: PathBuf,
    pub beam_python: PathBuf,
    pub flink_python: PathBuf,
}

impl Peers {
    pub fn in_repo(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            beam_python: root.join("target/beam-venv/bin/python"),
            flink_python: root.join("target/flink-venv/bin/python"),
        }
    }

    /// Beam in `mode` on `input`: "streaming" or "batch" (the job in plain
    /// Beam Python), or "plugins" (batch, with runnel's WASM plugins through
    /// runnel_beam: `scripts/beam.sh setup --release` stages it).
    pub fn beam(&self, mode: &str, input: &Path, expected: &[String], work: &Path) -> Result<PeerRun> {
        let rows = work.join(format!("beam-{mode}.rows"));
        let script = self.root.join("scripts/peers/beam_count.py");
        let (t, lines) = run_script(&self.beam_python, &script, &[mode, &input.display().to_string()], &rows)?;
        Ok(PeerRun {
            name: match mode {
                "plugins" => PLUGINS_ON_BEAM.to_string(),
                _ => format!("Apache Beam 2.77 Python DirectRunner, {mode}"),
            },
            events: t.events,
            seconds: t.seconds,
            events_per_second: t.events as f64 / t.seconds,
            windows: lines.len(),
            same_windows: lines == expected,
        })
    }

    /// Flink SQL on two inputs; the rate is the larger one's extra events
    /// over its extra time. Windows are checked on both.
    pub fn flink(&self, small: (&Path, &[String]), large: (&Path, &[String]), work: &Path) -> Result<PeerRun> {
        let script = self.root.join("scripts/peers/flink_count.py");
        let (ts, small_rows) = run_script(&self.flink_python, &script, &[&small.0.display().to_string()], &work.join("flink-small.rows"))?;
        let (tl, large_rows) = run_script(&self.flink_python, &script, &[&large.0.display().to_string()], &work.join("flink-large.rows"))?;
        let extra = (tl.events - ts.events) as f64;
        let rate = if tl.seconds > ts.seconds { extra / (tl.seconds - ts.seconds) } else { f64::NAN };
        Ok(PeerRun {
            name: "Apache Flink 2.3 SQL (PyFlink), TUMBLE count, parallelism 1, batch mode".into(),
            events: tl.events,
            seconds: tl.seconds,
            events_per_second: rate,
            windows: large_rows.len(),
            same_windows: small_rows == small.1 && large_rows == large.1,
        })
    }
}
