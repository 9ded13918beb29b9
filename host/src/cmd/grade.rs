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
    /// The instructor's folder of held-back cases (`NAME/held-back.ndjson`).
    pub held_back: Option<PathBuf>,
    /// Where a class's HTML report goes (default: DIR/grade-report.html).
    pub html: Option<PathBuf>,
    pub jobs: usize,
}

/// Grades and prints; returns the scorecards.
pub fn run(opts: &GradeOptions) -> Result<Vec<Scorecard>> {
    let mut exercise = Exercise::find(&opts.exercise)?;
    let which = match (&opts.held_back, opts.visible_only) {
        (Some(dir), false) => {
            exercise = exercise.with_held_back(dir)?;
            Which::All
        }
        _ => {
            if !opts.json {
                eprintln!("grading on the visible cases (instructors: add yours with --held-back DIR)");
            }
            Which::Visible
        }
    };
    let runtime = PluginRuntime::new(grade::grading_limits())?;
    if opts.target.is_dir() {
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} guests graded [{elapsed}]").expect("a valid template"));
        let progress = |p: grade::Progress| match p {
            grade::Progress::Total(n) => bar.set_length(n as u64),
            grade::Progress::Graded => bar.inc(1),
        };
        let cards = grade::grade_dir(&runtime, &exercise, &opts.target, which, opts.jobs, &progress)?;
        bar.finish_and_clear();
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
        out.push_str(&format!("{:<21} {:<10} {:>5}  {}\n", e.name, e.kind.world(), e.visible.len(), e.title));
    }
    out.push_str(
        "\ncases: the visible ones (instructors grade with more: --held-back DIR). Templates:\n\
         guest-transforms/exercises/NAME (README.md there); check yours with\n\
         `runnel try guest-transforms/exercises/NAME`.",
    );
    out
}

/// The exercise a crate directory belongs to: its own `exercise.toml`, or
/// the bundled exercise of the same directory name.
pub fn exercise_of(crate_dir: &Path, named: Option<&str>) -> Result<Exercise> {
    match named {
        Some(n) => Exercise::find(n),
        None => Exercise::find(&crate_dir.display().to_string())
            .with_context(|| format!("which exercise is {}? name it with --exercise", crate_dir.display())),
    }
}

pub struct RoomOptions {
    pub exercise: String,
    /// A directory of participants' `.wasm` files, one slot each.
    pub guests: PathBuf,
    /// The reference solution (default: the built one of the exercise).
    pub reference: Option<PathBuf>,
    /// Events to stream (default: the bundled Flood It events).
    pub input: Option<PathBuf>,
    pub limit: Option<u64>,
    pub json: bool,
}

/// `runnel room`: every guest in a slot of its own on one stream.
pub fn room(opts: &RoomOptions) -> Result<crate::room::RoomReport> {
    let exercise = Exercise::find(&opts.exercise)?;
    let reference = match &opts.reference {
        Some(p) => PluginSource::from_file(p)?,
        None => exercise.reference_plugin()?,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&opts.guests)
        .with_context(|| format!("cannot read {}", opts.guests.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    let guests = files.iter().map(|p| PluginSource::from_file(p)).collect::<Result<Vec<_>>>()?;
    let runtime = PluginRuntime::new(grade::grading_limits())?;
    let mut room = crate::room::Room::new(runtime, exercise, reference, guests)?;
    let mut source: Box<dyn crate::source::Source> = match &opts.input {
        Some(p) => Box::new(crate::source::file::FileSource::open(p)?),
        None => Box::new(crate::source::file::FileSource::from_reader(
            "bundled:floodit-events.ndjson.gz",
            crate::source::synthetic::FLOOD_IT_GZ,
            true,
        )),
    };
    let every = (!opts.json).then_some(std::time::Duration::from_secs(2));
    let report = room.run(source.as_mut(), opts.limit, every)?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", crate::room::leaderboard_text(&report));
    }
    Ok(report)
}
