//! Builds every guest crate in the workspace for `wasm32-wasip2` (profile
//! `guest`), so `cargo run -- demo` and `cargo test` need no manual step.
//! The host embeds the bundled guests (`plugin::bundled`); tests find all of
//! them through the `RUNNEL_GUEST_DIR` compile-time variable.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.parent().expect("host/ lives in the workspace root").to_path_buf();
    for watched in ["guest-transforms", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    ensure_wasm_target();
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--profile", "guest", "--target", "wasm32-wasip2", "--workspace"])
        .args(["--exclude", "runnel", "--exclude", "runnel-tests", "--exclude", "runnel-beam"])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the guests");
    if !status.success() {
        panic!(
            "building the guest plugins for wasm32-wasip2 failed (see the errors above). \
             If the target is missing, run `rustup target add wasm32-wasip2`."
        );
    }
    let out = target_dir.join("wasm32-wasip2").join("guest");
    println!("cargo:rustc-env=RUNNEL_GUEST_DIR={}", out.display());
}

/// A toolchain that was installed before rust-toolchain.toml named the
/// target lacks it: add it once, so a fresh machine needs no manual step.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    if libdir.is_some_and(|d| d.exists()) {
        return;
    }
    let status = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
    if !status.is_ok_and(|s| s.success()) {
        println!("cargo:warning=could not add the wasm32-wasip2 target; run `rustup target add wasm32-wasip2`");
    }
}
