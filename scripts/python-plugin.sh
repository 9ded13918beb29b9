#!/usr/bin/env bash
# Builds a runnel plugin written in Python into a WebAssembly component.
#
#   scripts/python-plugin.sh DIR [OUT.wasm]
#
# DIR holds app.py, which ends with `Transformer = export(YourTransform)`
# (a transform) or `Aggregator = export(YourAggregate)` (an aggregate); it
# may import other modules from DIR and the SDK (guest-transforms/python/
# runnel_sdk). OUT defaults to DIR/plugin.wasm. The first run creates a
# virtualenv with the pinned componentize-py (target/python-plugins-venv,
# or $RUNNEL_PYTHON_VENV); a build takes about ten seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RUNNEL_PYTHON_VENV:-$root/target/python-plugins-venv}
pin="componentize-py==0.25.0"

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
dir=$1
out=${2:-$dir/plugin.wasm}
if [ ! -f "$dir/app.py" ]; then
  echo "error: $dir/app.py not found: a Python plugin's folder holds app.py (see guest-transforms/python/examples)" >&2
  exit 1
fi
if grep -Eq '^Aggregator *=' "$dir/app.py"; then
  world=aggregate
elif grep -Eq '^Transformer *=' "$dir/app.py"; then
  world=transform
else
  echo "error: $dir/app.py exports nothing: end it with \`Transformer = export(YourTransform)\` or \`Aggregator = export(YourAggregate)\`" >&2
  exit 1
fi

if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q "${pin#*==}"; then
  echo "creating $venv with $pin (once) ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$pin" >&2
fi

mkdir -p "$(dirname "$out")"
"$venv/bin/componentize-py" -d "$root/wit" -w "$world" componentize \
  -p "$root/guest-transforms/python" -p "$dir" app -o "$out" >&2
echo "built $out ($world); check it with: runnel check $out" >&2
