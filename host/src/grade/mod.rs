//! Grading workshop exercises by swapping guests: each test case's input
//! events go through the participant's plugin, and what comes out is
//! compared with the expected output, case by case.
//!
//! - [`exercise`]: the exercises (bundled, or a directory of your own) and
//!   their cases, visible and held back;
//! - [`report`]: scorecards as text, JSON and HTML.
//!
//! A guest that traps, loops, eats memory or does not satisfy the contract
//! scores 0 on the affected cases with the reason; it never stops the
//! grader. Transforms get each case as one batch; aggregates get the case's
//! events keyed by `user_pseudo_id` in one-minute fixed windows (the
//! workshop's pipeline), and their panes are compared.

pub mod exercise;
pub mod report;

use serde::Serialize;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::accumulate::{EventBatch, Fired, Pending};
use crate::config::EventConfig;
use crate::decode::Decoder;
use crate::plugin::aggregate::{AggregateFailed, AggregatePlugin};
use crate::plugin::contract::Kind;
use crate::plugin::runtime::{Failure, Limits, PluginRuntime};
use crate::plugin::sandbox::SandboxLimit;
use crate::plugin::transform::TransformPlugin;
use crate::plugin::PluginSource;
use crate::window::{EngineConfig, Trigger, TriggerSpec, WindowEngine, WindowFn};
pub use exercise::{Case, Exercise};

/// Sandbox limits while grading: a tight per-batch budget, so a looping
/// guest costs little; the default start-up budget and memory, so a Python
/// plugin starts as it does in a run.
pub fn grading_limits() -> Limits {
    Limits { call_timeout: Duration::from_millis(250), ..Limits::default() }
}

/// One case's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub held_back: bool,
    pub passed: bool,
    /// Why it failed, when the plugin failed (trap, refusal) rather than
    /// answering wrongly.
    pub error: Option<String>,
    /// Expected vs actual, one line per difference.
    pub diff: Vec<String>,
    pub hint: String,
}

/// A guest's grade on one exercise.
#[derive(Clone, Debug, Serialize)]
pub struct Scorecard {
    pub exercise: String,
    /// The graded file, and its version (`name@hash`).
    pub plugin: String,
    pub cases: Vec<CaseResult>,
    pub passed: usize,
    pub total: usize,
    /// 0 to 100.
    pub score: u32,
}

impl Scorecard {
    fn new(exercise: &Exercise, plugin: String, cases: Vec<CaseResult>) -> Self {
        let passed = cases.iter().filter(|c| c.passed).count();
        let total = cases.len();
        let score = (passed * 100).checked_div(total).unwrap_or(0) as u32;
        Self { exercise: exercise.name.clone(), plugin, cases, passed, total, score }
    }

    /// The first failing case, for summaries.
    pub fn first_failure(&self) -> Option<&CaseResult> {
        self.cases.iter().find(|c| !c.passed)
    }
}

/// Progress of a class's grading.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    Total(usize),
    Graded,
}

/// Which cases to grade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// What participants see.
    Visible,
    /// Visible and held-back (the instructor's grade).
    All,
}

/// Grades one plugin on an exercise.
pub fn grade(runtime: &PluginRuntime, exercise: &Exercise, source: &PluginSource, which: Which) -> Scorecard {
    let plugin = source.label();
    let cases: Vec<&Case> = exercise.cases(which).collect();
    // A plugin that is not a component of the right world fails every case
    // for the same reason; say it once per case without retrying.
    if let Err(e) = crate::plugin::contract::load(runtime, source, exercise.kind) {
        let results = cases.iter().map(|c| failed_by(c, &e)).collect();
        return Scorecard::new(exercise, plugin, results);
    }
    let results = cases
        .iter()
        .map(|case| match exercise.kind {
            Kind::Transform => grade_transform(runtime, exercise, source, case),
            Kind::Aggregate => grade_aggregate(runtime, exercise, source, case),
        })
        .collect();
    Scorecard::new(exercise, plugin, results)
}

/// Grades every `.wasm` in `dir`, `jobs` at a time; sorted by file name.
/// `progress` is told the number of guests, then once per graded guest.
pub fn grade_dir(
    runtime: &PluginRuntime,
    exercise: &Exercise,
    dir: &Path,
    which: Which,
    jobs: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<Vec<Scorecard>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no .wasm files in {}: put each participant's build there", dir.display());
    progress(Progress::Total(files.len()));
    let next = AtomicUsize::new(0);
    let mut cards: Vec<(usize, Scorecard)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(path) = files.get(i) else { break };
                        let card = match PluginSource::from_file(path) {
                            Ok(source) => grade(runtime, exercise, &source, which),
                            Err(e) => {
                                let results = exercise.cases(which).map(|c| failed_by(c, &e)).collect();
                                Scorecard::new(exercise, path.display().to_string(), results)
                            }
                        };
                        progress(Progress::Graded);
                        mine.push((i, card));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a grading worker does not panic")).collect()
    });
    cards.sort_by_key(|(i, _)| *i);
    Ok(cards.into_iter().map(|(_, c)| c).collect())
}

