//! WebAssembly plugins: one wasmtime engine, loading components and checking
//! them against the contract in `wit/`, and calling transforms and
//! aggregates inside a sandbox.
//!
//! - [`runtime`]: the `Engine`, the WASI linker (nothing granted), the epoch
//!   ticker behind per-call time budgets, and per-store memory limits;
//! - [`contract`]: which world a component implements, or why it implements none;
//! - [`stderr`]: the tail of a guest's stderr, for its panic messages;
//! - [`transform`] / [`aggregate`]: typed callers with trap handling;
//! - [`reload`]: hot reload: loading and checking new versions off the event path;
//! - [`handover`]: swapping the aggregate and what becomes of open windows;
//! - [`bundled`]: the guests compiled into the `runnel` binary.

pub mod aggregate;
pub mod bindings;
pub mod bundled;
pub mod cache;
pub mod contract;
pub mod handover;
pub mod reload;
pub mod runtime;
pub mod sandbox;
pub mod stderr;
pub mod transform;

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// A plugin's bytes and where they came from.
#[derive(Clone)]
pub struct PluginSource {
    /// A path, or `bundled:NAME`.
    pub name: String,
    pub bytes: Arc<[u8]>,
    /// The first 16 hex digits of the BLAKE3 hash of `bytes`: the plugin's
    /// version as recorded in panes and dead letters.
    pub hash: String,
}

impl PluginSource {
    pub fn from_bytes(name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        let hash = blake3::hash(&bytes).to_hex()[..16].to_string();
        Self { name: name.into(), bytes, hash }
    }

    /// The version label recorded in panes, dead letters and reloads: `name@hash`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.hash)
    }

    /// Reads a `.wasm` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = crate::files::read_regular(path, "plugin", crate::files::MAX_PLUGIN_BYTES)
            .context("build the plugin with `cargo build --release --target wasm32-wasip2` (or `runnel build DIR`)")?;
        Ok(Self::from_bytes(path.display().to_string(), bytes))
    }

    /// Resolves a reference from a config or the command line: a bundled
    /// guest's name (`count-events`) or a path to a `.wasm` file.
    pub fn resolve(reference: &str, base: &Path) -> Result<Self> {
        if let Some(bytes) = bundled::find(reference) {
            return Ok(Self::from_bytes(format!("bundled:{reference}"), bytes));
        }
        let looks_like_path = reference.ends_with(".wasm") || reference.contains('/');
        if !looks_like_path {
            anyhow::bail!(
                "no bundled plugin is called {reference:?}; bundled plugins: {}; \
                 or give a path to a .wasm file",
                bundled::names().join(", ")
            );
        }
        let path = base.join(reference);
        Self::from_file(&path)
    }
}

/// `component` with a custom section `runnel-build` holding `tag` appended:
/// the same code, another content hash, so another version to the host
/// (tests and benchmarks use it to reload "a rebuilt plugin").
pub fn with_build_tag(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"runnel-build";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // a custom section
    let mut len = payload.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}
