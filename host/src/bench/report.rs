//! The report of a `runnel bench` run: markdown tables (BENCHMARKS.md is
//! made of them), one summary line per case, and an SVG bar chart of the
//! rates on a log scale.

use std::fmt::Write;

use super::Results;

/// The targets of the benchmark issue, judged on a full run only.
const TARGET_RATE: f64 = 300_000.0;
const STRETCH_RATE: f64 = 500_000.0;
/// WASM / native twins in the same run (the fast-path issue's target).
const TARGET_NATIVE_RATIO: f64 = 0.8;
/// Shares of the limit (the plain program) the fast-path issue asks for.
const TARGET_WASM_OF_LIMIT: f64 = 0.75;
const TARGET_NATIVE_OF_LIMIT: f64 = 0.9;
const TARGET_BEAM_STREAMING: f64 = 100.0;
/// #17: runnel / Flink SQL at parallelism 1 (was 2.5× before the fast path).
const TARGET_FLINK: f64 = 4.0;
/// runnel with Python plugins / Beam's Python DirectRunner in batch mode
/// (the Python plugins issue's target).
const TARGET_PYTHON_OVER_BEAM_BATCH: f64 = 5.0;
/// #18: Beam with runnel's plugins no slower than the job in plain Beam Python.
const TARGET_PLUGINS_ON_BEAM: f64 = 1.0;

fn verdict(smoke: bool, met: bool) -> &'static str {
    match (smoke, met) {
        (true, _) => "smoke run, not judged",
        (false, true) => "met",
        (false, false) => "MISSED",
    }
}

fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line per case, for the terminal and the top of the report.
pub fn summary(r: &Results) -> Vec<String> {
    let (wasm, native) = (r.wasm_rate(), r.native_rate());
    let mut lines = vec![
        format!(
            "end to end, one thread: {} events/s with WASM plugins over {} events (target ≥ 300,000, stretch 500,000: {}{})",
            thousands(wasm),
            thousands(r.events as f64),
            verdict(r.smoke, wasm >= TARGET_RATE),
            if !r.smoke && wasm >= STRETCH_RATE { ", stretch met" } else { "" }
        ),
        format!(
            "native twins: {} events/s; WASM / native = {:.2} (target ≥ {TARGET_NATIVE_RATIO}: {})",
            thousands(native),
            wasm / native,
            verdict(r.smoke, wasm / native >= TARGET_NATIVE_RATIO)
        ),
        format!(
            "the limit (one plain Rust loop, same windows): {} events/s; WASM plugins = {:.2} of it (target ≥ {TARGET_WASM_OF_LIMIT}: {}), \
             native twins = {:.2} (target ≥ {TARGET_NATIVE_OF_LIMIT}: {})",
            thousands(r.limit_rate()),
            wasm / r.limit_rate(),
            verdict(r.smoke, wasm / r.limit_rate() >= TARGET_WASM_OF_LIMIT),
            native / r.limit_rate(),
            verdict(r.smoke, native / r.limit_rate() >= TARGET_NATIVE_OF_LIMIT)
        ),
    ];
    if let (Some(first), Some(last)) = (r.calls.first(), r.calls.last()) {
        lines.push(format!(
            "plugin call cost: the WASM transform costs {:.0} ns/event more than its native twin in batches of {}, {:.0} ns/event more in batches of {}",
            first.transform_wasm_ns - first.transform_native_ns,
            first.batch,
            last.transform_wasm_ns - last.transform_native_ns,
            last.batch
        ));
    }
    if let Some(on_peer_input) = r.runnel_on_peer_input {
        for p in &r.peers {
            let ratio = on_peer_input / p.events_per_second;
            let target = if p.name.contains("streaming") {
                format!(" (target ≥ {TARGET_BEAM_STREAMING}×: {})", verdict(r.smoke, ratio >= TARGET_BEAM_STREAMING))
            } else if p.name.contains("Flink") {
                format!(" (target ≥ {TARGET_FLINK}×: {})", verdict(r.smoke, ratio >= TARGET_FLINK))
            } else {
                String::new()
            };
            lines.push(format!("runnel / {}: {:.1}×{target}; same windows: {}", p.name, ratio, if p.same_windows { "yes" } else { "NO" }));
        }
    }
    if let Some(python) = &r.python_on_peer_input {
        let beam_batch = r.peers.iter().find(|p| p.name.contains("Beam") && p.name.contains("batch"));
        let versus = beam_batch.map_or(String::new(), |b| {
            let ratio = python.events_per_second / b.events_per_second;
            format!(
                "; / {}: {ratio:.1}× (target ≥ {TARGET_PYTHON_OVER_BEAM_BATCH}×: {})",
                b.name,
                verdict(r.smoke, ratio >= TARGET_PYTHON_OVER_BEAM_BATCH)
            )
        });
        lines.push(format!(
            "runnel with Python plugins: {} events/s{versus}; same windows: {}",
            thousands(python.events_per_second),
            if python.same_windows { "yes" } else { "NO" }
        ));
    }
    let plugins = r.peers.iter().find(|p| p.name == super::peers::PLUGINS_ON_BEAM);
    let plain = r.peers.iter().find(|p| p.name.contains("Beam") && p.name.contains("batch"));
    if let (Some(plugins), Some(plain)) = (plugins, plain) {
        let ratio = plugins.events_per_second / plain.events_per_second;
        lines.push(format!(
            "Beam with runnel's plugins / the same job in plain Beam Python, batch: {ratio:.2}× (target ≥ {TARGET_PLUGINS_ON_BEAM}×: {})",
            verdict(r.smoke, ratio >= TARGET_PLUGINS_ON_BEAM)
        ));
    }
    for e in &r.peer_errors {
        lines.push(format!("peer failed: {}", e.lines().next().unwrap_or_default()));
    }
    lines
}

