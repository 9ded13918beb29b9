//! Metrics: per-stage latency histograms the pipeline keeps, and the
//! Prometheus text exposition of a [`Snapshot`] (`GET /metrics`).

use std::fmt::Write as _;

use crate::status::Snapshot;
pub use crate::telemetry::{Histogram, StageLatencies, BUCKETS};

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One unlabelled sample with its HELP and TYPE lines.
fn metric(out: &mut String, kind: &str, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    metric(out, "counter", name, help, value)
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    metric(out, "gauge", name, help, value)
}

/// The snapshot in the Prometheus text format (version 0.0.4).
pub fn render(s: &Snapshot) -> String {
    let c = &s.counters.counts;
    let mut out = String::new();
    counter(&mut out, "runnel_events_in_total", "Events read from the source.", c.events_in);
    counter(&mut out, "runnel_events_filtered_total", "Input events the transform emitted nothing for.", c.filtered);
    counter(&mut out, "runnel_elements_total", "Transform outputs handed to windowing.", c.elements);
    counter(&mut out, "runnel_late_total", "Elements dropped as later than the allowed lateness (also dead letters).", c.late);
    counter(&mut out, "runnel_panes_total", "Panes emitted.", c.panes);
    counter(&mut out, "runnel_transform_restarts_total", "Fresh transform instances after failures.", c.transform_restarts);
    counter(&mut out, "runnel_reloads_total", "Plugin versions swapped in.", c.reloads);
    counter(&mut out, "runnel_reload_refusals_total", "Plugin versions refused (the old one kept running).", c.refused_reloads);
    counter(&mut out, "runnel_quarantines_total", "Transform versions quarantined.", c.quarantines);
    counter(&mut out, "runnel_sink_rows_total", "Rows the sink accepted.", s.sink_rows);
    counter(&mut out, "runnel_sink_rejected_total", "Rows the sink refused (dead-lettered).", s.sink_rejected);
    counter(&mut out, "runnel_sink_retries_total", "Sink write requests retried after throttling or server errors.", s.sink_retries);
    let _ = writeln!(
        out,
        "# HELP runnel_dead_letters_total Dead letters, by stage and kind of reason.\n# TYPE runnel_dead_letters_total counter"
    );
    if s.dead_letters_by_reason.is_empty() {
        let _ = writeln!(out, "runnel_dead_letters_total 0");
    }
    for (stage, reason, n) in &s.dead_letters_by_reason {
        let _ = writeln!(out, "runnel_dead_letters_total{{stage=\"{}\",reason=\"{}\"}} {n}", escape(stage), escape(reason));
    }
    if let Some(w) = s.watermark_us {
        gauge(&mut out, "runnel_watermark_seconds", "The input watermark, as a Unix time.", w as f64 / 1e6);
        let lag = (s.processing_time_us - w) as f64 / 1e6;
        gauge(&mut out, "runnel_watermark_lag_seconds", "How far the watermark trails processing time.", lag);
    }
    gauge(&mut out, "runnel_late_share_recent", "Share of the last five minutes' elements dropped as late (0 to 1).", s.late_recent.share);
    gauge(&mut out, "runnel_open_windows", "Open (key, window) states.", s.open_windows);
    gauge(&mut out, "runnel_keys", "Keys with open windows.", s.keys);
    gauge(&mut out, "runnel_unacked_messages", "Input messages held unacknowledged for open windows.", s.counters.unacked_messages);
    if let Some(d) = &s.counters.source_dedup {
        let _ = writeln!(
            out,
            "# HELP runnel_source_duplicates_total Deliveries of a message already counted, dropped: while held, or acknowledged within the bound.\n\
             # TYPE runnel_source_duplicates_total counter\n\
             runnel_source_duplicates_total{{of=\"held\"}} {}\n\
             runnel_source_duplicates_total{{of=\"acknowledged\"}} {}",
            d.duplicates_held, d.duplicates_acknowledged
        );
        gauge(&mut out, "runnel_source_ids_remembered", "Acknowledged message ids remembered to recognise a redelivery.", d.ids_remembered);
        gauge(&mut out, "runnel_source_ids_held", "Message ids held (delivered, results not yet written).", d.ids_held);
        gauge(&mut out, "runnel_source_dedup_oldest_seconds", "How far back an acknowledged id is remembered now.", d.oldest_s);
        counter(
            &mut out,
            "runnel_source_ids_evicted_early_total",
            "Remembered ids dropped before dedup_window_s because of dedup_max_ids.",
            d.evicted_early,
        );
    }
    gauge(&mut out, "runnel_up", "1 while the pipeline runs.", u8::from(s.running));
    let _ = writeln!(out, "# HELP runnel_plugin_info The running plugin versions.\n# TYPE runnel_plugin_info gauge");
    if let Some(t) = &s.transform {
        let _ = writeln!(out, "runnel_plugin_info{{kind=\"transform\",version=\"{}\"}} 1", escape(t));
    }
    let _ = writeln!(out, "runnel_plugin_info{{kind=\"aggregate\",version=\"{}\"}} 1", escape(&s.aggregate));
    let _ = writeln!(out, "# HELP runnel_plugin_ns_per_event Time in the plugin per event.\n# TYPE runnel_plugin_ns_per_event gauge");
    let _ = writeln!(out, "runnel_plugin_ns_per_event{{kind=\"transform\"}} {}", s.counters.transform_ns_per_event);
    let _ = writeln!(out, "runnel_plugin_ns_per_event{{kind=\"aggregate\"}} {}", s.counters.aggregate_ns_per_event);
    let l = &s.latency;
    let _ = writeln!(out, "# HELP runnel_stage_seconds Per-batch latency of each stage.\n# TYPE runnel_stage_seconds histogram");
    for (stage, h) in
        [("source", &l.source), ("transform", &l.transform), ("window", &l.window), ("aggregate", &l.aggregate), ("sink", &l.sink)]
    {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.counts) {
            cumulative += n;
            let _ = writeln!(out, "runnel_stage_seconds_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "runnel_stage_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "runnel_stage_seconds_sum{{stage=\"{stage}\"}} {}", h.sum_seconds);
        let _ = writeln!(out, "runnel_stage_seconds_count{{stage=\"{stage}\"}} {}", h.count);
    }
    out
}
