//! `hostile`: a transform that misbehaves on purpose, for the sandbox tests.
//!
//! Config (JSON): `{"mode": MODE, "when": EVENT_NAME}`. Events whose
//! `event_name` equals `when` trigger the misbehaviour; all others pass
//! through unchanged. Modes: `panic`, `loop`, `recurse`, `grow` (allocate
//! without bound), `print` (flood stdout and stderr on every event),
//! `huge` (emit a 16 MiB event), `sleep` (block in WASI's clock for an
//! hour), `nap` (sleep 1 ms, then pass the event: a wait within the budget
//! works), `bad-edit` (add a field whose value is not JSON), `read-bytes`
//! (read the whole event without asking for whole events), `init-panic`,
//! `init-refuse`, `init-loop` (never finish starting), `init-nap` (start
//! in 300 ms, as an interpreter might, then pass every event).

use runnel_sdk::{export_transform, parse_config, Emit, Event, Transform};
use serde::Deserialize;
use std::io::Write;

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    when: String,
}

pub struct Hostile {
    config: Config,
    hoard: Vec<Vec<u8>>,
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: &mut [u8; 64]) -> u64 {
    pad[(depth % 64) as usize] = depth as u8;
    let mut local = *pad;
    1 + recurse(depth + 1, &mut local) + local[0] as u64
}

impl Transform for Hostile {
    fn new(config: &str) -> Result<Self, String> {
        let config: Config = parse_config(config)?;
        match config.mode.as_str() {
            "init-panic" => panic!("hostile: panicking in init as configured"),
            "init-refuse" => return Err("hostile: refusing to start as configured".into()),
            "init-loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "init-nap" => std::thread::sleep(std::time::Duration::from_millis(300)),
            _ => {}
        }
        Ok(Self { config, hoard: Vec::new() })
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_name"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        if self.config.mode == "print" {
            let noise = vec![b'x'; 1 << 20];
            let _ = std::io::stdout().write_all(&noise);
            let _ = std::io::stderr().write_all(&noise);
        }
        let hit = event.str("event_name").is_some_and(|n| n == self.config.when);
        if hit {
            match self.config.mode.as_str() {
                "panic" => panic!("hostile: panicking on {}", self.config.when),
                "loop" => {
                    let mut i: u64 = 0;
                    loop {
                        i = std::hint::black_box(i.wrapping_add(1));
                    }
                }
                "recurse" => {
                    let mut pad = [0u8; 64];
                    let n = recurse(0, &mut pad);
                    return Err(format!("unreachable {n}"));
                }
                "grow" => loop {
                    self.hoard.push(vec![1u8; 1 << 20]);
                },
                "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
                "nap" => std::thread::sleep(std::time::Duration::from_millis(1)),
                "read-bytes" => return Err(format!("read {} bytes", event.bytes().len())),
                "bad-edit" => {
                    out.keep().add_field("weekday", "Friday, unquoted");
                    return Ok(());
                }
                "huge" => {
                    let mut big = b"{\"huge\":\"".to_vec();
                    big.extend(std::iter::repeat_n(b'x', 16 << 20));
                    big.extend_from_slice(b"\"}");
                    out.replace(big);
                    return Ok(());
                }
                _ => {}
            }
        }
        out.keep();
        Ok(())
    }
}

export_transform!(Hostile);
