//! Grading the workshop exercises: every reference solution scores 100%
//! against expectations computed independently (in Python, by
//! guest-transforms/exercises/make_cases.py), every untouched template
//! builds and scores 0 with a message that says what to do, a plausible
//! wrong answer fails the case that shows its mistake, a class of 30 mixed
//! guests (good, wrong, hostile, broken) gets a correct summary, and
//! `runnel try` builds, grades and hot-swaps a participant's crate.

use runnel::grade::{self, Exercise, Which};
use runnel::plugin::bundled::built_guest;
use runnel::plugin::runtime::PluginRuntime;
use runnel::plugin::{with_build_tag, PluginSource};

fn runtime() -> PluginRuntime {
    PluginRuntime::new(grade::grading_limits()).unwrap()
}

/// The instructor's folder of held-back cases.
fn solutions() -> std::path::PathBuf {
    runnel_tests::repo_root().join("guest-transforms/solutions")
}

fn crate_wasm(dir: &str, exercise: &str) -> PluginSource {
    PluginSource::from_file(&built_guest(&format!("{dir}-{exercise}"))).unwrap()
}

#[test]
fn reference_solutions_score_100_and_untouched_templates_score_0() {
    let rt = runtime();
    for exercise in Exercise::bundled() {
        let exercise = exercise.with_held_back(&solutions()).unwrap();
        assert!(!exercise.visible.is_empty() && !exercise.held_back.is_empty(), "{}: visible and held-back cases", exercise.name);
        let reference = exercise.reference_plugin().unwrap();
        let solution = grade::grade(&rt, &exercise, &reference, Which::All);
        assert_eq!(solution.score, 100, "{}", grade::report::text(&solution));
        assert_eq!(solution.total, exercise.visible.len() + exercise.held_back.len());

        let template = grade::grade(&rt, &exercise, &crate_wasm("exercise", &exercise.name), Which::All);
        assert_eq!(template.score, 0, "{}", grade::report::text(&template));
        for case in &template.cases {
            let error = case.error.as_deref().unwrap_or_default();
            assert!(error.contains("todo!()"), "{}: {}: the message says to fill in the snippets: {error:?}", exercise.name, case.name);
            assert!(
                error.contains("not yet implemented") && error.contains(&format!("exercises/{}/src/lib.rs:", exercise.name)),
                "and where the todo!() is: {error:?}"
            );
        }
        // Participants see only the visible cases.
        let visible = grade::grade(&rt, &exercise, &reference, Which::Visible);
        assert_eq!(visible.total, exercise.visible.len());
        assert!(visible.cases.iter().all(|c| !c.held_back));
    }
}

#[test]
fn a_plausible_wrong_answer_fails_the_case_that_shows_the_mistake() {
    let rt = runtime();
    let weekday = Exercise::find("02").unwrap().with_held_back(&solutions()).unwrap();
    let card = grade::grade(&rt, &weekday, &PluginSource::from_file(&built_guest("wrong-weekday")).unwrap(), Which::All);
    let friday = card.cases.iter().find(|c| c.name == "a Friday").unwrap();
    assert!(!friday.passed);
    assert_eq!(friday.diff, ["output 1: field \"weekday\" is \"Saturday\", expected \"Friday\""]);
    assert!(friday.hint.contains("Friday"));
    // Its refusals are right, so those cases pass: the score is partial.
    assert!(card.cases.iter().filter(|c| c.name.contains("refused")).all(|c| c.passed));
    assert!(card.score > 0 && card.score < 100, "{}", grade::report::text(&card));

    let revenue = Exercise::find("04-revenue-per-user").unwrap().with_held_back(&solutions()).unwrap();
    let card = grade::grade(&rt, &revenue, &PluginSource::from_file(&built_guest("wrong-revenue")).unwrap(), Which::All);
    let sums = card.cases.iter().find(|c| c.name == "purchases add up").unwrap();
    assert!(!sums.passed);
    assert!(sums.diff.iter().any(|d| d.contains("got 5.0, expected 9.95")), "{:?}", sums.diff);
    assert!(card.cases.iter().find(|c| c.name == "events without a value count as 0").unwrap().passed);

    // Exercise names and directories are both accepted; a wrong one says what exists.
    let e = Exercise::find("99-nope").unwrap_err().to_string();
    assert!(e.contains("02-add-weekday"), "{e}");
}

