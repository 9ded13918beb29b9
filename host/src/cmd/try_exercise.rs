//! `runnel try DIR`: the participant's loop in one command — build the
//! exercise (a Rust crate, or a Python folder: [`super::build`]), grade it
//! on the visible cases,
//! and, when a pipeline is running (`--config` of a pipeline file with an
//! `[admin]` table, or `--admin`), hot-swap it in once every case passes.

use anyhow::Result;
use std::path::PathBuf;

use crate::grade::{self, report, Scorecard, Which};
use crate::plugin::contract::Kind;
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

pub fn run(opts: &TryOptions) -> Result<Scorecard> {
    let exercise = super::grade::exercise_of(&opts.crate_dir, opts.exercise.as_deref())?;
    let wasm = super::build::plugin(&opts.crate_dir, None)?;
    let runtime = PluginRuntime::new(grade::grading_limits())?;
    let card = grade::grade(&runtime, &exercise, &PluginSource::from_file(&wasm)?, Which::Visible);
    println!("{}", report::text(&card));
    if let Some(config) = &opts.config {
        if card.passed < card.total && !opts.force {
            println!("not swapped into the running pipeline: make every case pass first (or use --force)");
            return Ok(card);
        }
        let kind = exercise.kind;
        let reload = super::reload::ReloadOptions {
            config: config.clone(),
            admin: opts.admin.clone(),
            transform: (kind == Kind::Transform).then(|| wasm.clone()),
            aggregate: (kind == Kind::Aggregate).then(|| wasm.clone()),
        };
        for o in super::reload::run(&reload)? {
            println!("running pipeline: {o}");
        }
    }
    Ok(card)
}
