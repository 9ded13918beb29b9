//! The benchmark's input: the bundled Flood It events, looped. Each pass is
//! shifted in event time by whole days past the data's span, so every loop
//! opens fresh windows (nothing arrives late) and the keys stay the users'.
//! The file is written once under `target/bench/data/` and reused.

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const DAY_US: i64 = 86_400_000_000;
const FIELD: &[u8] = b"\"event_timestamp\":";

/// The bundled events (examples/data, embedded in the binary), one line each.
pub fn bundled_lines() -> Result<Vec<String>> {
    let mut text = String::new();
    MultiGzDecoder::new(crate::source::synthetic::FLOOD_IT_GZ).read_to_string(&mut text).context("cannot read the bundled events")?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
}

/// Where `"event_timestamp":` 's number sits in `line`, and its value.
fn timestamp(line: &str) -> Option<(usize, usize, i64)> {
    let at = line.as_bytes().windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = line[at..].bytes().take_while(|b| b.is_ascii_digit()).count();
    Some((at, at + len, line[at..at + len].parse().ok()?))
}

/// `lines` repeated until `events` lines are written, each pass shifted.
pub fn looped(dir: &Path, lines: &[String], events: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("floodit-looped-{events}.ndjson"));
    let done = dir.join(format!("floodit-looped-{events}.done"));
    if done.exists() && path.exists() {
        return Ok(path);
    }
    let times: Vec<i64> = lines.iter().filter_map(|l| timestamp(l).map(|t| t.2)).collect();
    let span = times.iter().max().unwrap_or(&0) - times.iter().min().unwrap_or(&0);
    let shift = (span / DAY_US + 1) * DAY_US;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut written = 0;
    'passes: for pass in 0.. {
        for line in lines {
            if written == events {
                break 'passes;
            }
            match timestamp(line) {
                Some((start, end, ts)) => {
                    out.write_all(&line.as_bytes()[..start])?;
                    write!(out, "{}", ts + pass as i64 * shift)?;
                    out.write_all(&line.as_bytes()[end..])?;
                }
                None => out.write_all(line.as_bytes())?,
            }
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    std::fs::write(&done, "")?;
    Ok(path)
}

/// Reads `path` through once, so that it is in the page cache before any
/// timed round. A file written on an earlier day, or pushed out of memory
/// by a build since, would otherwise be read from disk by the first round
/// alone: a first WASM round at a tenth of the others' rate, twice, before
/// this.
pub fn warm(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    std::io::copy(&mut file, &mut std::io::sink()).with_context(|| format!("cannot read {}", path.display()))
}
