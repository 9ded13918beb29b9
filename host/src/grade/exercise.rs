//! The workshop exercises and their test cases.
//!
//! An exercise is a directory with `exercise.toml` (title, plugin kind,
//! config) and `cases.ndjson` (the cases participants see); the held-back
//! cases are in the instructor's `held-back.ndjson`, beside the reference
//! solution. The five exercises of `guest-transforms/exercises/` are
//! compiled into `runnel`, so `runnel grade 02-add-weekday guest.wasm`
//! works anywhere; a path to a directory of the same shape grades against
//! your own exercise.
//!
//! A case (one JSON object per line):
//! `{"name", "hint", "input": [events], "expect": [outputs],
//!   "expect_rejected": [input indexes], "config": {…}}` — for a transform
//! `expect` lists the output events in order; for an aggregate it lists
//! `{"key", "window_start", "value"}` panes of one-minute windows.
//! `guest-transforms/exercises/make_cases.py` writes the bundled cases.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

use crate::plugin::contract::Kind;

/// One test case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub hint: String,
    pub input: Vec<serde_json::Value>,
    pub expect: Vec<serde_json::Value>,
    /// Inputs the plugin must refuse (0-based).
    #[serde(default)]
    pub expect_rejected: Option<Vec<usize>>,
    /// The plugin's config for this case, instead of the exercise's.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Aggregates: the windows of this case, instead of fixed one-minute
    /// ones (session windows merge, so a case with them grades `merge`).
    #[serde(default)]
    pub window: Option<crate::window::WindowSpec>,
    #[serde(skip)]
    pub held_back: bool,
}

/// `exercise.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Definition {
    title: String,
    kind: String,
    #[serde(default)]
    config: String,
    #[serde(default)]
    reference: Option<String>,
}

/// An exercise, ready to grade.
#[derive(Clone, Debug)]
pub struct Exercise {
    /// `02-add-weekday`.
    pub name: String,
    pub title: String,
    pub kind: Kind,
    /// The config string plugins are started with.
    pub config: String,
    pub visible: Vec<Case>,
    pub held_back: Vec<Case>,
    /// The reference solution: `bundled:NAME`, or a guest crate built by
    /// `host/build.rs` (`solution-01-filter-gameplay`).
    pub reference: Option<String>,
}

// Only what participants may see is compiled in: the held-back cases stay
// in the instructor's folder (`guest-transforms/solutions/`), read at
// grading time with `--held-back DIR` ([`Exercise::with_held_back`]).
macro_rules! bundled {
    ($($name:literal),* $(,)?) => {
        &[$((
            $name,
            include_str!(concat!("../../../guest-transforms/exercises/", $name, "/exercise.toml")),
            include_str!(concat!("../../../guest-transforms/exercises/", $name, "/cases.ndjson")),
        )),*]
    };
}

/// Name, `exercise.toml`, visible cases.
const BUNDLED: &[(&str, &str, &str)] =
    bundled!("01-filter-gameplay", "02-add-weekday", "03-count-per-user", "04-revenue-per-user", "05-flag-anomalies");

impl Exercise {
    /// The bundled exercises, in order (visible cases only).
    pub fn bundled() -> Vec<Exercise> {
        BUNDLED.iter().map(|(name, def, visible)| Self::parse(name, def, visible, "").expect("bundled exercises are valid")).collect()
    }

    /// Adds the held-back cases from the instructor's folder: `DIR/NAME/
    /// held-back.ndjson` (a folder like `guest-transforms/solutions`), or
    /// `DIR/held-back.ndjson`.
    pub fn with_held_back(mut self, dir: &Path) -> Result<Exercise> {
        let path = [dir.join(&self.name).join("held-back.ndjson"), dir.join("held-back.ndjson")]
            .into_iter()
            .find(|p| p.exists())
            .with_context(|| {
                format!(
                    "no held-back cases for {} in {}: expected {}/held-back.ndjson",
                    self.name,
                    dir.display(),
                    dir.join(&self.name).display()
                )
            })?;
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        self.held_back = parse_cases(&text, true).with_context(|| format!("in {}", path.display()))?;
        Ok(self)
    }

    /// A bundled exercise by name (`02-add-weekday`, or just `02`), or a
    /// directory holding `exercise.toml` and `cases.ndjson` (and
    /// optionally `held-back.ndjson`).
    pub fn find(reference: &str) -> Result<Exercise> {
        let path = Path::new(reference);
        if path.join("exercise.toml").exists() {
            return Self::from_dir(path);
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(reference);
        let matches: Vec<Exercise> =
            Self::bundled().into_iter().filter(|e| e.name == name || e.name.split('-').next() == Some(name)).collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one")),
            _ => bail!(
                "no exercise {reference:?}: use one of {} (or a directory with exercise.toml and cases.ndjson)",
                Self::bundled().iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn from_dir(dir: &Path) -> Result<Exercise> {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| format!("cannot read {}", dir.join(f).display()));
        let held = std::fs::read_to_string(dir.join("held-back.ndjson")).unwrap_or_default();
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        Self::parse(&name, &read("exercise.toml")?, &read("cases.ndjson")?, &held).with_context(|| format!("in exercise {}", dir.display()))
    }

    fn parse(name: &str, definition: &str, visible: &str, held: &str) -> Result<Exercise> {
        let def: Definition = toml::from_str(definition).context("exercise.toml")?;
        let kind: Kind = def.kind.parse().map_err(|e| anyhow::anyhow!("exercise.toml: {e}"))?;
        let cases = parse_cases;
        Ok(Exercise {
            name: name.to_string(),
            title: def.title,
            kind,
            config: def.config,
            visible: cases(visible, false).context("cases.ndjson")?,
            held_back: cases(held, true).context("held-back.ndjson")?,
            reference: def.reference,
        })
    }

    /// The cases to grade (held-back ones only when they were added).
    pub fn cases(&self, which: super::Which) -> impl Iterator<Item = &Case> {
        let held: &[Case] = if which == super::Which::All { &self.held_back } else { &[] };
        self.visible.iter().chain(held)
    }

    /// The reference solution's plugin, if the exercise names one that is here.
    pub fn reference_plugin(&self) -> Result<crate::plugin::PluginSource> {
        let Some(reference) = &self.reference else {
            bail!("exercise {} names no reference solution: pass one with --reference", self.name);
        };
        if reference.starts_with("bundled:") {
            return crate::plugin::PluginSource::resolve(reference, Path::new(""));
        }
        let built = crate::plugin::bundled::built_guest(reference);
        crate::plugin::PluginSource::from_file(&built)
            .with_context(|| format!("the reference solution {reference} of {} is not built here: pass --reference", self.name))
    }

    /// The config string for a case.
    pub fn config_for(&self, case: &Case) -> String {
        case.config.as_ref().map(|c| c.to_string()).unwrap_or_else(|| self.config.clone())
    }
}

/// NDJSON test cases.
fn parse_cases(text: &str, held_back: bool) -> Result<Vec<Case>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let mut c: Case = serde_json::from_str(l).with_context(|| format!("case on line {}", i + 1))?;
            c.held_back = held_back;
            Ok(c)
        })
        .collect()
}
