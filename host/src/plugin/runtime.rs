//! The plugin runtime: one wasmtime [`Engine`] with epoch interruption, a
//! component [`Linker`] with WASI preview 2 linked but nothing granted (no
//! files, network, environment or arguments; stdout discarded, the tail of
//! stderr kept for panic messages),
//! and the per-store limits that make up the sandbox (see [`super::sandbox`]).
//!
//! Compiled components are cached twice: in memory by content hash (a second
//! load of the same bytes, a reload back to a known version) and on disk as
//! precompiled artifacts (`NAME.cwasm`, keyed by the plugin's BLAKE3 hash and
//! the engine's compatibility hash), so a restart or a reload of a plugin
//! compiled before skips Cranelift and loads in well under a millisecond.
//! The disk cache is private and every artifact authenticated before it is
//! loaded ([`super::cache`]).

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use super::cache::FunctionCache;
use super::sandbox::{CallDeadline, SandboxLimit};
pub use super::sandbox::{Phase, PluginState};
use super::PluginSource;

/// How long one epoch tick lasts; time budgets are whole ticks.
pub const TICK: Duration = Duration::from_millis(5);

/// Sandbox limits applied to every plugin call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget for one call (one batch).
    pub call_timeout: Duration,
    /// Wall-clock budget for starting a plugin: instantiating it and its
    /// `init` (an interpreter's one-time work goes here, not into a batch).
    pub start_timeout: Duration,
    /// Linear memory one plugin instance may grow to.
    pub max_memory_bytes: usize,
}

/// Where precompiled artifacts go: `RUNNEL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/runnel`, else `$HOME/.cache/runnel`; `None` when none is
/// set (the cache is then in memory only).
pub fn default_cache_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("RUNNEL_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("runnel")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("runnel")))
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompiledFrom {
    /// Already compiled in this process.
    Memory,
    /// A precompiled artifact from the disk cache.
    Disk,
    /// Compiled with Cranelift now.
    Compiled,
}

impl Default for Limits {
    fn default() -> Self {
        Self { call_timeout: Duration::from_millis(1000), start_timeout: Duration::from_millis(10_000), max_memory_bytes: 64 << 20 }
    }
}

impl Limits {
    /// The time budget of `phase`.
    pub fn budget(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Start => self.start_timeout,
            Phase::Batch => self.call_timeout,
        }
    }
}

/// The engine and linker all plugins share.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<PluginState>,
    limits: Limits,
    /// Compiled components by content hash: loading a known plugin again
    /// (a reload, a second slot) skips compilation.
    compiled: Mutex<HashMap<String, Component>>,
    /// The on-disk artifact cache, with the engine's compatibility hash
    /// that is part of every artifact's name.
    disk: Option<(super::cache::ArtifactCache, String)>,
    /// Compiled functions, shared with the engine's Cranelift.
    functions: Arc<FunctionCache>,
}

impl PluginRuntime {
    /// A runtime with the default on-disk cache ([`default_cache_dir`]).
    pub fn new(limits: Limits) -> Result<Self> {
        Self::with_cache(limits, default_cache_dir())
    }