fn failed(case: &Case, reason: String) -> CaseResult {
    CaseResult {
        name: case.name.clone(),
        held_back: case.held_back,
        passed: false,
        error: Some(reason),
        diff: Vec::new(),
        hint: case.hint.clone(),
    }
}

/// A case failed by an error: its words, and what a participant most likely
/// has to do about the plugin failure in it (told by the failure's type).
fn failed_by(case: &Case, err: &anyhow::Error) -> CaseResult {
    let failure = err.chain().find_map(|c| c.downcast_ref::<Failure>().or_else(|| c.downcast_ref::<AggregateFailed>().map(|a| &a.failure)));
    failed(case, with_advice(format!("{err:#}"), failure))
}

fn with_advice(reason: String, failure: Option<&Failure>) -> String {
    let advice = match failure {
        // Told by type only: the guest's own words (`todo!()` says "not yet
        // implemented") are already in `reason`, and are not parsed.
        Some(Failure::Panic { .. }) => {
            "a snippet left as the template has it fails too (todo!() in Rust, NotImplementedError in Python): fill in every TODO snippet"
        }
        Some(Failure::TimeBudget { .. } | Failure::Limit(SandboxLimit::Wait { .. })) => "look for a loop that never ends",
        _ => return reason,
    };
    format!("{reason}; {advice}")
}

fn verdict(case: &Case, diff: Vec<String>) -> CaseResult {
    CaseResult { name: case.name.clone(), held_back: case.held_back, passed: diff.is_empty(), error: None, diff, hint: case.hint.clone() }
}

fn batch_of(case: &Case) -> EventBatch {
    let mut batch = EventBatch::default();
    for e in &case.input {
        batch.push(e.to_string().as_bytes());
    }
    batch
}

fn grade_transform(runtime: &PluginRuntime, exercise: &Exercise, source: &PluginSource, case: &Case) -> CaseResult {
    let events = EventConfig::default();
    let decoder = Decoder::new(events.key_pointer().expect("the default"), events.event_time().expect("the default"));
    let mut plugin = match TransformPlugin::load(runtime, source.clone(), &exercise.config_for(case), &decoder.fields_spec()) {
        Ok(p) => p,
        Err(e) => return failed_by(case, &e),
    };
    let batch = batch_of(case);
    let out = match plugin.transform_whole(runtime, &batch) {
        Ok(out) => out,
        Err(failure) => return failed(case, with_advice(failure.to_string(), Some(&failure))),
    };
    let mut emitted = out.emitted;
    emitted.sort_by_key(|e| e.source);
    let mut diff = Vec::new();
    let mut actual = Vec::new();
    for e in &emitted {
        let bytes = e.output(&batch).bytes();
        match serde_json::from_slice::<Json>(&bytes) {
            Ok(v) => actual.push(v),
            Err(err) => diff.push(format!("output {} is not JSON: {err}", actual.len() + 1)),
        }
    }
    compare_outputs(&case.expect, &actual, &mut diff);
    let mut rejected: Vec<usize> = out.rejected.iter().map(|r| r.source as usize).collect();
    rejected.sort();
    let expected_rejected = case.expect_rejected.clone().unwrap_or_default();
    for r in &out.rejected {
        if !expected_rejected.contains(&(r.source as usize)) {
            diff.push(format!("input {} was refused, but should not be: {}", r.source + 1, r.reason));
        }
    }
    for i in expected_rejected {
        if !rejected.contains(&i) {
            diff.push(format!("input {} should be refused with Err(reason), but was not", i + 1));
        }
    }
    verdict(case, diff)
}

