//! The command-line commands; `main.rs` only parses arguments.

pub mod admin_client;
pub mod beam;
pub mod bench;
pub mod build;
pub mod check;
pub mod demo;
pub mod dlq;
pub mod drain;
pub mod grade;
pub mod publish;
pub mod reload;
pub mod replay;
pub mod run;
pub mod setup;
pub mod status;
pub mod try_exercise;

use crate::deadletter::DeadLetters;
use crate::pipeline::Counters;

/// Prints a run's summary to stderr.
pub fn print_summary(c: &Counters, dead: &DeadLetters) {
    eprintln!();
    eprintln!(
        "{} events in {:.2} s ({:.0} events/s): {} windowed, {} filtered out, {} dead letters, {} panes",
        c.events_in,
        c.elapsed.as_secs_f64(),
        c.events_per_second(),
        c.elements,
        c.filtered,
        dead.total(),
        c.panes
    );
    for ((stage, kind), n) in dead.counts() {
        eprintln!("  dead letters: {n} at {} ({kind})", stage.as_str());
    }
    if dead.total() > 0 {
        eprintln!("  dead letters are in {}", dead.path().display());
    }
    eprintln!(
        "  time in plugins: transform {:.0} ns/event ({:.0} inside the plugin, the rest the host's read and edits), aggregate {:.0} ns/event",
        c.transform_ns_per_event(),
        c.transform_guest_ns_per_event(),
        c.aggregate_ns_per_event()
    );
    if c.reloads + c.refused_reloads + c.quarantines > 0 {
        eprintln!("  hot reloads: {} swapped in, {} refused, {} quarantined", c.reloads, c.refused_reloads, c.quarantines);
    }
    if c.transform_restarts > 0 {
        let by: Vec<String> = c.transform_restarts_by.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        eprintln!("  the transform plugin was restarted {} times after failures ({})", c.transform_restarts, by.join(", "));
        if let Some(last) = &c.last_restart {
            eprintln!("  the last restart's reason: {last}");
        }
    }
}