    /// A runtime whose precompiled artifacts live in `cache_dir` (`None`:
    /// in memory only).
    pub fn with_cache(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // `RUNNEL_PROFILE=perfmap` names plugin code for `perf` (see
        // BENCHMARKS.md, "Profiling").
        if std::env::var("RUNNEL_PROFILE").is_ok_and(|p| p == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // Plugins share most of their code (every Python plugin carries the
        // same CPython): Cranelift reuses each function it compiled before,
        // in this process or (from the disk cache) an earlier one.
        let functions = Arc::new(FunctionCache::default());
        config
            .enable_incremental_compilation(functions.clone())
            .map_err(anyhow::Error::from)
            .context("cannot enable incremental compilation")?;
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("cannot create the WebAssembly engine")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("cannot link WASI")?;
        super::sandbox::shadow_clocks(&mut linker).context("cannot bound WASI's clock waits")?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("runnel-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .context("cannot start the epoch ticker thread")?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = format!("{:016x}", hasher.finish());
        let disk = cache_dir.and_then(|d| match super::cache::ArtifactCache::open(&d) {
            Ok(cache) => {
                functions.attach(cache.clone(), engine_hash.clone());
                Some((cache, engine_hash))
            }
            Err(e) => {
                eprintln!("warning: not using the compiled-plugin cache: {e:#}");
                None
            }
        });
        Ok(Self { engine, linker, limits, compiled: Mutex::new(HashMap::new()), disk, functions })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn linker(&self) -> &Linker<PluginState> {
        &self.linker
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiled functions reused instead of compiled (see [`FunctionCache`]).
    pub fn functions_reused(&self) -> u64 {
        self.functions.hits()
    }

    /// Compiles a component (or takes it from the cache), or says why the
    /// bytes are not one.
    pub fn compile(&self, source: &PluginSource) -> Result<Component> {
        self.compile_traced(source).map(|(c, _)| c)
    }

    /// [`compile`](Self::compile), saying which cache (if any) answered.
    pub fn compile_traced(&self, source: &PluginSource) -> Result<(Component, CompiledFrom)> {
        if let Some(c) = self.compiled.lock().expect("not poisoned").get(&source.hash) {
            return Ok((c.clone(), CompiledFrom::Memory));
        }
        let artifact = self.artifact_path(source);
        let mut from = CompiledFrom::Compiled;
        let cached = artifact.as_ref().and_then(|p| {
            let (cache, _) = self.disk.as_ref()?;
            let bytes = match cache.read(p) {
                Ok(bytes) => bytes?,
                Err(e) => {
                    tracing::warn!(path = %p.display(), "untrusted precompiled plugin, compiling again: {e:#}");
                    return None;
                }
            };
            // SAFETY: the bytes are exactly what `Component::serialize` of an
            // engine with the same compatibility hash (it is in the file
            // name) wrote: their keyed hash, under a key only this user can
            // read, matches the tag written with them, in a folder only this
            // user can write; wasmtime also checks the header and refuses an
            // artifact of another version or config.
            match unsafe { Component::deserialize(&self.engine, &bytes) } {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "unusable precompiled plugin; compiling again");
                    None
                }
            }
        });
        let component = match cached {
            Some(c) => {
                from = CompiledFrom::Disk;
                c
            }
            None => {
                let c = self.compile_uncached(source)?;
                if let Err(e) = self.functions.persist() {
                    tracing::warn!(error = %format!("{e:#}"), "cannot cache the compiled functions");
                }
                if let (Some(p), Some((cache, _))) = (&artifact, &self.disk) {
                    if let Err(e) = c.serialize().map_err(anyhow::Error::from).and_then(|bytes| cache.write(p, &bytes)) {
                        tracing::warn!(path = %p.display(), error = %format!("{e:#}"), "cannot cache the compiled plugin");
                    }
                }
                c
            }
        };
        self.compiled.lock().expect("not poisoned").insert(source.hash.clone(), component.clone());
        Ok((component, from))
    }

    /// Where the precompiled artifact of `source` is (or would be) cached.
    pub fn artifact_path(&self, source: &PluginSource) -> Option<PathBuf> {
        let (cache, engine) = self.disk.as_ref()?;
        let full = blake3::hash(&source.bytes).to_hex();
        Some(cache.dir().join(format!("{full}-{engine}.cwasm")))
    }

    fn compile_uncached(&self, source: &PluginSource) -> Result<Component> {
        if !source.bytes.starts_with(b"\0asm") {
            anyhow::bail!(
                "{} is not a WebAssembly file (it does not start with \\0asm); \
                 build the plugin with `cargo build --release --target wasm32-wasip2`",
                source.name
            );
        }
        Component::from_binary(&self.engine, &source.bytes).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "{} is not a valid WebAssembly component; a core module built for \
                 wasm32-unknown-unknown or wasm32-wasip1 will not do: build for wasm32-wasip2",
                source.name
            )
        })
    }

    /// Links a component against WASI (and nothing else), once per plugin.
    pub fn prepare(&self, component: &Component, source: &PluginSource) -> Result<wasmtime::component::InstancePre<PluginState>> {
        self.linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} needs imports runnel does not provide", source.name))
    }

    /// A fresh store with the sandbox applied, its start-up budget running
    /// (instantiation and `init` share it: [`Phase::Start`]).
    pub fn new_store(&self) -> Store<PluginState> {
        let state = PluginState::new(self.limits.max_memory_bytes, self.limits.start_timeout);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        arm_store(&mut store, self.limits, Phase::Start);
        store
    }

    /// Starts a batch call's time budget: epoch ticks while wasm runs, a
    /// wall-clock deadline for waits in WASI.
    pub fn arm(&self, store: &mut Store<PluginState>) {
        arm_store(store, self.limits, Phase::Batch);
    }
}

