#!/usr/bin/env bash
# The runnel wheel: the `runnel` binary and the runnel_beam package with its
# bridge in one wheel (beam/pyproject.toml), so a workshop room or a
# Dataflow worker image gets both with `pip install` and no Rust toolchain.
#
#   scripts/wheel.sh          # builds target/wheels/runnel-*.whl
#   scripts/wheel.sh --test   # and installs it into a fresh virtualenv:
#                             # `runnel demo`, and a pipeline file on Beam
#   scripts/wheel.sh --test --dev   # the same from the dev profile's build
#                             # (what the test command does: the tests have
#                             # built it already; the packaging is the same)
#
# The wheel is tagged linux_x86_64 for this machine's glibc; a wheel for
# other Linux machines is built the same way inside a manylinux container.
# Apache Beam is the wheel's `beam` extra: `pip install 'runnel-*.whl[beam]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/beam.sh venv
TOOLS=target/beam-venv
"$TOOLS/bin/python" -c "import maturin" 2>/dev/null || "$TOOLS/bin/pip" install --quiet "maturin>=1.8,<2"

TEST=
PROFILE=release
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 ;;
    --dev) PROFILE=dev ;;
    *) echo "usage: scripts/wheel.sh [--test] [--dev]" >&2; exit 2 ;;
  esac
done
DIR=release
[ "$PROFILE" = dev ] && DIR=debug
cargo build --locked --profile "$PROFILE" -p runnel
mkdir -p target/wheel-data/scripts
strip -o target/wheel-data/scripts/runnel "target/$DIR/runnel"
rm -rf target/wheels
"$TOOLS/bin/maturin" build --profile "$PROFILE" --strip --locked --compatibility linux -m beam/Cargo.toml -o target/wheels >&2
WHEEL=$(ls target/wheels/runnel-*.whl)
echo "built $WHEEL ($(du -h "$WHEEL" | cut -f1))" >&2
[ -n "$TEST" ] || exit 0

# A fresh virtualenv with nothing but the wheel: the base install is the
# binary alone, in seconds.
VENV=target/wheel-test-venv
WORK=target/wheel-test
rm -rf "$VENV" "$WORK" && mkdir -p "$WORK"
python3 -m venv "$VENV"
fail() { echo "wheel test failed: $*" >&2; exit 1; }
start=$SECONDS
"$VENV/bin/pip" install --quiet "$WHEEL"
echo "wheel: base install in $((SECONDS - start)) s" >&2
"$VENV/bin/python" -c "import apache_beam" 2>/dev/null && fail "the base install brought Apache Beam (it is the [beam] extra)"

# The first command of README, from the wheel's own `runnel`, elsewhere.
(cd "$WORK" && ../wheel-test-venv/bin/runnel demo) > "$WORK/demo.txt" 2>&1 || fail "runnel demo: $(tail -5 "$WORK/demo.txt")"
grep -q "50000 events" "$WORK/demo.txt" || fail "runnel demo did not read the bundled day: $(tail -5 "$WORK/demo.txt")"

# The same pipeline file through `runnel run` and on Beam, from the wheel;
# Beam first says what to install, then comes with the extra.
gunzip -c examples/data/floodit-events.ndjson.gz | sed -n '1,2000p' > "$WORK/events.ndjson"
for engine in runnel beam; do
  cat > "$WORK/$engine.toml" <<TOML
[source]
type = "file"
path = "events.ndjson"
[transform]
plugin = "add-weekday"
[sink]
type = "ndjson"
path = "$engine-panes.ndjson"
[dead_letters]
path = "$engine-dead.ndjson"
TOML
done
(cd "$WORK" && ../wheel-test-venv/bin/runnel run --config runnel.toml) > "$WORK/run.txt" 2>&1 || fail "runnel run: $(tail -5 "$WORK/run.txt")"
if (cd "$WORK" && ../wheel-test-venv/bin/runnel beam --config beam.toml) > "$WORK/no-beam.txt" 2>&1; then
  fail "runnel beam ran without Apache Beam installed"
fi
grep -q "runnel\[beam\]" "$WORK/no-beam.txt" || fail "runnel beam without Beam does not say to install runnel[beam]: $(tail -3 "$WORK/no-beam.txt")"
start=$SECONDS
"$VENV/bin/pip" install --quiet "$WHEEL[beam]"
echo "wheel: the [beam] extra in $((SECONDS - start)) s" >&2
# `runnel beam` finds the Python the wheel installed beside it.
(cd "$WORK" && ../wheel-test-venv/bin/runnel beam --config beam.toml) > "$WORK/beam.txt" 2>&1 || fail "runnel beam: $(tail -5 "$WORK/beam.txt")"
cmp <(sort "$WORK/runnel-panes.ndjson") <(sort "$WORK/beam-panes.ndjson") || fail "Beam's rows differ from runnel run's"
[ -s "$WORK/beam-panes.ndjson" ] || fail "no rows"
echo "wheel ok: runnel demo, and $(wc -l < "$WORK/beam-panes.ndjson") identical rows from runnel run and from Beam" >&2
