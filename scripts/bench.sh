#!/usr/bin/env bash
# Runs every benchmark of runnel in one go and writes the report.
#
#   scripts/bench.sh           # full: installs the peers (Apache Beam 2.77,
#                              # Apache Flink 2.3 / PyFlink, in virtualenvs
#                              # under target/), runs everything and rewrites
#                              # BENCHMARKS.md and docs/benchmarks/throughput.svg
#   scripts/bench.sh --smoke   # small sizes, no peers, targets not judged;
#                              # the report goes to target/bench/BENCHMARKS.md.
#                              # Built in the dev profile the tests use, so the
#                              # test command compiles no second graph for it
#   scripts/bench.sh --report  # only rewrites BENCHMARKS.md from the reports
#                              # under target/bench/ (after rerunning one case)
#
# Cases: `runnel bench` (end to end WASM vs native, plugin call cost, peers)
# and the cargo benches of host/benches (hot reload, window state, Pub/Sub
# against the emulator, which this script starts and stops if it is not
# running already). The runs are pinned to one core with taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=
REPORT_ONLY=
if [ "${1:-}" = "--smoke" ]; then SMOKE=--smoke; fi
if [ "${1:-}" = "--report" ]; then REPORT_ONLY=1; fi
FLINK_VERSION=2.3.0

venv() { # dir package==version module
  if [ ! -x "$1/bin/python" ] || ! "$1/bin/python" -c "import $3" 2>/dev/null; then
    echo "installing $2 in $1 ..." >&2
    python3 -m venv "$1"
    "$1/bin/pip" install --quiet "$2"
  fi
}

OUT=target/bench
PEERS=
if [ -n "$REPORT_ONLY" ]; then :; else
if [ -z "$SMOKE" ]; then
  scripts/beam.sh setup --release  # Beam, and runnel_beam for the plugins-on-Beam case
  venv target/flink-venv "apache-flink==$FLINK_VERSION" pyflink
  PEERS=--peers
fi

if [ -z "${PUBSUB_EMULATOR_HOST:-}" ]; then
  trap 'scripts/emulators.sh stop' EXIT
  eval "$(scripts/emulators.sh start)"
fi

PIN=
if command -v taskset >/dev/null; then PIN="taskset -c 0"; fi
mkdir -p "$OUT"
if [ -n "$SMOKE" ]; then PROFILE=dev BIN=target/debug/runnel; else PROFILE=release BIN=target/release/runnel; fi
cargo build --locked --profile "$PROFILE" -p runnel
$PIN "$BIN" bench $SMOKE $PEERS --out "$OUT/runnel-bench.md" --plot "$OUT/throughput.svg"
for bench in reload window_engine pubsub; do
  echo "bench: cargo bench --profile $PROFILE --bench $bench $SMOKE" >&2
  $PIN cargo bench --locked -q --profile "$PROFILE" -p runnel --bench "$bench" -- $SMOKE > "$OUT/$bench.md"
  cat "$OUT/$bench.md"
done
fi

if [ -n "$SMOKE" ]; then REPORT=$OUT/BENCHMARKS.md; PLOT=throughput.svg; else
  REPORT=BENCHMARKS.md; PLOT=docs/benchmarks/throughput.svg
  mkdir -p docs/benchmarks && cp "$OUT/throughput.svg" "$PLOT"
fi
{
  echo "# runnel benchmarks"
  echo
  echo "Written by \`scripts/bench.sh $SMOKE\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),"
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB), pinned to one core."
  echo "The machine is shared: compare the ratios, taken in the same run; absolute numbers drift."
  echo "How each case is measured, and what the numbers mean: docs/benchmarks.md."
  echo
  sed "s#(throughput.svg)#($PLOT)#" "$OUT/runnel-bench.md"
  echo
  echo "## Hot reload (\`cargo bench --bench reload\`)"
  echo
  cat "$OUT/reload.md"
  echo
  echo "## Window state and engine (\`cargo bench --bench window_engine\`)"
  echo
  cat "$OUT/window_engine.md"
  echo
  echo "## Pub/Sub ingest against the emulator (\`cargo bench --bench pubsub\`)"
  echo
  cat "$OUT/pubsub.md"
} > "$REPORT"
echo "report: $REPORT" >&2
