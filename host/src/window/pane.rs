//! Panes: what a window emits when its trigger fires, with Beam's pane info
//! (timing, index, is-last), and the aggregate's value for it.

use serde::Serialize;

use super::assign::Window;

/// Beam's `PaneInfo.Timing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Timing {
    Early,
    OnTime,
    Late,
}

impl Timing {
    pub fn as_str(&self) -> &'static str {
        match self {
            Timing::Early => "EARLY",
            Timing::OnTime => "ON_TIME",
            Timing::Late => "LATE",
        }
    }
}

/// What an aggregate extracted for one pane.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
    /// A JSON document, as text.
    Json(String),
}

impl Value {
    /// The value as JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) if v.is_finite() => serde_json::to_string(v).expect("finite"),
            Value::Float(_) => "null".into(),
            Value::Text(s) => serde_json::to_string(s).expect("a string serialises"),
            Value::Json(s) => s.clone(),
        }
    }

    /// The value as a JSON value (`null` for text that is not JSON).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.to_json()).unwrap_or(serde_json::Value::Null)
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// One emitted pane of one key's window.
#[derive(Clone, Debug, PartialEq)]
pub struct Pane {
    pub key: String,
    pub window: Window,
    pub timing: Timing,
    pub index: u32,
    pub is_last: bool,
    /// Filled in once the aggregate has run; `None` only in between.
    pub value: Option<Value>,
    /// The aggregate version that computed it, when not the running one
    /// (a version finishing its windows after a hot reload).
    pub computed_by: Option<std::sync::Arc<str>>,
}

impl Pane {
    /// A placeholder pane for a plugin's smoke call.
    pub fn smoke() -> Self {
        Pane {
            key: String::new(),
            window: Window { start: 0, end: 1 },
            timing: Timing::OnTime,
            index: 0,
            is_last: true,
            value: None,
            computed_by: None,
        }
    }
}
