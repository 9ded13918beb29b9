"""Computes a replay scenario's panes with Apache Beam (Python DirectRunner).

Usage: python make_golden.py SCENARIO.ndjson > GOLDEN.ndjson

The scenario (docs/replay-format.md) maps one to one onto a TestStream and
WindowInto(window, trigger, accumulation_mode, allowed_lateness) followed by a
per-key count, the way the conformance goldens in tests/replay/golden were
made. Run it with scripts/beam-golden.sh, which installs the pinned Beam in a
virtualenv first.
"""

import json
import os
import sys
import tempfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import trigger as tr
from apache_beam.transforms import window as win
from apache_beam.utils.timestamp import Duration, Timestamp



def to_window(w):
    kind = w["type"]
    if kind == "fixed":
        return win.FixedWindows(w["size_s"])
    if kind == "sliding":
        return win.SlidingWindows(w["size_s"], w["period_s"])
    if kind == "session":
        return win.Sessions(w["gap_s"])
    if kind == "global":
        return win.GlobalWindows()
    raise ValueError(f"unknown window {kind}")


def to_trigger(t):
    if t is None:
        return None
    kind = t["type"]
    if kind == "default":
        return tr.DefaultTrigger()
    if kind == "after_watermark":
        return tr.AfterWatermark(early=to_trigger(t.get("early")), late=to_trigger(t.get("late")))
    if kind == "after_count":
        return tr.AfterCount(t["count"])
    if kind == "after_processing_time":
        return tr.AfterProcessingTime(t["delay_s"])
    if kind == "repeatedly":
        return tr.Repeatedly(to_trigger(t["of"]))
    if kind == "after_any":
        return tr.AfterAny(*[to_trigger(x) for x in t["of"]])
    if kind == "after_all":
        return tr.AfterAll(*[to_trigger(x) for x in t["of"]])
    raise ValueError(f"unknown trigger {kind}")


def micros(t):
    return int(round(float(t) * 1_000_000))


class Record(beam.DoFn):
    """Appends each pane to a file (the DoFn runs on an unpickled copy, so
    in-memory lists would not come back)."""

    def __init__(self, out_path):
        self.out_path = out_path

    def process(self, kv, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        key, value = kv
        if isinstance(w, win.GlobalWindow):
            start, end = -9223372036854775000, 9223371950454775000
        else:
            start, end = micros(w.start), micros(w.end)
        timing = {0: "EARLY", 1: "ON_TIME", 2: "LATE", 3: "UNKNOWN"}[pane.timing]
        pane_record = (
            {
                "key": key,
                "window_start_us": start,
                "window_end_us": end,
                "timing": timing,
                "pane_index": pane.index,
                "is_last": pane.is_last,
                "value": value,
            }
        )
        with open(self.out_path, "a") as out:
            out.write(json.dumps(pane_record, sort_keys=True) + "\n")


def main(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    cfg = lines[0]["config"]
    stream = TestStream()
    processing_time = 0
    for step in lines[1:]:
        if "event" in step:
            ev = step["event"]
            stream.add_elements([win.TimestampedValue(ev["user_pseudo_id"], Timestamp(micros=step["ts_us"]))])
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
    out_path = tempfile.mktemp(suffix=".ndjson")
    options = PipelineOptions([])
    options.view_as(StandardOptions).streaming = True
    mode = (
        tr.AccumulationMode.ACCUMULATING
        if cfg.get("accumulation") == "accumulating"
        else tr.AccumulationMode.DISCARDING
    )
    with beam.Pipeline(options=options) as p:
        (
            p
            | stream
            | beam.WindowInto(
                to_window(cfg["window"]),
                trigger=to_trigger(cfg.get("trigger", {"type": "default"})),
                accumulation_mode=mode,
                allowed_lateness=Duration(micros=micros(cfg.get("allowed_lateness_s", 0))),
            )
            | beam.Map(lambda user: (user, 1))
            | beam.CombinePerKey(sum)
            | beam.ParDo(Record(out_path))
        )
    panes = []
    if os.path.exists(out_path):
        with open(out_path) as f:
            panes = [json.loads(line) for line in f]
        os.remove(out_path)
    for pane in sorted(panes, key=lambda r: (r["key"], r["window_start_us"], r["pane_index"])):
        print(json.dumps(pane, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
