//! `runnel-limit FILE [--rows]`: the benchmark's work as one plain loop; prints
//! its rate (and, with `--rows`, its windows as `user,window_start_us,count`).

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, rows) = match args.as_slice() {
        [file] => (file, false),
        [file, flag] if flag == "--rows" => (file, true),
        _ => bail!("usage: runnel-limit FILE [--rows]  (FILE: Flood It events, one JSON object per line)"),
    };
    let counted = runnel_limit::count_file(std::path::Path::new(file))?;
    if rows {
        for row in &counted.rows {
            println!("{row}");
        }
    }
    eprintln!(
        "{} events in {:.3} s = {:.0} events/s, {} windows",
        counted.events,
        counted.elapsed.as_secs_f64(),
        counted.events_per_second(),
        counted.rows.len()
    );
    Ok(())
}
