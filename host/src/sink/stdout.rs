//! The stdout sink: for each window, a line with its most active keys —
//! the workshop's "most active users every minute".

use anyhow::Result;
use std::collections::BTreeMap;
use std::io::Write;

use super::{Provenance, RejectedRow, Sink};
use crate::window::{Pane, Window};

pub struct StdoutSink<W: Write> {
    out: W,
    top: usize,
    /// Print at most this many windows (the rest are counted).
    max_windows: Option<usize>,
    printed: usize,
    skipped: usize,
    header: bool,
}

impl<W: Write> StdoutSink<W> {
    pub fn new(out: W, top: usize, max_windows: Option<usize>) -> Self {
        Self { out, top: top.max(1), max_windows, printed: 0, skipped: 0, header: false }
    }

    /// Windows not printed because of the limit.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

fn short(key: &str) -> String {
    if key.chars().count() > 10 {
        format!("{}…", key.chars().take(8).collect::<String>())
    } else {
        key.to_string()
    }
}

fn window_label(w: &Window) -> String {
    match (chrono::DateTime::from_timestamp_micros(w.start), chrono::DateTime::from_timestamp_micros(w.end)) {
        (Some(s), Some(e)) if w.end - w.start < 86_400_000_000 => {
            format!("{} {}–{}", s.format("%Y-%m-%d"), s.format("%H:%M:%S"), e.format("%H:%M:%S"))
        }
        _ => "global window".to_string(),
    }
}

impl<W: Write> Sink for StdoutSink<W> {
    fn write(&mut self, panes: &[Pane], _provenance: &Provenance) -> Result<Vec<RejectedRow>> {
        let mut by_window: BTreeMap<(Window, &'static str), Vec<&Pane>> = BTreeMap::new();
        for p in panes {
            by_window.entry((p.window, p.timing.as_str())).or_default().push(p);
        }
        for ((window, timing), mut group) in by_window {
            if self.max_windows.is_some_and(|m| self.printed >= m) {
                self.skipped += 1;
                continue;
            }
            if !self.header {
                writeln!(self.out, "{:<30} {:>5} {:>7}  most active (events)", "window (UTC)", "keys", "pane")?;
                self.header = true;
            }
            group.sort_by(|a, b| {
                let (va, vb) = (a.value.as_ref().and_then(|v| v.as_i64()), b.value.as_ref().and_then(|v| v.as_i64()));
                vb.cmp(&va).then_with(|| a.key.cmp(&b.key))
            });
            let top: Vec<String> = group
                .iter()
                .take(self.top)
                .map(|p| {
                    let v = p.value.as_ref().map(|v| v.to_json()).unwrap_or_default();
                    format!("{} ({v})", short(&p.key))
                })
                .collect();
            writeln!(self.out, "{:<30} {:>5} {:>7}  {}", window_label(&window), group.len(), timing, top.join(", "))?;
            self.printed += 1;
        }
        self.out.flush()?;
        Ok(Vec::new())
    }
}
