"""The Beam functions that call runnel plugins through the bridge.

- `RunStage` (DoFn): ingest, transform and decode, a bundle of events per
  plugin call; elements out as (key, payload) stamped with their event time,
  refused events as dead-letter lines on the `dead_letters` output.
- `PluginCombine` (CombineFn): the aggregate plugin; an accumulator is
  `[state, pending]`, the plugin's exported state bytes (None: new) and the
  events not yet added, which are added in one call when Beam compacts,
  merges or extracts it.
- `Rows` (DoFn): one row per pane, in the format of `runnel run`'s sink;
- `AppendLines` (DoFn): lines appended to a local file, for an unbounded
  input on one machine (a bounded one is written with WriteToText).

The bridge objects are made in `setup` (per worker, after unpickling), never
pickled: only the pipeline file's path travels with the functions.
"""

import logging

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from . import _bridge, emulators

# In every process that unpickles these functions (the runner's workers too).
emulators.use()

DEAD_LETTERS = "dead_letters"

# Pending adds per accumulator before they are sent in one call.
MAX_PENDING = 512


def packed(events):
    """One buffer and each event's end offset: one crossing per call."""
    ends, total = [], 0
    for e in events:
        total += len(e)
        ends.append(total)
    return b"".join(events), ends


class RunStage(beam.DoFn):
    def __init__(self, config, origin, keep_payload, bundle_size=1000):
        self.config = config
        self.origin = origin
        self.keep_payload = keep_payload
        self.bundle_size = bundle_size

    def setup(self):
        self.stage = _bridge.Stage(_bridge.Pipeline(self.config))
        self.dead = Metrics.counter("runnel", "dead_letters")

    def start_bundle(self):
        self.pending = []

    def process(self, event, timestamp=beam.DoFn.TimestampParam):
        if isinstance(event, str):
            event = event.encode()
        elif not isinstance(event, bytes):  # a PubsubMessage
            event = event.data
        self.pending.append((event, timestamp))
        if len(self.pending) >= self.bundle_size:
            for out in self._flush():
                yield out

    def finish_bundle(self):
        for out in self._flush(windowed=True):
            yield out

    def _flush(self, windowed=False):
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        events, ends = packed([e for e, _ in pending])
        elements, dead = self.stage.process(events, ends, self.origin)
        for index, key, time_us, payload in elements:
            # The plugin's (or the field's) event time; else the timestamp
            # of the input it came from (its Pub/Sub publish time).
            ts = Timestamp(micros=time_us) if time_us is not None else pending[index][1]
            value = (key, payload if self.keep_payload else b"")
            if windowed:
                yield WindowedValue(value, ts, [GlobalWindow()])
            else:
                yield beam.window.TimestampedValue(value, ts)
        for index, line in dead:
            self.dead.inc()
            ts = pending[index][1]
            if windowed:
                yield pvalue.TaggedOutput(DEAD_LETTERS, WindowedValue(line, ts, [GlobalWindow()]))
            else:
                yield pvalue.TaggedOutput(DEAD_LETTERS, line)


class PluginCombine(beam.CombineFn):
    def __init__(self, config):
        self.config = config
        self._plugin = None

    def setup(self):
        self._plugin = _bridge.Combine(_bridge.Pipeline(self.config))

    @property
    def plugin(self):
        # Some runners call a CombineFn before (or without) setup.
        if self._plugin is None:
            self.setup()
        return self._plugin

    def __getstate__(self):
        return {"config": self.config, "_plugin": None}

    def _add_pending(self, acc):
        if acc[1]:
            events, ends = packed(acc[1])
            acc[0], refused = self.plugin.add(acc[0], events, ends)
            acc[1] = []
            for reason in refused:
                # A CombineFn has no side output: refused adds are counted
                # and logged (`runnel run` dead-letters them).
                Metrics.counter("runnel", "aggregate_refused").inc()
                logging.warning("the aggregate plugin refused an event: %s", reason)
        return acc

    def create_accumulator(self):
        return [None, []]

    def add_input(self, acc, element):
        acc[1].append(element)
        if len(acc[1]) >= MAX_PENDING:
            self._add_pending(acc)
        return acc

    def add_inputs(self, acc, elements):
        for e in elements:
            self.add_input(acc, e)
        return acc

    def merge_accumulators(self, accs):
        states = [self._add_pending(a)[0] for a in accs]
        states = [s for s in states if s is not None]
        if not states:
            return [None, []]
        if len(states) == 1:
            return [states[0], []]
        return [self.plugin.merge(states), []]

    def compact(self, acc):
        return self._add_pending(acc)

    def extract_output(self, acc):
        return self.plugin.extract(self._add_pending(acc)[0])


# Beam's PaneInfoTiming values.
_TIMING = {0: "EARLY", 1: "ON_TIME", 2: "LATE"}


class Rows(beam.DoFn):
    def __init__(self, config, transform, aggregate):
        self.config = config
        self.transform = transform
        self.aggregate = aggregate

    def setup(self):
        self.pipeline = _bridge.Pipeline(self.config)

    def process(self, kv, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        key, value = kv
        # A bounded input fires each window once, at the end of input: the
        # runner leaves such panes' timing UNKNOWN; `runnel run` calls the
        # pane it fires when the watermark passes the window ON_TIME.
        timing = _TIMING.get(pane.timing, "ON_TIME")
        yield self.pipeline.row(
            key, value, w.start.micros, w.end.micros, timing, pane.index, pane.is_last, self.transform, self.aggregate
        )


class AppendLines(beam.DoFn):
    """Appends each line to a local file, flushed at the end of a bundle."""

    def __init__(self, path):
        self.path = path

    def setup(self):
        self.file = open(self.path, "a")

    def process(self, line):
        self.file.write(line + "\n")

    def finish_bundle(self):
        self.file.flush()

    def teardown(self):
        self.file.close()
