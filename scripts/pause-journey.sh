#!/usr/bin/env bash
# The workshop's streaming journey with the pipeline process paused
# mid-stream (SIGSTOP, then SIGCONT): what a starved process or a laptop
# whose lid was closed looks like to Pub/Sub. Every message the job held
# during the pause is delivered again; the table must still sum to exactly
# the messages published. The test suite has a short form of this
# (tests/tests/exactly_once.rs); this is the full one, against the
# emulators, with WORKSHOP.md's commands and examples/workshop.toml.
#
#   scripts/pause-journey.sh [MESSAGES] [PAUSE_S] [RUNS]   # 60000 90 1
#
# Needs the emulators (`eval "$(scripts/emulators.sh start)"`) and a built
# runnel (RUNNEL=path, default target/release/runnel, else target/debug).
# Each run gets its own topic, subscription and dataset; prints one line
# per run: published, SUM(event_count), rows, duplicates dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-60000}
PAUSE=${2:-90}
RUNS=${3:-1}
: "${PUBSUB_EMULATOR_HOST:?run under eval \"\$(scripts/emulators.sh start)\"}"
: "${BIGQUERY_EMULATOR_HOST:?run under eval \"\$(scripts/emulators.sh start)\"}"
RUNNEL=${RUNNEL:-target/release/runnel}
[ -x "$RUNNEL" ] || RUNNEL=target/debug/runnel
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sql() {
  curl -s -X POST "http://$BIGQUERY_EMULATOR_HOST/bigquery/v2/projects/test-project/queries" \
    -H 'content-type: application/json' -d "{\"query\":\"$1\",\"useLegacySql\":false}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin).get("rows",[]); print(" ".join(c["v"] or "0" for c in r[0]["f"]) if r else "0 0")'
}

for run in $(seq 1 "$RUNS"); do
  tag="$(date +%s)_$run"
  mkdir -p "$WORK/$tag/examples" "$WORK/$tag/out"
  config="$WORK/$tag/examples/workshop.toml"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -e "s/dj-pubsub-topic/dj-topic-$tag/; s/dj_subscription_dataflow/dj_sub_$tag/; s/data_journey/dj_$tag/" \
    -e "s/127.0.0.1:9464/127.0.0.1:$port/" examples/workshop.toml > "$config"
  export RUNNEL_ADMIN_TOKEN=pause-journey
  "$RUNNEL" setup --config "$config" > /dev/null
  "$RUNNEL" run --config "$config" > "$WORK/$tag/run.log" 2>&1 &
  job=$!
  "$RUNNEL" publish --config "$config" --file examples/data/floodit-events.ndjson.gz \
    --rate 500 --loop --limit "$MESSAGES" > "$WORK/$tag/publish.log" 2>&1 &
  publisher=$!
  sleep 60
  kill -STOP "$job"
  sleep "$PAUSE"
  kill -CONT "$job"
  wait "$publisher"
  # Every message counted (duplicates are not counted), then drain.
  status() { curl -s "http://127.0.0.1:$port/api/status"; }
  for _ in $(seq 1 600); do
    counted=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["events_in"])' 2>/dev/null || echo 0)
    [ "$counted" -ge "$MESSAGES" ] && break
    sleep 1
  done
  dedup=$(status | python3 -c 'import json,sys; d=json.load(sys.stdin)["counters"]["source_dedup"]; print(d["duplicates_held"], d["duplicates_acknowledged"])')
  "$RUNNEL" drain --config "$config" > /dev/null
  wait "$job" || { echo "run $run: runnel run failed: $(tail -5 "$WORK/$tag/run.log")" >&2; exit 1; }
  read -r rows total < <(sql "SELECT COUNT(*), SUM(event_count) FROM dj_$tag.dataflow")
  read -r held acked <<< "$dedup"
  echo "run $run: published $MESSAGES, paused ${PAUSE}s, SUM(event_count) $total in $rows rows, duplicates dropped $((held + acked)) ($held while held, $acked after acknowledgement)"
  [ "$total" = "$MESSAGES" ] || { echo "run $run: counted $total of $MESSAGES" >&2; exit 1; }
done