#[test]
fn a_class_of_thirty_guests_is_graded_with_a_correct_summary() {
    let class = tempfile::tempdir().unwrap();
    // A copy of exercise 1 whose config makes the hostile guest loop on the
    // bundled day's first event (the other guests ignore their config).
    let exercise_dir = class.path().join("01-filter-gameplay-hostile");
    std::fs::create_dir(&exercise_dir).unwrap();
    let root = runnel_tests::repo_root();
    std::fs::copy(root.join("guest-transforms/exercises/01-filter-gameplay/cases.ndjson"), exercise_dir.join("cases.ndjson")).unwrap();
    std::fs::copy(root.join("guest-transforms/solutions/01-filter-gameplay/held-back.ndjson"), exercise_dir.join("held-back.ndjson"))
        .unwrap();
    std::fs::write(
        exercise_dir.join("exercise.toml"),
        "title = \"gameplay, with a hostile config\"\nkind = \"transform\"\nconfig = '{\"mode\": \"loop\", \"when\": \"level_end_quickplay\"}'\n",
    )
    .unwrap();
    let guests = class.path().join("guests");
    std::fs::create_dir(&guests).unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(guests.join(format!("{name}.wasm")), bytes).unwrap();
    let read = |crate_name: &str| std::fs::read(built_guest(crate_name)).unwrap();
    for i in 0..12 {
        put(&format!("good-{i:02}"), &with_build_tag(&read("solution-01-filter-gameplay"), &format!("{i}")));
    }
    for i in 0..5 {
        put(&format!("untouched-{i}"), &with_build_tag(&read("exercise-01-filter-gameplay"), &format!("{i}")));
        put(&format!("keeps-all-{i}"), &with_build_tag(&read("identity"), &format!("{i}")));
    }
    for i in 0..3 {
        put(&format!("loops-{i}"), &with_build_tag(&read("hostile"), &format!("{i}")));
    }
    put("old-contract-0", &read("wrong-version"));
    put("old-contract-1", &with_build_tag(&read("wrong-version"), "1"));
    put("garbage-0", b"not wasm at all");
    put("garbage-1", &[0u8, 97, 115, 109, 1, 0, 0, 0, 255, 255]);
    put("an-aggregate", &read("count-events"));
    assert_eq!(std::fs::read_dir(&guests).unwrap().count(), 30);

    let started = std::time::Instant::now();
    let cards = runnel::cmd::grade::run(&runnel::cmd::grade::GradeOptions {
        exercise: exercise_dir.display().to_string(),
        target: guests.clone(),
        json: false,
        visible_only: false,
        held_back: Some(exercise_dir.clone()),
        html: None,
        jobs: 2,
    })
    .unwrap();
    eprintln!("graded 30 guests in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(cards.len(), 30);
    let total = 8;
    for card in &cards {
        let file = card.plugin.rsplit('/').next().unwrap();
        assert_eq!(card.total, total, "{file}");
        let errors: Vec<&str> = card.cases.iter().filter_map(|c| c.error.as_deref()).collect();
        if file.starts_with("good-") {
            assert_eq!(card.score, 100, "{}", grade::report::text(card));
        } else if file.starts_with("untouched-") {
            assert_eq!(card.score, 0);
            assert!(errors.iter().all(|e| e.contains("todo!()")));
        } else if file.starts_with("keeps-all-") {
            assert_eq!(card.passed, 4, "only the cases of gameplay events alone pass: {}", grade::report::text(card));
        } else if file.starts_with("loops-") {
            assert!(card.score > 0 && card.score < 100, "it loops only on level_end_quickplay: {}", grade::report::text(card));
            assert!(errors.iter().any(|e| e.contains("time budget") && e.contains("loop")), "{}", grade::report::text(card));
        } else if file.starts_with("old-contract-") {
            assert_eq!(card.score, 0);
            assert!(errors.iter().all(|e| e.contains("0.1.0") && e.contains("0.2.0") && e.contains("Rebuild")), "{errors:?}");
        } else if file.starts_with("garbage-") {
            assert_eq!(card.score, 0);
            assert!(errors.iter().all(|e| e.contains("WebAssembly")), "{errors:?}");
        } else {
            assert_eq!(card.score, 0);
            assert!(errors.iter().all(|e| e.contains("aggregate")), "the wrong kind of plugin: {errors:?}");
        }
    }
    let summary = grade::report::summary(&cards);
    assert!(summary.ends_with("30 guests: 12 at 100%, 10 at 0%, 8 in between"), "{summary}");
    let html = std::fs::read_to_string(guests.join("grade-report.html")).unwrap();
    assert_eq!(html.matches("<tr><td>").count(), 30);
    assert!(html.contains("good-00.wasm") && html.contains("class=\"fail\""));
}

#[test]
fn runnel_try_builds_grades_and_hot_swaps_a_participants_crate() {
    use runnel::config::PipelineConfig;
    use runnel::pipeline::{Overrides, Pipeline};
    use runnel::source::file::FileSource;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = runnel_tests::flood_it_lines();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let config = runnel_tests::admin_pipeline_file(dir.path(), &input, "workshop", "");
    let cfg = PipelineConfig::load(&config).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let handle: Arc<std::sync::Mutex<Option<runnel::plugin::reload::ReloadHandle>>> = Arc::default();
    let hook_handle = handle.clone();
    // The stream waits (after a few batches) until the participant's build
    // has been handed to the pipeline, however long the build takes.
    let source = runnel_tests::PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |batch| {
        let handle = hook_handle.lock().unwrap().clone().unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(600);
        while batch > 5 && handle.delivered() == 0 && !finished.load(Ordering::SeqCst) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(source)), ..Default::default() }).unwrap();
    *handle.lock().unwrap() = Some(pipeline.reload_handle());
    let server = runnel::cmd::run::start_admin(&cfg, None, &pipeline).unwrap().unwrap();
    let addr = server.addr().to_string();
    let status = pipeline.status();
    let participant = std::thread::spawn(move || {
        let crate_dir = runnel_tests::repo_root().join("guest-transforms/solutions/01-filter-gameplay");
        let card = runnel::cmd::try_exercise::run(&runnel::cmd::try_exercise::TryOptions {
            crate_dir,
            exercise: Some("01".into()),
            config: Some(config),
            admin: Some(addr),
            force: false,
        });
        done.store(true, Ordering::SeqCst);
        card
    });
    let counters = pipeline.run().unwrap();
    let card = participant.join().unwrap().unwrap();
    drop(server);
    assert_eq!(card.score, 100, "{}", grade::report::text(&card));
    assert!(card.cases.iter().all(|c| !c.held_back), "participants are graded on the visible cases");
    assert_eq!(counters.reloads, 1);
    let now = status.snapshot().transform.unwrap();
    assert!(now.starts_with("upload:solution_01_filter_gameplay.wasm@"), "{now}");
    assert!(counters.filtered > 0, "the swapped-in filter dropped non-gameplay events");
}

