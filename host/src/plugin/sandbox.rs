//! The sandbox's limits, enforced per plugin instance, and the typed errors
//! that say which one a guest ran into.
//!
//! - **Memory**: [`StoreLimiter`] counts the bytes of *all* the instance's
//!   linear memories (multi-memory is on, and a component has several core
//!   instances) against `max_memory_mib`, and caps the number of instances,
//!   memories and tables and the elements of all tables, so no combination
//!   of them gets past the limit.
//! - **Time**: the call budget is enforced by epoch interruption while wasm
//!   runs, and by [`shadow_clocks`] while the guest waits in WASI: the
//!   monotonic clock's `subscribe-duration` / `subscribe-instant` (what
//!   `std::thread::sleep` and `poll` timeouts use) trap when the wait would
//!   end past the call's deadline, so no guest can park the host thread. No
//!   other WASI pollable can block: there are no files, no network, and
//!   stdin is empty.
//!
//! Both report a [`SandboxLimit`] as the trap's error, so the host tells the
//! limits apart by type, never by message text.

use std::time::{Duration, Instant};
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::clocks::WasiClocksView as _;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
use wasmtime_wasi::p2::DynPollable;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What every plugin store holds: WASI with stderr kept (for panic
/// messages), the store's limiter and the running call's deadline.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimiter,
    /// When the call in progress runs out of budget (WASI waits check it).
    pub(crate) deadline: CallDeadline,
    /// The tail of the guest's stderr (its panic messages).
    pub stderr: super::stderr::StderrTail,
}

impl PluginState {
    pub(super) fn new(max_memory_bytes: usize, start_timeout: Duration) -> Self {
        let stderr = super::stderr::StderrTail::default();
        PluginState {
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            limits: StoreLimiter::new(max_memory_bytes),
            deadline: CallDeadline::starting_now(start_timeout, Phase::Start),
            stderr,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The interface [`shadow_clocks`] replaces, at the version wasmtime-wasi
/// links (guests importing any 0.2.x resolve to it). A wasmtime upgrade that
/// changes it fails the sandbox's `sleep` test, not silently.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Instances one plugin store may create (a component is a handful).
pub const MAX_INSTANCES: usize = 32;
/// Linear memories in one store, all counted against the memory limit.
pub const MAX_MEMORIES: usize = 16;
/// Tables in one store.
pub const MAX_TABLES: usize = 32;
/// Elements of all tables together (a pointer each).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// A limit a guest ran into; the error a limited call traps with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxLimit {
    /// Growing its memories to `wanted` bytes in all would pass `limit`.
    Memory { wanted: usize, limit: usize },
    /// More than the allowed memories, tables or instances.
    Count { what: &'static str, limit: usize },
    /// Its tables would pass [`MAX_TABLE_ELEMENTS`] elements.
    TableElements { wanted: usize },
    /// It asked WASI to wait `asked` while only `left` of the budget of
    /// `budget` for `phase` remained.
    Wait { asked: Duration, left: Duration, budget: Duration, phase: Phase },
}

impl std::fmt::Display for SandboxLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SandboxLimit::Memory { limit, .. } => {
                write!(f, "the plugin tried to grow its memory past the limit of {} MiB", limit >> 20)
            }
            SandboxLimit::Count { what, limit } => write!(f, "the plugin tried to create more than {limit} {what}"),
            SandboxLimit::TableElements { wanted } => {
                write!(f, "the plugin tried to grow its tables to {wanted} elements, past {MAX_TABLE_ELEMENTS}")
            }
            SandboxLimit::Wait { asked, left, budget, phase } => write!(
                f,
                "the plugin asked to wait {:.3} s (sleep or poll) with {} ms of its time budget of {} ms for {phase} left",
                asked.as_secs_f64(),
                left.as_millis(),
                budget.as_millis()
            ),
        }
    }
}

impl std::error::Error for SandboxLimit {}

/// The store's resource limiter: one memory budget for the whole instance.
pub struct StoreLimiter {
    max_memory: usize,
    /// Bytes of all linear memories so far.
    memory: usize,
    /// Elements of all tables so far.
    table_elements: usize,
}

