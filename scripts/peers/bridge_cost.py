"""The cost of crossing from Beam's Python into runnel's plugins (the
runnel_beam bridge), per call and per event, by bundle size.

    python bridge_cost.py EVENTS.ndjson

For each bundle size: the transform stage (Stage.process: the native read,
add-weekday in WASM, key and time) and the aggregate's add (Combine.add:
count-events) on the same events, in µs per event and per call, and the
plain-Python version of the transform (json.loads, the weekday, json.dumps)
beside it. Prints one JSON line per size.
"""

import datetime
import json
import sys
import tempfile
import time

from runnel_beam import _bridge
from runnel_beam.fns import packed


def python_transform(line):
    event = json.loads(line)
    event["weekday"] = datetime.datetime.strptime(event["event_date"], "%Y%m%d").strftime("%A")
    return event["user_pseudo_id"], event["event_timestamp"], json.dumps(event).encode()


def main(path):
    with open(path, "rb") as f:
        events = [line.rstrip(b"\n") for line in f if line.strip()][:20000]
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write('[source]\ntype = "file"\npath = "unused"\n[transform]\nplugin = "add-weekday"\n[aggregate]\nplugin = "count-events"\n')
    pipeline = _bridge.Pipeline(f.name)
    stage, combine = _bridge.Stage(pipeline), _bridge.Combine(pipeline)
    for size in (1, 10, 100, 1000):
        bundles = [packed(events[i : i + size]) for i in range(0, len(events), size)]
        started = time.perf_counter()
        for buf, ends in bundles:
            stage.process(buf, ends, "bench")
        transform = time.perf_counter() - started
        started = time.perf_counter()
        for buf, ends in bundles:
            combine.add(None, buf, ends)
        add = time.perf_counter() - started
        started = time.perf_counter()
        for e in events:
            python_transform(e)
        plain = time.perf_counter() - started
        n, calls = len(events), len(bundles)
        print(json.dumps({
            "bundle": size,
            "transform_us_per_event": round(transform / n * 1e6, 2),
            "transform_us_per_call": round(transform / calls * 1e6, 1),
            "add_us_per_event": round(add / n * 1e6, 2),
            "plain_python_transform_us_per_event": round(plain / n * 1e6, 2),
        }))


if __name__ == "__main__":
    main(sys.argv[1])
