//! Property tests of the window engine against brute force:
//! - fixed, sliding and session counts equal a direct computation;
//! - every element the engine accepts is counted exactly once, and it drops
//!   exactly the elements a direct lateness check drops;
//! - in accumulating mode each window's last pane equals the sum of its
//!   discarding-mode panes, with identical firing (same panes, same timing).

use proptest::prelude::*;
use runnel::accumulate::{Accumulators, EventBatch, NativeCount};
use runnel::window::{Admission, EngineConfig, Pane, Timing, Trigger, TriggerSpec, Value, Window, WindowEngine, WindowFn};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Step {
    Element { key: u8, ts: i64 },
    Watermark(i64),
    ProcessingTime(i64),
}

fn engine(window_fn: WindowFn, trigger: &TriggerSpec, accumulating: bool, lateness: i64) -> WindowEngine {
    WindowEngine::new(EngineConfig { window_fn, trigger: Trigger::compile(trigger).unwrap(), accumulating, allowed_lateness: lateness })
}

/// Runs steps, then ends the input; returns panes and admissions.
fn run(e: WindowEngine, steps: &[Step]) -> (Vec<Pane>, Vec<Admission>) {
    run_in_parts(e, steps, usize::MAX)
}

/// [`run`], with each watermark advance drained in parts of about
/// `max_panes` panes (as the pipeline drains the end of a bounded input).
fn run_in_parts(mut e: WindowEngine, steps: &[Step], max_panes: usize) -> (Vec<Pane>, Vec<Admission>) {
    let mut count = NativeCount::default();
    let mut panes = Vec::new();
    let mut admissions = Vec::new();
    // Drains what is pending; with `watermark`, first advances to it in parts.
    let mut drain = |e: &mut WindowEngine, panes: &mut Vec<Pane>, watermark: Option<i64>| loop {
        let more = watermark.is_some_and(|w| e.advance_watermark_within(w, max_panes));
        let (ops, mut p) = e.drain();
        count.apply(&ops, &mut EventBatch::default(), &mut p).unwrap();
        panes.extend(p);
        if !more {
            break;
        }
    };
    for step in steps {
        match step {
            Step::Element { key, ts } => admissions.push(e.process(&format!("k{key}"), *ts, 0)),
            Step::Watermark(w) => {
                drain(&mut e, &mut panes, Some(*w));
                continue;
            }
            Step::ProcessingTime(p) => e.advance_processing_time(*p),
        }
        drain(&mut e, &mut panes, None);
    }
    drain(&mut e, &mut panes, Some(i64::MAX));
    (panes, admissions)
}

fn value(p: &Pane) -> i64 {
    match p.value {
        Some(Value::Int(v)) => v,
        ref other => panic!("not a count: {other:?}"),
    }
}

/// Brute force: the windows an element belongs to.
fn windows_of(window_fn: WindowFn, ts: i64) -> Vec<Window> {
    match window_fn {
        WindowFn::Fixed { size } => {
            let start = ts.div_euclid(size) * size;
            vec![Window { start, end: start + size }]
        }
        WindowFn::Sliding { size, period } => {
            // Every multiple of the period whose window contains ts.
            let mut out = Vec::new();
            let mut start = ts.div_euclid(period) * period;
            while start + size > ts {
                out.push(Window { start, end: start + size });
                start -= period;
            }
            out
        }
        _ => unreachable!(),
    }
}

/// Brute force: sessions per key from sorted times, merging overlapping
/// `[t, t + gap)` ranges.
fn sessions(times: &BTreeMap<u8, Vec<i64>>, gap: i64) -> BTreeMap<(String, Window), i64> {
    let mut out = BTreeMap::new();
    for (key, ts) in times {
        let mut ts = ts.clone();
        ts.sort();
        let mut current: Option<(Window, i64)> = None;
        for t in ts {
            match &mut current {
                Some((w, n)) if t < w.end => {
                    w.end = w.end.max(t + gap);
                    *n += 1;
                }
                _ => {
                    if let Some((w, n)) = current.take() {
                        out.insert((format!("k{key}"), w), n);
                    }
                    current = Some((Window { start: t, end: t + gap }, 1));
                }
            }
        }
        if let Some((w, n)) = current {
            out.insert((format!("k{key}"), w), n);
        }
    }
    out
}

fn elements() -> impl Strategy<Value = Vec<(u8, i64)>> {
    prop::collection::vec((0u8..6, 0i64..600_000), 1..120)
}