impl StoreLimiter {
    pub fn new(max_memory: usize) -> Self {
        Self { max_memory, memory: 0, table_elements: 0 }
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = self.memory.saturating_sub(current).saturating_add(desired);
        if wanted > self.max_memory {
            return Err(SandboxLimit::Memory { wanted, limit: self.max_memory }.into());
        }
        self.memory = wanted;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = self.table_elements.saturating_sub(current).saturating_add(desired);
        if wanted > MAX_TABLE_ELEMENTS {
            return Err(SandboxLimit::TableElements { wanted }.into());
        }
        self.table_elements = wanted;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// What a time budget pays for. Starting a plugin (instantiating it and
/// running its `init`) has its own budget, apart from a batch's: an
/// interpreter such as CPython does its one-time work there, and a budget
/// that fits it would let an endless loop hold every batch for as long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Instantiation and `init` (`[sandbox] start_timeout_ms`).
    Start,
    /// One call on a batch (`[sandbox] call_timeout_ms`).
    Batch,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Start => "starting (instantiation and init)",
            Phase::Batch => "one batch",
        })
    }
}

/// The wall-clock deadline of the call in progress.
#[derive(Clone, Copy, Debug)]
pub struct CallDeadline {
    pub at: Instant,
    pub budget: Duration,
    pub phase: Phase,
}

impl CallDeadline {
    pub fn starting_now(budget: Duration, phase: Phase) -> Self {
        Self { at: Instant::now() + budget, budget, phase }
    }

    /// Allows a wait of `asked` only if it ends before the deadline.
    fn allow(&self, asked: Duration) -> Result<(), SandboxLimit> {
        let left = self.at.saturating_duration_since(Instant::now());
        if asked > left {
            return Err(SandboxLimit::Wait { asked, left, budget: self.budget, phase: self.phase });
        }
        Ok(())
    }
}

/// Replaces WASI's monotonic-clock subscriptions (linked by
/// `add_to_linker_sync`) with ones that trap when the wait would outlast the
/// call's budget, and otherwise wait as WASI does.
pub fn shadow_clocks(linker: &mut Linker<PluginState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, PluginState>, (nanos,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            let state = store.data_mut();
            state.deadline.allow(Duration::from_nanos(nanos))?;
            Ok((state.clocks().subscribe_duration(nanos)?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, PluginState>, (when,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            let state = store.data_mut();
            let now = state.clocks().now()?;
            state.deadline.allow(Duration::from_nanos(when.saturating_sub(now)))?;
            Ok((state.clocks().subscribe_instant(when)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn the_memory_limit_counts_every_memory_of_the_instance() {
        let mut l = StoreLimiter::new(10 << 20);
        assert!(l.memory_growing(0, 6 << 20, None).unwrap());
        // A second memory may not take the total past the limit.
        let e = l.memory_growing(0, 6 << 20, None).unwrap_err();
        assert_eq!(e.downcast_ref::<SandboxLimit>(), Some(&SandboxLimit::Memory { wanted: 12 << 20, limit: 10 << 20 }));
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        // Growing the first counts only the difference.
        assert!(l.memory_growing(6 << 20, 7 << 20, None).is_err());
        assert_eq!((l.instances(), l.memories(), l.tables()), (MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES));
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(l.table_growing(0, 1, None).is_err());
    }

    #[test]
    fn a_wait_past_the_deadline_is_refused() {
        let d = CallDeadline::starting_now(Duration::from_millis(200), Phase::Batch);
        assert!(d.allow(Duration::from_millis(1)).is_ok());
        let e = d.allow(Duration::from_secs(3600)).unwrap_err();
        assert!(matches!(e, SandboxLimit::Wait { phase: Phase::Batch, .. }));
        assert!(e.to_string().contains("asked to wait 3600.000 s"), "{e}");
        // While starting, the start-up budget is the one named.
        let e = CallDeadline::starting_now(Duration::from_secs(10), Phase::Start).allow(Duration::from_secs(3600)).unwrap_err();
        assert!(e.to_string().contains("budget of 10000 ms for starting (instantiation and init)"), "{e}");
    }
}
