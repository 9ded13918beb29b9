//! `runnel grade EXERCISE PLUGIN.wasm|DIR`: scorecards for one guest or a
//! whole class, and `runnel exercises`: what there is to solve.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::grade::{self, report, Exercise, Scorecard, Which};
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::PluginSource;

pub struct GradeOptions {
    pub exercise: String,
    /// A `.wasm` file, or a directory of them.
    pub target: PathBuf,
    pub json: bool,
    /// Only the cases participants see.
    pub visible_only: bool,
    /// Where a class's HTML report goes (default: DIR/grade-report.html).
    pub html: Option<PathBuf>,
    pub jobs: usize,
}

/// Grades and prints; returns the scorecards.
pub fn run(opts: &GradeOptions) -> Result<Vec<Scorecard>> {
    let exercise = Exercise::find(&opts.exercise)?;
    let runtime = PluginRuntime::new(grade::grading_limits())?;
    let which = if opts.visible_only { Which::Visible } else { Which::All };
    if opts.target.is_dir() {
        let cards = grade::grade_dir(&runtime, &exercise, &opts.target, which, opts.jobs)?;
        let html = opts.html.clone().unwrap_or_else(|| opts.target.join("grade-report.html"));
        std::fs::write(&html, report::html(&format!("{} — {}", exercise.name, exercise.title), &cards))
            .with_context(|| format!("cannot write the HTML report {}", html.display()))?;
        if opts.json {
            println!("{}", serde_json::to_string_pretty(&cards)?);
        } else {
            println!("{}", report::summary(&cards));
            println!("HTML report: {}", html.display());
        }
        return Ok(cards);
    }
    let source = PluginSource::from_file(&opts.target)?;
    let card = grade::grade(&runtime, &exercise, &source, which);
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        println!("{}", report::text(&card));
    }
    Ok(vec![card])
}

/// `runnel exercises`: the bundled exercises.
pub fn list() -> String {
    let mut out = String::from("exercise              kind       cases  title\n");
    for e in Exercise::bundled() {
        out.push_str(&format!(
            "{:<21} {:<10} {:>2}+{:<2}  {}\n",
            e.name,
            e.kind.world(),
            e.visible.len(),
            e.held_back.len(),
            e.title
        ));
    }
    out.push_str(
        "\ncases: visible + held back. Templates: guest-transforms/exercises/NAME (README.md there);\n\
         check yours with `runnel try guest-transforms/exercises/NAME`.",
    );
    out
}

/// The exercise a crate directory belongs to: its own `exercise.toml`, or
/// the bundled exercise of the same directory name.
pub fn exercise_of(crate_dir: &Path, named: Option<&str>) -> Result<Exercise> {
    match named {
        Some(n) => Exercise::find(n),
        None => Exercise::find(&crate_dir.display().to_string()).with_context(|| {
            format!("which exercise is {}? name it with --exercise", crate_dir.display())
        }),
    }
}