/// Expected vs actual outputs, field by field.
pub(crate) fn compare_outputs(expected: &[Json], actual: &[Json], diff: &mut Vec<String>) {
    if expected.len() != actual.len() {
        diff.push(format!("expected {} outputs, got {}", expected.len(), actual.len()));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        if same(e, a) {
            continue;
        }
        match (e.as_object(), a.as_object()) {
            (Some(eo), Some(ao)) => {
                for (k, ev) in eo {
                    match ao.get(k) {
                        None => diff.push(format!("output {}: field {k:?} is missing, expected {}", i + 1, short(ev))),
                        Some(av) if !same(ev, av) => {
                            diff.push(format!("output {}: field {k:?} is {}, expected {}", i + 1, short(av), short(ev)))
                        }
                        _ => {}
                    }
                }
                for (k, av) in ao {
                    if !eo.contains_key(k) {
                        diff.push(format!("output {}: unexpected field {k:?} = {}", i + 1, short(av)));
                    }
                }
            }
            _ => diff.push(format!("output {}: {}, expected {}", i + 1, short(a), short(e))),
        }
    }
    for (i, a) in actual.iter().enumerate().skip(expected.len()) {
        diff.push(format!("output {} was not expected: {}", i + 1, short(a)));
    }
    for (i, e) in expected.iter().enumerate().skip(actual.len()) {
        diff.push(format!("output {} is missing: {}", i + 1, short(e)));
    }
}

/// JSON equality, numbers within a relative 1e-9.
pub(crate) fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Json::Object(x), Json::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// A JSON value, cut to a readable length.
pub(crate) fn short(v: &Json) -> String {
    let text = v.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn grade_aggregate(runtime: &PluginRuntime, exercise: &Exercise, source: &PluginSource, case: &Case) -> CaseResult {
    let mut plugin = match AggregatePlugin::load(runtime, source.clone(), &exercise.config_for(case)) {
        Ok(p) => p,
        Err(e) => return failed_by(case, &e),
    };
    let events = EventConfig::default();
    let decoder = Decoder::new(events.key_pointer().expect("the default"), events.event_time().expect("the default"));
    let window_fn = match &case.window {
        Some(spec) => match WindowFn::from_spec(spec) {
            Ok(f) => f,
            Err(e) => return failed(case, format!("a broken case: {e}")),
        },
        None => WindowFn::Fixed { size: 60_000_000 },
    };
    let mut engine = WindowEngine::new(EngineConfig {
        window_fn,
        trigger: Trigger::compile(&TriggerSpec::Default).expect("the default trigger"),
        accumulating: false,
        allowed_lateness: 0,
    });
    let input = batch_of(case);
    let mut payloads = EventBatch::default();
    for i in 0..input.len() {
        let event = input.get(i);
        let (key, ts) = match decoder.decode(event) {
            Ok((k, Some(t))) => (k.into_owned(), t),
            _ => return failed(case, format!("case input {} lacks user_pseudo_id or event_timestamp (a broken case)", i + 1)),
        };
        let element = payloads.push(event);
        engine.process(&key, ts, element);
    }
    let Fired { mut panes, refused } = match Pending::take(&mut engine).run(&mut plugin, &mut payloads) {
        Ok(fired) => fired,
        Err(e) => return failed_by(case, &e),
    };
    engine.advance_watermark(i64::MAX);
    match Pending::take(&mut engine).run(&mut plugin, &mut EventBatch::default()) {
        Ok(closing) => panes.extend(closing.panes),
        Err(e) => return failed_by(case, &e),
    }
    let mut actual: Vec<Json> = panes
        .iter()
        .map(|p| {
            serde_json::json!({
                "key": p.key,
                "window_start": chrono::DateTime::from_timestamp_micros(p.window.start)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "value": p.value.as_ref().map(|v| v.to_json_value()).unwrap_or(Json::Null),
            })
        })
        .collect();
    let order = |v: &Json| (v["key"].as_str().unwrap_or("").to_string(), v["window_start"].as_str().unwrap_or("").to_string());
    actual.sort_by_key(order);
    let mut expected = case.expect.clone();
    expected.sort_by_key(order);
    let mut diff: Vec<String> =
        refused.iter().map(|r| format!("input {} was refused, but should not be: {}", r.event + 1, r.reason)).collect();
    let (mut e, mut a) = (expected.iter().peekable(), actual.iter().peekable());
    loop {
        match (e.peek(), a.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) if order(x) == order(y) => {
                if !same(&x["value"], &y["value"]) {
                    diff.push(format!(
                        "{} in the window from {}: got {}, expected {}",
                        x["key"].as_str().unwrap_or("?"),
                        x["window_start"].as_str().unwrap_or("?"),
                        y["value"],
                        x["value"]
                    ));
                }
                e.next();
                a.next();
            }
            (Some(x), y) if y.is_none_or(|y| order(x) < order(y)) => {
                diff.push(format!(
                    "no pane for {} in the window from {}",
                    x["key"].as_str().unwrap_or("?"),
                    x["window_start"].as_str().unwrap_or("?")
                ));
                e.next();
            }
            (_, Some(y)) => {
                diff.push(format!("an unexpected pane: {}", short(y)));
                a.next();
            }
            (Some(_), None) => unreachable!("handled above"),
        }
    }
    verdict(case, diff)
}
