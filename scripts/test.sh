#!/usr/bin/env bash
# Runs all of runnel's tests on a fresh machine of this kind (Debian with
# rustup and the Google Cloud CLI). It installs what is missing, starts what
# the tests need (the Pub/Sub and BigQuery emulators), and stops exactly
# what it started, whatever happens. Each phase prints its wall time at the
# end (the test phase, each test binary's), so a slow one shows in every log.
#
#   scripts/test.sh              # everything (CI runs this: .ci/run)
#   scripts/test.sh --quick      # the inner loop: fmt, clippy, and every test
#                                # that needs no emulator, no Beam and no
#                                # browser (the others are named as skipped)
#   scripts/test.sh NAME         # only tests whose name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi

# The phase timer: `phase NAME COMMAND...` runs the command and notes its
# wall time; the table is printed when the script ends, also on failure.
PHASES=()
phase() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name" >&2
  "$@"
  PHASES+=("$(printf '%-40s %5d s' "$name" $((SECONDS - start)))")
}
EMULATORS=
finish() {
  local status=$?
  if [ -n "$EMULATORS" ]; then scripts/emulators.sh stop || true; fi
  echo "phases (wall time):" >&2
  printf '  %s\n' "${PHASES[@]}" >&2
  printf '  %-40s %5d s\n' "total" "$SECONDS" >&2
  exit "$status"
}
trap finish EXIT

# The toolchain comes from rust-toolchain.toml; a toolchain installed before
# that file named the wasm target lacks it (host/build.rs adds it too).
rustup target add wasm32-wasip2 >/dev/null

CRATES=(-p runnel -p runnel-tests -p runnel-event -p runnel-sdk -p runnel-limit)

# One style and no lint warnings (rustfmt.toml; clippy's defaults).
phase fmt cargo fmt --all --check || { echo "run \`cargo fmt --all\` and commit the result" >&2; exit 1; }
phase clippy cargo clippy --locked "${CRATES[@]}" -p runnel-beam --all-targets -- -D warnings

# Build first, so the emulators do not idle through a long compile.
phase "build (tests, debug)" cargo test --locked "${CRATES[@]}" --no-run

# Test binaries that need what --quick does not start, and why.
NEEDS_EMULATORS=(cloud crash exactly_once stop workshop)
NEEDS_BEAM=(beam)
NEEDS_BROWSER=(dashboard)
NEEDS_PYTHON_BUILDER=(python)

# The test binaries, as `cargo test` runs them, except that those that
# mostly wait on the emulators run at the same time as the rest
# (scripts/run-tests.py): each binary's wall time and a closing count.
WAITING=crash,workshop,stop,exactly_once,cloud
run_tests() { # [--parallel A,B] [--skip C,D] -- FILTER...
  local own=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do own+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  python3 scripts/run-tests.py "${own[@]}" -- "${CRATES[@]}" -- "$@"
}

if [ -n "$QUICK" ]; then
  echo "skipped by --quick: ${NEEDS_EMULATORS[*]} (need the Pub/Sub and BigQuery emulators), ${NEEDS_BEAM[*]} (needs Apache Beam), ${NEEDS_BROWSER[*]} (needs Chromium), ${NEEDS_PYTHON_BUILDER[*]} (builds every Python plugin with componentize-py); the smoke benchmarks and the wheel" >&2
  skip=$(IFS=,; echo "${NEEDS_EMULATORS[*]},${NEEDS_BEAM[*]},${NEEDS_BROWSER[*]},${NEEDS_PYTHON_BUILDER[*]}")
  phase "tests (quick)" run_tests --skip "$skip" -- "$@"
  exit 0
fi

# The dashboard test drives a real headless Chromium (Debian's package).
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium for the dashboard test ..." >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  install_chromium() { $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2; }
  phase "chromium (apt)" install_chromium
fi

# The Python plugins the tests use (guest-transforms/python), built now so
# that no test shares the machine with a build (the first creates the
# builder's virtualenv: componentize-py from PyPI).
python_guests() {
  local dir name out
  for dir in guest-transforms/python/{examples,exercises,solutions,test-guests}/*/; do
    name=$(basename "$(dirname "$dir")")-$(basename "$dir")
    out="target/test-artifacts/python/$name.wasm"
    # Built already, and nothing it is built from is newer: keep it (the
    # tests' own check, runnel_tests::python_plugin, is the same).
    if [ -f "$out" ] && [ -z "$(find "$dir" guest-transforms/python/runnel_sdk wit -newer "$out" -print -quit)" ]; then
      continue
    fi
    target/debug/runnel build "$dir" -o "$out" >/dev/null
  done
}
phase "guests (Python)" python_guests

# Apache Beam (pinned, from PyPI) and the runnel_beam package with its
# bridge, for the tests that run pipeline files on Beam (tests/tests/beam.rs).
phase "beam setup" scripts/beam.sh setup

start_emulators() { eval "$(scripts/emulators.sh start)"; EMULATORS=1; }
phase emulators start_emulators
export PUBSUB_EMULATOR_HOST BIGQUERY_EMULATOR_HOST RUNNEL_TEST_PROJECT

# Unit, integration and end-to-end tests of the host, the event format and the SDK,
# the plugins (as WebAssembly, built by host/build.rs), the Beam conformance
# replays, and the workshop path against the emulators.
phase tests run_tests --parallel "$WAITING" -- "$@"

# The benchmarks in smoke mode (small sizes, targets not judged), so every
# case keeps working; `scripts/bench.sh` runs them in full (BENCHMARKS.md).
if [ $# -eq 0 ]; then
  phase "bench smoke" scripts/bench.sh --smoke
  # The wheel (the runnel binary and runnel_beam in one), installed into a
  # fresh virtualenv: `runnel demo`, and one pipeline file on both engines.
  phase wheel scripts/wheel.sh --test --dev
fi