fn as_map(panes: &[Pane]) -> BTreeMap<(String, Window), i64> {
    let mut out = BTreeMap::new();
    for p in panes {
        assert_eq!(p.timing, Timing::OnTime, "an exact watermark makes every pane on time");
        assert!(out.insert((p.key.clone(), p.window), value(p)).is_none(), "one pane per window");
    }
    out
}

/// An early trigger firing after `early` elements and then after each
/// late one, or the default trigger.
fn early_or_default(early: Option<u32>) -> TriggerSpec {
    match early {
        None => TriggerSpec::Default,
        Some(n) => TriggerSpec::AfterWatermark {
            early: Some(Box::new(TriggerSpec::AfterCount { count: n })),
            late: Some(Box::new(TriggerSpec::AfterCount { count: 1 })),
        },
    }
}

/// The elements, with watermark advances among them: before element `i`,
/// the `i % (marks + spacing)`-th smallest mark, when there is one.
fn with_watermarks(els: &[(u8, i64)], marks: &[i64], spacing: usize) -> Vec<Step> {
    let mut marks = marks.to_vec();
    marks.sort();
    let mut steps = Vec::new();
    for (i, &(key, ts)) in els.iter().enumerate() {
        if let Some(&m) = marks.get(i % (marks.len() + spacing)) {
            steps.push(Step::Watermark(m));
        }
        steps.push(Step::Element { key, ts });
    }
    steps
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fixed_and_sliding_counts_equal_a_direct_count(
        els in elements(),
        size in 1i64..100_000,
        period_div in 1i64..5,
        sliding in any::<bool>(),
    ) {
        let window_fn = if sliding {
            WindowFn::Sliding { size, period: (size / period_div).max(1) }
        } else {
            WindowFn::Fixed { size }
        };
        let steps: Vec<Step> = els.iter().map(|&(key, ts)| Step::Element { key, ts }).collect();
        let (panes, _) = run(engine(window_fn, &TriggerSpec::Default, false, 0), &steps);
        let mut expected = BTreeMap::new();
        for &(key, ts) in &els {
            for w in windows_of(window_fn, ts) {
                *expected.entry((format!("k{key}"), w)).or_insert(0) += 1;
            }
        }
        prop_assert_eq!(as_map(&panes), expected);
    }

    #[test]
    fn session_counts_equal_a_direct_sessionisation(els in elements(), gap in 1i64..50_000) {
        let steps: Vec<Step> = els.iter().map(|&(key, ts)| Step::Element { key, ts }).collect();
        let (panes, _) = run(engine(WindowFn::Session { gap }, &TriggerSpec::Default, false, 0), &steps);
        let mut times: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
        for &(key, ts) in &els {
            times.entry(key).or_default().push(ts);
        }
        prop_assert_eq!(as_map(&panes), sessions(&times, gap));
    }

    #[test]
    fn accepted_elements_are_counted_once_and_late_ones_dropped_exactly(
        els in elements(),
        marks in prop::collection::vec(0i64..700_000, 1..20),
        lateness in prop::sample::select(vec![0i64, 10_000, 60_000]),
    ) {
        let size = 60_000;
        let window_fn = WindowFn::Fixed { size };
        let steps = with_watermarks(&els, &marks, 3);
        let (panes, admissions) = run(engine(window_fn, &TriggerSpec::Default, false, lateness), &steps);
        // Brute force: replay the watermark, drop elements at or past end + lateness.
        let mut wm = i64::MIN;
        let mut expected: BTreeMap<(String, Window), i64> = BTreeMap::new();
        let mut expected_admissions = Vec::new();
        for s in &steps {
            match *s {
                Step::Watermark(m) => wm = wm.max(m),
                Step::Element { key, ts } => {
                    let w = windows_of(window_fn, ts)[0];
                    if wm >= w.end + lateness {
                        expected_admissions.push(Admission::Late);
                    } else {
                        expected_admissions.push(Admission::Accepted);
                        *expected.entry((format!("k{key}"), w)).or_insert(0) += 1;
                    }
                }
                Step::ProcessingTime(_) => {}
            }
        }
        prop_assert_eq!(admissions, expected_admissions);
        let mut counted: BTreeMap<(String, Window), i64> = BTreeMap::new();
        for p in &panes {
            *counted.entry((p.key.clone(), p.window)).or_insert(0) += value(p);
        }
        counted.retain(|_, v| *v > 0);
        prop_assert_eq!(counted, expected);
    }

    #[test]
    fn accumulating_last_pane_equals_the_sum_of_discarding_panes(
        els in elements(),
        marks in prop::collection::vec(0i64..700_000, 1..20),
        early in 1u32..4,
        sliding in any::<bool>(),
    ) {
        let window_fn = if sliding {
            WindowFn::Sliding { size: 60_000, period: 20_000 }
        } else {
            WindowFn::Fixed { size: 60_000 }
        };
        let trigger = TriggerSpec::AfterWatermark {
            early: Some(Box::new(TriggerSpec::AfterCount { count: early })),
            late: Some(Box::new(TriggerSpec::AfterProcessingTime { delay_s: 5.0 })),
        };
        let mut marks = marks.clone();
        marks.sort();
        let mut steps = Vec::new();
        for (i, &(key, ts)) in els.iter().enumerate() {
            steps.push(Step::ProcessingTime(i as i64 * 1_000_000));
            if let Some(&m) = marks.get(i % (marks.len() + 2)) {
                steps.push(Step::Watermark(m));
            }
            steps.push(Step::Element { key, ts });
        }
        steps.push(Step::ProcessingTime(i64::MAX / 2));
        let (acc, _) = run(engine(window_fn, &trigger, true, 30_000), &steps);
        let (dis, _) = run(engine(window_fn, &trigger, false, 30_000), &steps);
        let firing = |v: &[Pane]| v.iter().map(|p| (p.key.clone(), p.window, p.index, p.timing)).collect::<Vec<_>>();
        prop_assert_eq!(firing(&acc), firing(&dis), "both modes fire the same panes");
        let mut sums: BTreeMap<(String, Window), i64> = BTreeMap::new();
        for p in &dis {
            *sums.entry((p.key.clone(), p.window)).or_insert(0) += value(p);
        }
        let mut last: BTreeMap<(String, Window), (u32, i64)> = BTreeMap::new();
        for p in &acc {
            let e = last.entry((p.key.clone(), p.window)).or_insert((p.index, value(p)));
            if p.index >= e.0 {
                *e = (p.index, value(p));
            }
        }
        let last: BTreeMap<_, _> = last.into_iter().map(|(k, (_, v))| (k, v)).collect();
        prop_assert_eq!(last, sums);
    }

    #[test]
    fn sessions_with_late_data_count_every_accepted_element_once(
        els in elements(),
        marks in prop::collection::vec(0i64..700_000, 1..20),
        gap in 1_000i64..40_000,
        lateness in prop::sample::select(vec![0i64, 5_000, 30_000]),
        early in prop::option::of(1u32..3),
    ) {
        let trigger = early_or_default(early);
        let steps = with_watermarks(&els, &marks, 2);
        let (panes, admissions) = run(engine(WindowFn::Session { gap }, &trigger, false, lateness), &steps);
        let mut wm = i64::MIN;
        let mut expected = Vec::new();
        for s in &steps {
            match *s {
                Step::Watermark(m) => wm = wm.max(m),
                Step::Element { ts, .. } => expected.push(if wm >= ts + gap + lateness { Admission::Late } else { Admission::Accepted }),
                Step::ProcessingTime(_) => {}
            }
        }
        prop_assert_eq!(&admissions, &expected);
        let accepted = admissions.iter().filter(|a| **a == Admission::Accepted).count() as i64;
        let counted: i64 = panes.iter().map(value).sum();
        prop_assert_eq!(counted, accepted, "every accepted element is in exactly one discarding pane");
        for p in &panes {
            prop_assert!(p.window.end - p.window.start >= gap, "a session is at least one gap long");
        }
    }

    #[test]
    fn draining_a_watermark_advance_in_parts_fires_the_same_panes_in_order(
        els in elements(),
        marks in prop::collection::vec(0i64..700_000, 0..10),
        parts in 1usize..6,
        kind in 0u8..3,
        lateness in prop::sample::select(vec![0i64, 30_000]),
        early in prop::option::of(1u32..3),
    ) {
        let window_fn = match kind {
            0 => WindowFn::Fixed { size: 60_000 },
            1 => WindowFn::Sliding { size: 60_000, period: 20_000 },
            _ => WindowFn::Session { gap: 20_000 },
        };
        let trigger = early_or_default(early);
        let steps = with_watermarks(&els, &marks, 3);
        let (whole, whole_admissions) = run(engine(window_fn, &trigger, false, lateness), &steps);
        let (parted, parted_admissions) = run_in_parts(engine(window_fn, &trigger, false, lateness), &steps, parts);
        let described =
            |v: &[Pane]| v.iter().map(|p| (p.key.clone(), p.window, p.index, p.timing, p.is_last, value(p))).collect::<Vec<_>>();
        prop_assert_eq!(described(&parted), described(&whole));
        prop_assert_eq!(parted_admissions, whole_admissions);
    }
}
