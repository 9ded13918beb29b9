//! `runnel drain`: asks a running pipeline (through its admin server) to end
//! its input, as Dataflow's Drain does: it stops pulling, fires and writes
//! every open window, acknowledges every message it counted, and exits.
//! Unlike a stop (SIGTERM or Ctrl-C), which leaves open windows to the next
//! run, nothing is left over; a message that arrives afterwards starts new
//! windows in the next run.

use anyhow::Result;
use std::path::Path;

/// Sends the request; returns the server's message.
pub fn run(config: &Path, admin: Option<&str>) -> Result<String> {
    let (base, token) = super::admin_client::connect(config, admin)?;
    let answer = super::admin_client::post(ureq::post(&format!("{base}/api/drain")), &token, None)?;
    Ok(answer["message"].as_str().unwrap_or("draining").to_string())
}
