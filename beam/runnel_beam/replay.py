"""runnel's replay scenarios (docs/replay-format.md) on Beam's TestStream.

    python -m runnel_beam.replay SCENARIO --aggregate PLUGIN [--transform PLUGIN]

prints the scenario's panes in the goldens' format (tests/replay/golden),
computed by Beam's streaming DirectRunner with runnel plugins: the same
events, watermarks and processing times as `runnel replay` is given.
tests/replay/beam/make_golden.py computes the goldens themselves with the
same stream and a plain Beam count.
"""

import argparse
import json
import os
import sys
import tempfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import window as win
from apache_beam.utils.timestamp import Duration, Timestamp

# The golden format's bounds of the global window.
GLOBAL_START, GLOBAL_END = -9223372036854775000, 9223371950454775000
TIMING = {0: "EARLY", 1: "ON_TIME", 2: "LATE", 3: "UNKNOWN"}


def read(path):
    """(config, steps) of a scenario file."""
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[0]["config"], lines[1:]


def test_stream(steps, element):
    """The scenario's steps as a TestStream; `element(event, ts_us)` is
    what an event becomes (its key for a plain count, its bytes for plugins)."""
    stream = TestStream()
    processing_time = 0
    for step in steps:
        if "event" in step:
            ts = Timestamp(micros=step["ts_us"])
            stream.add_elements([win.TimestampedValue(element(step["event"], step["ts_us"]), ts)])
        elif "watermark_us" in step:
            if step["watermark_us"] == "inf":
                stream.advance_watermark_to_infinity()
            else:
                stream.advance_watermark_to(Timestamp(micros=step["watermark_us"]))
        elif "processing_time_us" in step:
            delta = step["processing_time_us"] - processing_time
            if delta > 0:
                stream.advance_processing_time(Duration(micros=delta))
            processing_time = step["processing_time_us"]
    return stream


class Record(beam.DoFn):
    """Appends each pane, in the goldens' format, to a file (the DoFn runs
    on an unpickled copy, so in-memory lists would not come back)."""

    def __init__(self, out_path, value=lambda v: v):
        self.out_path = out_path
        self.value = value

    def process(self, kv, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        key, value = kv
        if isinstance(w, win.GlobalWindow):
            start, end = GLOBAL_START, GLOBAL_END
        else:
            start, end = w.start.micros, w.end.micros
        record = {
            "key": key,
            "window_start_us": start,
            "window_end_us": end,
            "timing": TIMING[pane.timing],
            "pane_index": pane.index,
            "is_last": pane.is_last,
            "value": self.value(value),
        }
        with open(self.out_path, "a") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")


def run(steps, panes_of, value=json.loads):
    """Runs the stream through `panes_of(events) -> (key, value)` panes on
    the streaming DirectRunner (`value` makes a pane's value plain JSON);
    returns the panes, sorted as goldens are."""
    out_path = tempfile.mktemp(suffix=".ndjson")
    options = PipelineOptions([])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as p:
        panes_of(p | steps) | beam.ParDo(Record(out_path, value=value))
    panes = []
    if os.path.exists(out_path):
        with open(out_path) as f:
            panes = [json.loads(line) for line in f]
        os.remove(out_path)
    return sorted(panes, key=lambda r: (r["key"], r["window_start_us"], r["pane_index"]))


def pipeline_file(config, aggregate, transform):
    """A pipeline file with the scenario's windowing and these plugins (its
    source is never read: the TestStream stands in for it)."""
    windowing = {k: v for k, v in config.items() if k in ("window", "trigger", "accumulation", "allowed_lateness_s")}
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items() if x is not None) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = ['[source]', 'type = "file"', 'path = "unused.ndjson"', "[windowing]"]
    lines += [f"{k} = {value(v)}" for k, v in windowing.items()]
    lines += ["[aggregate]", f"plugin = {json.dumps(aggregate)}", "[sink]", 'type = "null"']
    if transform:
        lines += ["[transform]", f"plugin = {json.dumps(transform)}"]
    fd, path = tempfile.mkstemp(suffix=".toml")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m runnel_beam.replay", description=__doc__.split("\n\n")[1])
    parser.add_argument("scenario")
    parser.add_argument("--aggregate", default="count-events", help="bundled name or .wasm (default count-events)")
    parser.add_argument("--transform", help="bundled name or .wasm (default: none)")
    args = parser.parse_args(argv)
    from .pipeline import translate

    config, steps = read(args.scenario)
    path = pipeline_file(config, os.path.abspath(args.aggregate) if args.aggregate.endswith(".wasm") else args.aggregate, args.transform)
    try:
        job = translate(path)
        # A scenario's time is its `ts_us` (`runnel replay` takes it so):
        # the event carries it in the field the pipeline reads its time from.
        stream = test_stream(steps, lambda event, ts: json.dumps({**event, "event_timestamp": ts}).encode())
        for pane in run(stream, lambda events: job.panes(events)[0]):
            print(json.dumps(pane, sort_keys=True))
    finally:
        os.remove(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
