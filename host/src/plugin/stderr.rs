//! A plugin's stderr, kept as a short tail instead of discarded: when a
//! call traps, the last line the guest wrote (Rust's panic message, e.g.
//! `panicked at src/lib.rs:20:5: not yet implemented: …`) goes into the
//! reason. Writes never fail and never block, so a guest flooding stderr
//! costs it only the copy of its last few KiB.

use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much of the stream is kept.
const TAIL: usize = 4096;

/// The tail of one store's stderr; clones share it.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().expect("not poisoned");
        if bytes.len() >= TAIL {
            tail.clear();
            tail.extend_from_slice(&bytes[bytes.len() - TAIL..]);
        } else {
            tail.extend_from_slice(bytes);
            if tail.len() > TAIL {
                let extra = tail.len() - TAIL;
                tail.drain(..extra);
            }
        }
    }

    /// Forgets what was written (before a call).
    pub fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }

    /// What a panicking guest said: the text after "panicked at", on one
    /// line; for a Python plugin (whose runtime panics on an exception it
    /// could not hand back), the exception and where it was raised.
    pub fn panic_message(&self) -> Option<String> {
        let tail = self.0.lock().expect("not poisoned");
        let text = String::from_utf8_lossy(&tail);
        let at = text.rfind("panicked at ")?;
        if let Some(exception) = python_exception(&text[..at]) {
            return Some(exception.chars().take(300).collect());
        }
        let message: String = text[at..].split_whitespace().collect::<Vec<_>>().join(" ");
        let message = message.split(" note: run with `RUST_BACKTRACE").next().unwrap_or(&message).to_string();
        Some(message.chars().take(300).collect())
    }
}

/// The last Python traceback in `text`, as "ExceptionType: message (File
/// "app.py", line 12, in transform)".
fn python_exception(text: &str) -> Option<String> {
    let start = text.rfind("Traceback (most recent call last):")?;
    let lines: Vec<&str> = text[start..].lines().skip(1).collect();
    // The exception is the first line after the frames (frames and their
    // source lines are indented).
    let exception = lines.iter().find(|l| !l.is_empty() && !l.starts_with(' '))?;
    match lines.iter().rev().find(|l| l.trim_start().starts_with("File \"")) {
        Some(place) => Some(format!("{exception} ({})", place.trim())),
        None => Some(exception.to_string()),
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only the p2 stream above is linked; nothing writes through this one.
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(1 << 20)
    }
}

#[async_trait::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_finds_the_panic() {
        let tail = StderrTail::default();
        tail.push(&vec![b'x'; 10_000]);
        tail.push(b"thread '<unnamed>' panicked at src/lib.rs:20:5:\nnot yet implemented: keep gameplay events\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
        assert_eq!(tail.panic_message().as_deref(), Some("panicked at src/lib.rs:20:5: not yet implemented: keep gameplay events"));
        tail.clear();
        assert_eq!(tail.panic_message(), None);
    }

    #[test]
    fn names_the_exception_of_a_python_plugin() {
        // What componentize-py's runtime writes when a Python exception
        // escapes an export: the traceback, then its own panic.
        let tail = StderrTail::default();
        tail.push(b"Traceback (most recent call last):\n  File \"/0/runnel_sdk/transform.py\", line 125, in transform\n    plugin.transform(event, out)\n  File \"/1/app.py\", line 42, in transform\n    raise Escape(\"hostile: escaping on poison\")\napp.Escape: hostile: escaping on poison\n");
        tail.push(b"\nthread '<unnamed>' panicked at runtime/src/lib.rs:1280:25:\nPython function threw an unexpected exception\n");
        assert_eq!(
            tail.panic_message().as_deref(),
            Some("app.Escape: hostile: escaping on poison (File \"/1/app.py\", line 42, in transform)")
        );
    }
}
