#!/usr/bin/env bash
# Runs all of runnel's tests on a fresh machine of this kind (Debian with
# rustup and the Google Cloud CLI). It installs what is missing, starts what
# the tests need (the Pub/Sub and BigQuery emulators), and stops exactly
# what it started, whatever happens. Each phase prints its wall time at the
# end (and so does every test binary), so a slow one shows in every log.
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
  if [ -f target/test-logs/binaries.txt ]; then
    echo "test binaries (wall time each, from cargo's own report):" >&2
    sed 's/^/  /' target/test-logs/binaries.txt >&2
  fi
  echo "phases (wall time):" >&2
  printf '  %s\n' "${PHASES[@]}" >&2
  printf '  %-40s %5d s\n' "total" "$SECONDS" >&2
  exit "$status"
}
trap finish EXIT
mkdir -p target/test-logs
rm -f target/test-logs/binaries.txt

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

# Runs cargo test with the given arguments, its output kept, and notes
# each test binary's wall time (cargo prints "finished in" per binary).
cargo_test() {
  local log=target/test-logs/cargo-test-$((${#PHASES[@]})).log
  local status=0
  cargo test --locked "$@" 2>&1 | tee "$log" || status=$?
  awk '/^     Running /{name=$2} /^   Doc-tests /{name="doc-tests " $2} /^test result:/{for(i=1;i<=NF;i++) if($i=="in") printf "%-40s %8s\n", name, $(i+1)}' \
    "$log" >> target/test-logs/binaries.txt
  return "$status"
}

if [ -n "$QUICK" ]; then
  echo "skipped by --quick: ${NEEDS_EMULATORS[*]} (need the Pub/Sub and BigQuery emulators), ${NEEDS_BEAM[*]} (needs Apache Beam), ${NEEDS_BROWSER[*]} (needs Chromium); the smoke benchmarks and the wheel" >&2
  targets=(--lib --bins)
  for f in host/tests/*.rs tests/tests/*.rs; do
    name=$(basename "$f" .rs)
    case " ${NEEDS_EMULATORS[*]} ${NEEDS_BEAM[*]} ${NEEDS_BROWSER[*]} " in
      *" $name "*) ;;
      *) targets+=(--test "$name") ;;
    esac
  done
  phase "tests (quick)" cargo_test "${CRATES[@]}" "${targets[@]}" "$@"
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
  for dir in guest-transforms/python/{examples,exercises,solutions,test-guests}/*/; do
    name=$(basename "$(dirname "$dir")")-$(basename "$dir")
    target/debug/runnel build "$dir" -o "target/test-artifacts/python/$name.wasm" >/dev/null
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
phase tests cargo_test "${CRATES[@]}" "$@"

# The benchmarks in smoke mode (small sizes, targets not judged), so every
# case keeps working; `scripts/bench.sh` runs them in full (BENCHMARKS.md).
if [ $# -eq 0 ]; then
  phase "bench smoke" scripts/bench.sh --smoke
  # The wheel (the runnel binary and runnel_beam in one), installed into a
  # fresh virtualenv: `runnel demo`, and one pipeline file on both engines.
  phase wheel scripts/wheel.sh --test --dev
fi
