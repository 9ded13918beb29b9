//! Scorecards as the grader prints them: one guest's cases as text, a
//! class as a summary table, and a self-contained HTML report.

use std::fmt::Write as _;

use super::Scorecard;

/// One guest's scorecard, case by case.
pub fn text(card: &Scorecard) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", card.exercise, card.plugin);
    for c in &card.cases {
        let mark = if c.passed { "PASS" } else { "FAIL" };
        let held = if c.held_back { " (held back)" } else { "" };
        let _ = writeln!(out, "  {mark}  {}{held}", c.name);
        if let Some(e) = &c.error {
            let _ = writeln!(out, "        the plugin failed: {e}");
        }
        for d in c.diff.iter().take(6) {
            let _ = writeln!(out, "        {d}");
        }
        if c.diff.len() > 6 {
            let _ = writeln!(out, "        … and {} more differences", c.diff.len() - 6);
        }
        if !c.passed && !c.hint.is_empty() {
            let _ = writeln!(out, "        hint: {}", c.hint);
        }
    }
    let _ = write!(out, "score: {}% ({} of {} cases)", card.score, card.passed, card.total);
    out
}

/// Why a guest's first failing case failed, in one line.
fn first_reason(card: &Scorecard) -> String {
    match card.first_failure() {
        None => String::new(),
        Some(c) => {
            let why = c.error.clone().or_else(|| c.diff.first().cloned()).unwrap_or_default();
            let why: String = why.chars().take(100).collect();
            format!("{}: {why}", c.name)
        }
    }
}

fn file_name(plugin: &str) -> &str {
    let path = plugin.rsplit_once('@').map(|(p, _)| p).unwrap_or(plugin);
    path.rsplit('/').next().unwrap_or(path)
}

/// A class's summary table, best first.
pub fn summary(cards: &[Scorecard]) -> String {
    let mut sorted: Vec<&Scorecard> = cards.iter().collect();
    sorted.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.plugin.cmp(&b.plugin)));
    let width = sorted.iter().map(|c| file_name(&c.plugin).len()).max().unwrap_or(5).max(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  score  cases  first failing case", "guest");
    for c in &sorted {
        let _ = writeln!(out, "{:<width$}  {:>4}%  {:>2}/{:<2}  {}", file_name(&c.plugin), c.score, c.passed, c.total, first_reason(c));
    }
    let full = cards.iter().filter(|c| c.score == 100).count();
    let zero = cards.iter().filter(|c| c.score == 0).count();
    let _ = write!(out, "{} guests: {full} at 100%, {zero} at 0%, {} in between", cards.len(), cards.len() - full - zero);
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A self-contained HTML page: one row per guest, one column per case.
pub fn html(exercise: &str, cards: &[Scorecard]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>runnel grade: {ex}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}\
         .pass{{background:#dfd}}.fail{{background:#fdd}}small{{color:#555}}</style></head><body>\
         <h1>{ex}</h1><p>{n} guests</p><table><tr><th>guest</th><th>score</th>",
        ex = escape(exercise),
        n = cards.len()
    );
    if let Some(first) = cards.first() {
        for c in &first.cases {
            let _ = write!(out, "<th>{}{}</th>", escape(&c.name), if c.held_back { " <small>(held back)</small>" } else { "" });
        }
    }
    out.push_str("</tr>");
    for card in cards {
        let _ = write!(out, "<tr><td>{}</td><td>{}%</td>", escape(file_name(&card.plugin)), card.score);
        for c in &card.cases {
            let detail = c.error.iter().chain(c.diff.iter().take(3)).cloned().collect::<Vec<_>>().join("<br>");
            let _ = write!(
                out,
                "<td class=\"{}\">{}<br><small>{}</small></td>",
                if c.passed { "pass" } else { "fail" },
                if c.passed { "pass" } else { "fail" },
                if c.passed { String::new() } else { escape(&detail).replace("&lt;br&gt;", "<br>") }
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></body></html>\n");
    out
}