/// Starts the time budget of `phase` on `store` (see [`PluginRuntime::arm`]).
pub fn arm_store(store: &mut Store<PluginState>, limits: Limits, phase: Phase) {
    let budget = limits.budget(phase);
    let ticks = (budget.as_millis() / TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.data_mut().deadline = CallDeadline::starting_now(budget, phase);
}

/// Why a plugin call failed, told apart by the error's type (a wasmtime
/// [`Trap`](wasmtime::Trap) or a [`SandboxLimit`]), never by its text.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// Ran past the time budget of `phase` (wasm running).
    TimeBudget {
        budget: Duration,
        phase: Phase,
    },
    /// A sandbox limit: memory, counts, or a WASI wait past the budget.
    Limit(SandboxLimit),
    StackOverflow,
    /// Panicked or aborted, with the guest's own message when it left one.
    Panic {
        message: Option<String>,
    },
    /// Another trap, in wasmtime's words.
    Trap(String),
    /// The call failed before or around the guest (instantiation, linking).
    Host(String),
    /// The guest answered, but its answer breaks the contract.
    Contract(String),
}

impl Failure {
    /// Whether the call spent its whole time budget: a batch stops
    /// bisecting after a few of these. (A refused WASI wait costs no time;
    /// the batch's total span bounds those.)
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::TimeBudget { .. })
    }

    /// The dead-letter code of events this failure costs.
    pub fn code(&self) -> crate::deadletter::Reason {
        use crate::deadletter::Reason;
        match self {
            Failure::TimeBudget { .. } | Failure::Limit(SandboxLimit::Wait { .. }) => Reason::TimeBudget,
            Failure::Limit(_) => Reason::SandboxLimit,
            Failure::Contract(_) => Reason::ContractViolation,
            Failure::StackOverflow | Failure::Panic { .. } | Failure::Trap(_) | Failure::Host(_) => Reason::PluginFailed,
        }
    }

    /// Classifies a failed call's error, from the store it ran in (whose
    /// deadline says which budget was running, and whose stderr holds the
    /// guest's last words).
    pub fn of(err: &wasmtime::Error, state: &PluginState) -> Self {
        use wasmtime::Trap;
        if let Some(limit) = err.downcast_ref::<SandboxLimit>() {
            return Failure::Limit(*limit);
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::TimeBudget { budget: state.deadline.budget, phase: state.deadline.phase },
            Some(Trap::StackOverflow) => Failure::StackOverflow,
            Some(Trap::UnreachableCodeReached) => Failure::Panic { message: state.stderr.panic_message() },
            Some(other) => Failure::Trap(other.to_string()),
            None => Failure::Host(format!("{err:#}").lines().next().unwrap_or("unknown error").to_string()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TimeBudget { budget, phase: Phase::Batch } => {
                write!(f, "the plugin ran past its time budget of {} ms for one batch (an endless loop?)", budget.as_millis())
            }
            Failure::TimeBudget { budget, phase: Phase::Start } => write!(
                f,
                "the plugin ran past its time budget of {} ms for starting (instantiation and init): an endless loop, \
                 or a start that needs a larger [sandbox] start_timeout_ms",
                budget.as_millis()
            ),
            Failure::Limit(limit) => write!(f, "{limit}"),
            Failure::StackOverflow => write!(f, "the plugin overflowed its stack (unbounded recursion?)"),
            Failure::Panic { message: None } => write!(f, "the plugin panicked or aborted (wasm `unreachable`)"),
            Failure::Panic { message: Some(m) } => write!(f, "the plugin panicked or aborted (wasm `unreachable`): {m}"),
            Failure::Trap(t) => write!(f, "the plugin trapped: {t}"),
            Failure::Host(e) => write!(f, "the plugin call failed: {e}"),
            Failure::Contract(e) => write!(f, "the plugin broke the contract: {e}"),
        }
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> PluginRuntime {
        PluginRuntime::with_cache(Limits { max_memory_bytes: 48 << 20, ..Limits::default() }, None).unwrap()
    }

    fn instantiate(runtime: &PluginRuntime, wat: &str) -> Result<(), Failure> {
        let component = Component::from_binary(runtime.engine(), &wat::parse_str(wat).unwrap()).unwrap();
        let mut store = runtime.new_store();
        runtime.linker().instantiate(&mut store, &component).map(|_| ()).map_err(|e| Failure::of(&e, store.data()))
    }

    #[test]
    fn the_memory_limit_bounds_the_whole_instance_not_each_memory() {
        let runtime = runtime();
        // Two memories of 32 MiB: each under the 48 MiB limit, not both.
        let two = "(component (core module $m (memory 512) (memory 512)) (core instance (instantiate $m)))";
        let limit = SandboxLimit::Memory { wanted: 64 << 20, limit: 48 << 20 };
        assert_eq!(instantiate(&runtime, two).unwrap_err(), Failure::Limit(limit));
        // The same bytes in one memory is refused the same way, by type.
        let one = "(component (core module $m (memory 1024)) (core instance (instantiate $m)))";
        assert!(matches!(instantiate(&runtime, one).unwrap_err(), Failure::Limit(_)));
        assert!(instantiate(&runtime, "(component (core module $m (memory 256) (memory 256)) (core instance (instantiate $m)))").is_ok());
    }

    #[test]
    fn a_tampered_precompiled_plugin_is_compiled_again_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let source = PluginSource::from_bytes("identity", super::super::bundled::find("identity").unwrap().to_vec());
        let first = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
        assert_eq!(first.compile_traced(&source).unwrap().1, CompiledFrom::Compiled);
        let artifact = first.artifact_path(&source).unwrap();
        let trusted = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
        assert_eq!(trusted.compile_traced(&source).unwrap().1, CompiledFrom::Disk);
        // Overwrite code in the middle of the artifact, as an attacker would.
        let mut bytes = std::fs::read(&artifact).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle..middle + 64].fill(0xcc);
        std::fs::write(&artifact, &bytes).unwrap();
        let wary = PluginRuntime::with_cache(Limits::default(), Some(cache)).unwrap();
        assert_eq!(wary.compile_traced(&source).unwrap().1, CompiledFrom::Compiled, "not deserialised");
        assert_ne!(std::fs::read(&artifact).unwrap(), bytes, "rewritten");
    }

    #[test]
    fn a_plugin_compiled_in_another_process_lends_its_functions() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let bytes = super::super::bundled::find("add-weekday").unwrap().to_vec();
        let first = PluginRuntime::with_cache(Limits::default(), Some(cache.clone())).unwrap();
        first.compile_traced(&PluginSource::from_bytes("add-weekday", bytes.clone())).unwrap();
        // A later process compiles a plugin it has no artifact of whose
        // functions are the same (as every Python plugin's CPython is):
        // here, the same code with a custom section of its own.
        let mut other = bytes;
        other.extend_from_slice(&[0, 6, 5]);
        other.extend_from_slice(b"other");
        let later = PluginRuntime::with_cache(Limits::default(), Some(cache)).unwrap();
        let source = PluginSource::from_bytes("other", other);
        assert_eq!(later.compile_traced(&source).unwrap().1, CompiledFrom::Compiled);
        // Without the disk cache, only a plugin's own duplicate functions are.
        let alone = PluginRuntime::with_cache(Limits::default(), None).unwrap();
        alone.compile_traced(&source).unwrap();
        assert!(
            later.functions_reused() > 2 * alone.functions_reused(),
            "{} against {}",
            later.functions_reused(),
            alone.functions_reused()
        );
    }

    #[test]
    fn instances_and_tables_are_capped() {
        let runtime = runtime();
        let instances = |n: usize| format!("(component (core module $m) {})", "(core instance (instantiate $m))".repeat(n));
        assert!(instantiate(&runtime, &instances(8)).is_ok());
        assert!(instantiate(&runtime, &instances(super::super::sandbox::MAX_INSTANCES + 1)).is_err());
        // A table of 2^21 elements: each element is a pointer the host holds.
        let table = "(component (core module $m (table 2097152 funcref)) (core instance (instantiate $m)))";
        let err = instantiate(&runtime, table).unwrap_err();
        assert!(matches!(err, Failure::Limit(SandboxLimit::TableElements { .. })), "{err}");
    }
}
