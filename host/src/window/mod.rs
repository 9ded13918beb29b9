//! Event-time windowing: assigners, triggers, the per-(key, window) engine,
//! panes and watermarks.

pub mod assign;
pub mod engine;
pub mod pane;
pub mod trigger;
pub mod watermark;

pub use assign::{Window, WindowFn, WindowSpec};
pub use engine::{AccOp, Admission, EngineConfig, EngineStats, WindowEngine};
pub use pane::{Pane, Timing, Value};
pub use trigger::{Trigger, TriggerSpec};
