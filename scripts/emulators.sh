#!/usr/bin/env bash
# Starts or stops the local Google Cloud emulators runnel's tests use:
# the Pub/Sub emulator (from the Google Cloud CLI) and the BigQuery emulator
# (PyPI bqemulator, installed in a virtualenv under target/).
#
#   eval "$(scripts/emulators.sh start)"   # prints the environment to export
#   scripts/emulators.sh stop              # stops exactly what start started
#
# Ports are free ones picked at start; PIDs and logs go to target/emulators/.
# Each emulator runs in its own process group, and stop kills that group.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=target/emulators
BQ_VENV=target/bq-venv
PROJECT=${RUNNEL_TEST_PROJECT:-test-project}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # file pattern seconds what
  for _ in $(seq 1 $(( $3 * 10 ))); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the $4 did not start within $3 s; its log ($1) ends with:" >&2
  tail -20 "$1" >&2
  return 1
}

start() {
  mkdir -p "$STATE"
  if ! command -v gcloud >/dev/null; then
    echo "the Google Cloud CLI (gcloud) is needed for the Pub/Sub emulator" >&2
    exit 1
  fi
  if [ ! -x "$BQ_VENV/bin/python" ] || ! "$BQ_VENV/bin/python" -c "import bqemulator, numpy" 2>/dev/null; then
    echo "installing the BigQuery emulator (bqemulator) in $BQ_VENV ..." >&2
    python3 -m venv "$BQ_VENV"
    "$BQ_VENV/bin/pip" install --quiet "bqemulator==1.4.0" numpy >&2
  fi
  local ps_port bq_port bq_grpc
  ps_port=$(free_port); bq_port=$(free_port); bq_grpc=$(free_port)
  setsid gcloud beta emulators pubsub start --host-port="127.0.0.1:$ps_port" --project="$PROJECT" \
    > "$STATE/pubsub.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pubsub.pid"
  setsid "$BQ_VENV/bin/python" scripts/emulators/bigquery_emulator.py start \
    --rest-host 127.0.0.1 --rest-port "$bq_port" --grpc-host 127.0.0.1 --grpc-port "$bq_grpc" \
    --project "$PROJECT" > "$STATE/bigquery.log" 2>&1 < /dev/null &
  echo $! > "$STATE/bigquery.pid"
  wait_for "$STATE/pubsub.log" "Server started" 60 "Pub/Sub emulator"
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$bq_port/bigquery/v2/projects/$PROJECT/datasets" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$bq_port/bigquery/v2/projects/$PROJECT/datasets" >/dev/null || {
    echo "the BigQuery emulator did not answer within 30 s; its log ends with:" >&2
    tail -20 "$STATE/bigquery.log" >&2
    exit 1
  }
  cat > "$STATE/env" <<ENV
export PUBSUB_EMULATOR_HOST=127.0.0.1:$ps_port
export BIGQUERY_EMULATOR_HOST=127.0.0.1:$bq_port
export RUNNEL_TEST_PROJECT=$PROJECT
ENV
  cat "$STATE/env"
}

stop() {
  for name in pubsub bigquery; do
    local pidfile="$STATE/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    # setsid made the emulator its own process group: stop the whole group.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  rm -f "$STATE/env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/emulators.sh start|stop" >&2; exit 2 ;;
esac