/// Held-back cases are the instructor's: they are not built into runnel
/// (a participant cannot print them), and grading uses them only when the
/// instructor's folder is given.
#[test]
fn held_back_cases_come_only_from_the_instructors_folder() {
    // As text, so the search is std's (optimised even in a debug build).
    let binary = String::from_utf8_lossy(&std::fs::read(runnel_tests::runnel_binary()).unwrap()).into_owned();
    let contains = |needle: &[u8]| binary.contains(std::str::from_utf8(needle).unwrap());
    for exercise in Exercise::bundled() {
        assert!(exercise.held_back.is_empty(), "{}: none built in", exercise.name);
        let with = exercise.clone().with_held_back(&solutions()).unwrap();
        assert!(!with.held_back.is_empty());
        let file = std::fs::read_to_string(solutions().join(&exercise.name).join("held-back.ndjson")).unwrap();
        for (line, case) in file.lines().zip(&with.held_back) {
            assert!(!contains(line.as_bytes()), "{}: held-back case {:?} is in the binary", exercise.name, case.name);
        }
    }
    let rt = runtime();
    let weekday = Exercise::find("02").unwrap();
    let reference = weekday.reference_plugin().unwrap();
    assert_eq!(grade::grade(&rt, &weekday, &reference, Which::All).total, weekday.visible.len());
    let e = Exercise::find("02").unwrap().with_held_back(std::path::Path::new("/nonexistent")).unwrap_err().to_string();
    assert!(e.contains("no held-back cases for 02-add-weekday"), "{e}");
}

/// Exercise 3 asks for `merge`: a count whose merge does nothing fails the
/// session cases, in the visible ones and the held-back ones.
#[test]
fn a_merge_that_does_nothing_fails_exercise_3() {
    let rt = runtime();
    let exercise = Exercise::find("03-count-per-user").unwrap().with_held_back(&solutions()).unwrap();
    let card = grade::grade(&rt, &exercise, &PluginSource::from_file(&built_guest("forgetful-merge")).unwrap(), Which::All);
    let failed: Vec<&str> = card.cases.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["two sessions joined", "sessions joined one by one"], "{}", grade::report::text(&card));
    let joined = card.cases.iter().find(|c| c.name == "two sessions joined").unwrap();
    assert!(joined.diff.iter().any(|d| d.contains("expected 5")), "{:?}", joined.diff);
    assert!(joined.hint.contains("merge"));
}
