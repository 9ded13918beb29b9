#!/usr/bin/env bash
# Runs all of runnel's tests on a fresh machine of this kind (Debian with
# rustup and the Google Cloud CLI). It installs what is missing, starts what
# the tests need (the Pub/Sub and BigQuery emulators), and stops exactly
# what it started, whatever happens.
#
#   scripts/test.sh              # everything
#   scripts/test.sh NAME         # only tests whose name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain comes from rust-toolchain.toml; a toolchain installed before
# that file named the wasm target lacks it (host/build.rs adds it too).
rustup target add wasm32-wasip2 >/dev/null

# The dashboard test drives a real headless Chromium (Debian's package).
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium for the dashboard test ..." >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
fi

# One style and no lint warnings (rustfmt.toml; clippy's defaults).
cargo fmt --all --check || { echo "run \`cargo fmt --all\` and commit the result" >&2; exit 1; }
cargo clippy --locked -p runnel -p runnel-tests -p runnel-event -p runnel-sdk -p runnel-limit -p runnel-beam --all-targets -- -D warnings

# Build first, so the emulators do not idle through a long compile.
cargo test --locked -p runnel -p runnel-tests -p runnel-event -p runnel-sdk -p runnel-limit --no-run

# The Python plugins the tests use (guest-transforms/python), built now so
# that no test shares the machine with a build (the first creates the
# builder's virtualenv: componentize-py from PyPI).
cargo build --locked -p runnel
for dir in guest-transforms/python/{examples,exercises,solutions,test-guests}/*/; do
  name=$(basename "$(dirname "$dir")")-$(basename "$dir")
  target/debug/runnel build "$dir" -o "target/test-artifacts/python/$name.wasm" >/dev/null
done

# Apache Beam (pinned, from PyPI) and the runnel_beam package with its
# bridge, for the tests that run pipeline files on Beam (tests/tests/beam.rs).
scripts/beam.sh setup

trap 'scripts/emulators.sh stop' EXIT
eval "$(scripts/emulators.sh start)"

# Unit, integration and end-to-end tests of the host, the event format and the SDK,
# the plugins (as WebAssembly, built by host/build.rs), the Beam conformance
# replays, and the workshop path against the emulators.
cargo test --locked -p runnel -p runnel-tests -p runnel-event -p runnel-sdk -p runnel-limit "$@"

# The benchmarks in smoke mode (small sizes, targets not judged), so every
# case keeps working; `scripts/bench.sh` runs them in full (BENCHMARKS.md).
if [ $# -eq 0 ]; then
  scripts/bench.sh --smoke
  # The wheel (the runnel binary and runnel_beam in one), installed into a
  # fresh virtualenv: `runnel demo`, and one pipeline file on both engines.
  scripts/wheel.sh --test
fi
