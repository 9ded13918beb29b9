//! `runnel try CRATE_DIR`: the participant's loop in one command — build
//! the exercise crate for `wasm32-wasip2`, grade it on the visible cases,
//! and, when a pipeline is running (`--config` of a pipeline file with an
//! `[admin]` table, or `--admin`), hot-swap it in once every case passes.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::grade::{self, report, Scorecard, Which};
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::PluginSource;

pub struct TryOptions {
    pub crate_dir: PathBuf,
    pub exercise: Option<String>,
    /// The running pipeline's file, to hot-swap the plugin into.
    pub config: Option<PathBuf>,
    pub admin: Option<String>,
    /// Swap in even when cases fail.
    pub force: bool,
}

/// Builds the crate in `dir` for wasm32-wasip2 (release); the `.wasm` it made.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    anyhow::ensure!(manifest.exists(), "{} has no Cargo.toml: give the exercise crate's directory", dir.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building {} for wasm32-wasip2 …", dir.display());
    let out = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo: is the Rust toolchain installed (rustup)?")?;
    if !out.status.success() {
        bail!("the build failed: fix the compiler errors above and try again");
    }
    let manifest = manifest.canonicalize()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new).is_some_and(|p| p == manifest))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|x| x == "wasm"))
        .context("cargo built no .wasm: the crate needs `crate-type = [\"cdylib\"]` under [lib]")
}

pub fn run(opts: &TryOptions) -> Result<Scorecard> {
    let exercise = super::grade::exercise_of(&opts.crate_dir, opts.exercise.as_deref())?;
    let wasm = build(&opts.crate_dir)?;
    let runtime = PluginRuntime::new(grade::grading_limits())?;
    let card = grade::grade(&runtime, &exercise, &PluginSource::from_file(&wasm)?, Which::Visible);
    println!("{}", report::text(&card));
    if let Some(config) = &opts.config {
        if card.passed < card.total && !opts.force {
            println!("not swapped into the running pipeline: make every case pass first (or use --force)");
            return Ok(card);
        }
        let kind = exercise.kind.world();
        let reload = super::reload::ReloadOptions {
            config: config.clone(),
            admin: opts.admin.clone(),
            transform: (kind == "transform").then(|| wasm.clone()),
            aggregate: (kind == "aggregate").then(|| wasm.clone()),
        };
        for o in super::reload::run(&reload)? {
            println!("running pipeline: {o}");
        }
    }
    Ok(card)
}
