"""Computes a replay scenario's panes with Apache Beam (Python DirectRunner).

Usage: python make_golden.py SCENARIO.ndjson > GOLDEN.ndjson

The scenario (docs/replay-format.md) maps one to one onto a TestStream and
WindowInto(window, trigger, accumulation_mode, allowed_lateness) followed by a
per-key count, the way the conformance goldens in tests/replay/golden were
made. Run it with scripts/beam-golden.sh, which installs the pinned Beam in a
virtualenv first. The stream and the translation of the windowing strategy
are runnel_beam's (beam/runnel_beam: `replay`, `strategy`), which runs the
same scenarios with runnel's plugins; here the count is Beam's own.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "beam"))

import apache_beam as beam  # noqa: E402
from runnel_beam import replay, strategy  # noqa: E402


def main(path):
    config, steps = replay.read(path)
    stream = replay.test_stream(steps, lambda event, ts: event["user_pseudo_id"])
    count = lambda users: (
        users
        | beam.WindowInto(**strategy.window_into(config))
        | beam.Map(lambda user: (user, 1))
        | beam.CombinePerKey(sum)
    )
    for pane in replay.run(stream, count, value=lambda v: v):
        print(json.dumps(pane, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
