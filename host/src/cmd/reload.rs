//! `runnel reload`: asks a running pipeline (through its admin server) to
//! swap in new plugin versions, and prints what became of each.

use anyhow::{Context, Result};
use std::path::PathBuf;

use super::admin_client;
use crate::plugin::contract::Kind;
use crate::plugin::reload::Outcome;

/// One outcome as the admin server answers it (`ReloadOutcome` on the wire).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Answer {
    pub kind: Kind,
    pub plugin: String,
    pub outcome: Outcome,
    pub message: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}: {}", self.kind, self.plugin, self.outcome, self.message)
    }
}

pub struct ReloadOptions {
    /// The running pipeline's file (its `[admin]` address and token).
    pub config: PathBuf,
    /// The admin server's address, if not the file's.
    pub admin: Option<String>,
    /// New versions to upload; with neither, the pipeline re-reads its
    /// plugin files.
    pub transform: Option<PathBuf>,
    pub aggregate: Option<PathBuf>,
}

/// Sends the request(s); returns each outcome as the server gave it.
pub fn run(opts: &ReloadOptions) -> Result<Vec<Answer>> {
    let (base, token) = admin_client::connect(&opts.config, opts.admin.as_deref())?;
    let mut outcomes = Vec::new();
    let uploads: Vec<_> = [(Kind::Transform, &opts.transform), (Kind::Aggregate, &opts.aggregate)]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
        .collect();
    if uploads.is_empty() {
        outcomes.extend(send(ureq::post(&format!("{base}/api/reload")), &token, None)?);
    }
    for (kind, path) in uploads {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let req = ureq::post(&format!("{base}/api/plugins/{kind}")).set("x-plugin-name", &name);
        outcomes.extend(send(req, &token, Some(&bytes))?);
    }
    Ok(outcomes)
}

fn send(req: ureq::Request, token: &str, body: Option<&[u8]>) -> Result<Vec<Answer>> {
    let v = admin_client::post(req, token, body)?;
    let answers = if v.is_array() { serde_json::from_value(v) } else { serde_json::from_value(v).map(|a| vec![a]) };
    answers.context("the admin server's answer is not a list of outcomes: is it a runnel of the same version?")
}