/// The markdown section for this run.
pub fn markdown(r: &Results, plot: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## End to end, plugins, peers (`runnel bench`{})\n", if r.smoke { " --smoke" } else { "" });
    for line in summary(r) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n![events per second, log scale]({plot})\n");
    let _ = writeln!(md, "| pipeline ({} Flood It events, file → add-weekday → fixed 60 s per user → count-events → null sink) | events/s, median | rounds |", thousands(r.events as f64));
    let _ = writeln!(md, "|---|---|---|");
    let rounds = |xs: &[f64]| xs.iter().map(|x| thousands(*x)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(md, "| WASM plugins (the product) | {} | {} |", thousands(r.wasm_rate()), rounds(&r.wasm));
    let _ = writeln!(md, "| native twins of the plugins, in the host pipeline | {} | {} |", thousands(r.native_rate()), rounds(&r.native));
    let _ = writeln!(
        md,
        "| the limit: one plain Rust loop, sonic-rs, no plugins, no pipeline (`runnel-limit`) | {} | {} |",
        thousands(r.limit_rate()),
        rounds(&r.limit)
    );
    if let (Some(w), Some(n)) = (&r.wasm_breakdown, &r.native_breakdown) {
        let _ = writeln!(md, "\n| where an event's time goes (median round), ns/event | WASM plugins | native twins |");
        let _ = writeln!(md, "|---|---|---|");
        type Part = fn(&super::Breakdown) -> f64;
        let rows: [(&str, Part); 5] = [
            ("the host's read of each event for the transform (one scan, the declared fields, the edits)", |b| b.transform_host),
            ("inside the transform plugin", |b| b.transform_guest),
            ("the aggregate plugin", |b| b.aggregate),
            ("the rest: reading the file, windowing and triggers, the sink", |b| b.rest),
            ("total", |b| b.total),
        ];
        for (name, get) in rows {
            let _ = writeln!(md, "| {name} | {:.0} | {:.0} |", get(w), get(n));
        }
    }
    let _ = writeln!(
        md,
        "\n| batch size | transform WASM ns/event | transform native ns/event | aggregate WASM ns/add | aggregate native ns/add |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for c in &r.calls {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} |",
            c.batch, c.transform_wasm_ns, c.transform_native_ns, c.aggregate_wasm_ns, c.aggregate_native_ns
        );
    }
    if let Some(on_peer_input) = r.runnel_on_peer_input {
        let _ = writeln!(md, "\n| on the peers' input | events | events/s | runnel / peer | windows | same windows as runnel |");
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        let _ =
            writeln!(md, "| runnel, WASM plugins | {} | {} | 1.0 | | |", r.peers.first().map_or(0, |p| p.events), thousands(on_peer_input));
        for p in r.python_on_peer_input.iter().chain(&r.peers) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.1}× | {} | {} |",
                p.name,
                p.events,
                thousands(p.events_per_second),
                on_peer_input / p.events_per_second,
                p.windows,
                if p.same_windows { "yes" } else { "NO" }
            );
        }
    }
    md
}

/// Horizontal bars, log scale: runnel, its native limit and the peers.
pub fn svg(r: &Results) -> String {
    let mut bars = vec![
        ("runnel, WASM plugins".to_string(), r.wasm_rate()),
        ("runnel, native plugins".to_string(), r.native_rate()),
        ("the limit (plain Rust loop)".to_string(), r.limit_rate()),
    ];
    for p in r.python_on_peer_input.iter().chain(&r.peers) {
        bars.push((p.name.clone(), p.events_per_second));
    }
    bars.retain(|(_, v)| v.is_finite() && *v > 0.0);
    let (left, width, row) = (360.0, 420.0, 34.0);
    let height = 60.0 + row * bars.len() as f64;
    let lo = 2.0_f64; // 100 events/s
    let hi = bars.iter().map(|b| b.1.log10()).fold(6.0_f64, f64::max).ceil();
    let x = |v: f64| left + width * (v.log10() - lo) / (hi - lo);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">Events per second on one core (log scale), same run</text>\n",
        left + width + 120.0
    );
    for decade in (lo as i32)..=(hi as i32) {
        let gx = x(10f64.powi(decade));
        let _ = writeln!(
            s,
            "<line x1=\"{gx}\" y1=\"30\" x2=\"{gx}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{gx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">1e{decade}</text>",
            height - 20.0,
            height - 6.0
        );
    }
    for (i, (name, v)) in bars.iter().enumerate() {
        let y = 36.0 + row * i as f64;
        let colour = if name.starts_with("runnel") { "#2b6cb0" } else { "#a0aec0" };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"22\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{}</text>",
            left - 8.0,
            y + 15.0,
            (x(*v) - left).max(1.0),
            x(*v) + 6.0,
            y + 15.0,
            thousands(*v)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(f64::NAN), "n/a");
    }
}
