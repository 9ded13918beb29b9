"""The workshop's pipeline in Apache Beam (Python DirectRunner), for `runnel bench`.

    python beam_count.py streaming|batch|plugins EVENTS.ndjson ROWS.txt

Reads NDJSON Flood It events, adds the weekday (the workshop's transform),
stamps each event with its event_timestamp, counts events per user per
1-minute fixed window, and writes one line per window: `user,start_us,count`.
Streaming mode feeds the lines through a TestStream with streaming=True (the
runner the workshop's streaming job uses); batch mode reads the file with
ReadFromText. Plugins mode is batch mode with runnel's WASM plugins in place
of the Python transform and count (the runnel_beam package, beam/: the same
job from a runnel pipeline file; scripts/beam.sh setup --release stages it).
Prints one JSON line: {"events": N, "seconds": wall time of the pipeline}.
"""
import datetime
import json
import sys
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import window


def add_weekday(event):
    day = datetime.datetime.strptime(event["event_date"], "%Y%m%d")
    event["weekday"] = day.strftime("%A")
    return event


class Rows(beam.DoFn):
    def process(self, kv, w=beam.DoFn.WindowParam):
        user, count = kv
        yield f"{user},{w.start.micros},{count}"


class Append(beam.DoFn):
    """Appends each row to the output file (one process: the DirectRunner)."""

    def __init__(self, path):
        self.path = path

    def setup(self):
        self.file = open(self.path, "a")

    def process(self, row):
        self.file.write(row + "\n")

    def finish_bundle(self):
        self.file.flush()

    def teardown(self):
        self.file.close()


def with_plugins(p, path):
    """The same job as a runnel pipeline file: add-weekday and count-events
    as WASM plugins through runnel_beam's bridge."""
    import tempfile

    from apache_beam import coders
    from runnel_beam.pipeline import translate

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(
            f'[source]\ntype = "file"\npath = "{path}"\n[transform]\nplugin = "add-weekday"\n'
            '[aggregate]\nplugin = "count-events"\n[sink]\ntype = "null"\n'
        )
    panes, _ = translate(f.name).panes(p | beam.io.ReadFromText(path, coder=coders.BytesCoder()))
    return panes | "value" >> beam.MapTuple(lambda user, count: (user, json.loads(count)))


def main(mode, path, out):
    open(out, "w").close()
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    options = PipelineOptions(["--direct_num_workers=1"])
    options.view_as(StandardOptions).streaming = mode == "streaming"
    started = time.time()
    with beam.Pipeline(options=options) as p:
        if mode == "plugins":
            counts = with_plugins(p, path)
        else:
            if mode == "streaming":
                stream = TestStream()
                for i in range(0, len(lines), 1000):
                    stream = stream.add_elements(lines[i : i + 1000])
                events = p | stream.advance_watermark_to_infinity()
            else:
                events = p | beam.io.ReadFromText(path)
            counts = (
                events
                | "parse" >> beam.Map(json.loads)
                | "weekday" >> beam.Map(add_weekday)
                | "stamp" >> beam.Map(lambda e: window.TimestampedValue(e, e["event_timestamp"] / 1e6))
                | "window" >> beam.WindowInto(window.FixedWindows(60))
                | "key" >> beam.Map(lambda e: (e["user_pseudo_id"], 1))
                | "count" >> beam.CombinePerKey(sum)
            )
        counts | "rows" >> beam.ParDo(Rows()) | "write" >> beam.ParDo(Append(out))
    seconds = time.time() - started
    with open(out) as f:
        rows = sorted(l for l in f if l.strip())
    with open(out, "w") as f:
        f.writelines(rows)
    print(json.dumps({"events": len(lines), "seconds": seconds}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
