#!/usr/bin/env bash
# Runs all of runnel's tests on a fresh machine of this kind (Debian with
# rustup and the Google Cloud CLI). It installs what is missing, starts what
# the tests need, and stops exactly what it started.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -- NAME    # only tests whose name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain comes from rust-toolchain.toml; a toolchain installed before
# that file named the wasm target lacks it (host/build.rs adds it too).
rustup target add wasm32-wasip2 >/dev/null

# Unit, integration and end-to-end tests of the host and the event format,
# the plugins (as WebAssembly, built by host/build.rs), and the Beam
# conformance replays.
cargo test --locked -p runnel -p runnel-tests -p runnel-event "$@"
