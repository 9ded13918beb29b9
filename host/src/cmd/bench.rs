//! `runnel bench`: runs [`crate::bench`] and writes its report and plot.

use anyhow::{Context, Result};
use std::path::PathBuf;

use crate::bench::{report, BenchOptions, PythonPlugins};

/// Where the report goes: markdown (`out`, with a `.json` beside it) and
/// the SVG plot it links to by file name.
pub struct Outputs {
    pub out: PathBuf,
    pub plot: PathBuf,
}

pub fn run(opts: &BenchOptions, args: &Outputs) -> Result<()> {
    let results = crate::bench::run(opts, &mut |step| eprintln!("bench: {step}"))?;
    for dir in [args.out.parent(), args.plot.parent()].into_iter().flatten() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let plot_name = args.plot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    std::fs::write(&args.plot, report::svg(&results)).with_context(|| format!("cannot write {}", args.plot.display()))?;
    std::fs::write(&args.out, report::markdown(&results, &plot_name)).with_context(|| format!("cannot write {}", args.out.display()))?;
    std::fs::write(args.out.with_extension("json"), serde_json::to_string_pretty(&results)?)?;
    for line in report::summary(&results) {
        println!("{line}");
    }
    println!("report: {} (plot {})", args.out.display(), args.plot.display());
    Ok(())
}

/// Builds the Python twins of the benchmark's plugins
/// (`guest-transforms/python/examples`) into `work`.
pub fn build_python(repo: &std::path::Path, work: &std::path::Path) -> Result<PythonPlugins, String> {
    let examples = repo.join("guest-transforms/python/examples");
    let build =
        |name: &str| super::build::python(&examples.join(name), &work.join(format!("python-{name}.wasm"))).map_err(|e| format!("{e:#}"));
    Ok(PythonPlugins { transform: build("add_weekday")?, aggregate: build("count_events")? })
}
