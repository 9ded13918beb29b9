#!/usr/bin/env bash
# Apache Beam beside runnel: a virtualenv with Beam (pinned) and the
# runnel_beam package (beam/), whose bridge is built from this workspace,
# so runnel pipeline files and plugins run on Beam's runners.
#
#   scripts/beam.sh setup [--release]            # the venv, the bridge, the package
#   scripts/beam.sh run --config FILE [BEAM ...] # python -m runnel_beam ...
#   scripts/beam.sh venv                         # only the venv (Beam itself)
#
# The venv is target/beam-venv (RUNNEL_BEAM_VENV to change it); the package
# is staged in target/beam-py and put on the venv's path, the bridge built
# in the debug profile (what the tests use) or with --release (benchmarks).
set -euo pipefail
# No cd: `run` takes paths relative to where it is called from.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BEAM_VERSION=2.77.0
VENV=${RUNNEL_BEAM_VENV:-$ROOT/target/beam-venv}
PY="$VENV/bin/python"

venv() {
  # [gcp]: Beam's Pub/Sub reader and BigQuery writer.
  if [ ! -x "$PY" ] || ! "$PY" -c "import apache_beam, google.cloud.pubsub, google.cloud.bigquery" 2>/dev/null; then
    echo "installing Apache Beam $BEAM_VERSION (with its Google Cloud IO) into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "apache-beam[gcp]==$BEAM_VERSION" >&2
  fi
}

setup() (
  cd "$ROOT"
  local profile=debug flag=()
  if [ "${1:-}" = "--release" ]; then profile=release flag=(--release); fi
  venv
  cargo build --locked -p runnel-beam "${flag[@]}" >&2
  local stage=target/beam-py/runnel_beam
  rm -rf "$stage" && mkdir -p "$stage"
  for f in beam/runnel_beam/*.py; do ln -s "$PWD/$f" "$stage/"; done
  ln -s "$PWD/target/$profile/lib_bridge.so" "$stage/_bridge.abi3.so"
  "$PY" -c "import site; print(site.getsitepackages()[0])" | {
    read -r site
    echo "$PWD/target/beam-py" > "$site/runnel-beam-dev.pth"
  }
  "$PY" -c "import runnel_beam._bridge as b; print('runnel_beam ready (contract', b.CONTRACT + ')')" >&2
)

case "${1:-}" in
  venv) venv ;;
  setup) shift; setup "$@" ;;
  run) shift; [ -d "$ROOT/target/beam-py/runnel_beam" ] || setup; exec "$PY" -m runnel_beam "$@" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
