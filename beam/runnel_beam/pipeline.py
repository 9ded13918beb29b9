"""A runnel pipeline file as a Beam pipeline.

`translate(path)` reads the file through the bridge (the host validates it
exactly as `runnel run` does) and turns each table into its Beam
counterpart, refusing what Beam cannot do the same way; `build(p, path)`
adds the job to a Beam pipeline `p`.
"""

import json
import os
import sys
import typing

import apache_beam as beam
from apache_beam import coders
from apache_beam.options.pipeline_options import StandardOptions
from . import _bridge
from .fns import DEAD_LETTERS, AppendLines, PluginCombine, Rows, RunStage
from .strategy import Untranslatable, window_into


def project(plan):
    p = plan["cloud"].get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not p:
        raise Untranslatable("no Google Cloud project: set [cloud] project or GOOGLE_CLOUD_PROJECT")
    return p


def dead_letter_message(line):
    from apache_beam.io.gcp.pubsub import PubsubMessage

    record = json.loads(line)
    return PubsubMessage(line.encode(), {"stage": record["stage"], "reason_kind": record["code"]})


class Job:
    """The pipeline file, translated: what `build` adds to a Beam pipeline."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.pipeline = _bridge.Pipeline(self.path)
        self.plan = plan = json.loads(self.pipeline.plan())
        self.source = plan["source"]
        self.notes = []
        watermark = plan.get("watermark")
        # A file's watermark on Beam is runnel's "end_of_input": all on time.
        # For Pub/Sub, [watermark] tunes runnel's own estimate of an
        # unbounded input's progress; the runner makes its own (Dataflow:
        # from the backlog's publish times), which is what Beam users expect.
        if watermark and self.source["type"] == "pubsub":
            self.notes.append(
                "[watermark] is runnel's estimator for Pub/Sub; on Beam the runner estimates the watermark itself"
            )
        elif watermark and watermark.get("mode") != "end_of_input":
            raise Untranslatable(
                "[watermark] configures runnel's own watermark estimator; on Beam a file is read whole and "
                "nothing in it is late (runnel's mode = \"end_of_input\"). Remove [watermark] or use "
                "mode = \"end_of_input\" to run this file on Beam"
            )
        if self.source["type"] == "synthetic":
            raise Untranslatable(
                "[source] type = \"synthetic\" exists only in `runnel run`; on Beam read a file "
                "(type = \"file\") or a Pub/Sub subscription (type = \"pubsub\")"
            )
        time = plan["event"]["time"]
        if time == "arrival" or time.startswith("attribute:"):
            raise Untranslatable(
                f"[event] time = {time!r} is not translated yet: on Beam use a field "
                "(e.g. \"/event_timestamp\") or \"publish_time\" with Pub/Sub"
            )
        if time == "publish_time" and self.source["type"] != "pubsub":
            raise Untranslatable("[event] time = \"publish_time\" needs a Pub/Sub source")
        self.streaming = self.source["type"] == "pubsub"
        sink = plan["sink"]
        if sink["type"] not in ("ndjson", "null", "bigquery"):
            raise Untranslatable(
                f"[sink] type = {sink['type']!r} is `runnel run`'s terminal table; on Beam write rows to "
                "BigQuery (type = \"bigquery\") or a file (type = \"ndjson\", path = ...)"
            )
        if plan["dead_letters"].get("topic") and not self.streaming:
            raise Untranslatable(
                "[dead_letters] topic: Beam's Python SDK publishes to Pub/Sub only from a streaming "
                "pipeline (a Pub/Sub source); with a file source, dead letters go to [dead_letters] path"
            )
        self.window_into = window_into(plan["windowing"])
        # Loading the plugins here refuses a bad one before Beam starts,
        # with the same message `runnel check` gives.
        self.stage_label = _bridge.Stage(self.pipeline).label
        combine = _bridge.Combine(self.pipeline)
        self.aggregate_label = combine.label
        self.keep_payload = combine.needs_payload

    def origin(self):
        s = self.source
        return f"file:{s['path']}" if s["type"] == "file" else f"pubsub:{s['subscription']}"

    def read(self, p):
        s = self.source
        if s["type"] == "file":
            # Bytes, not text: the plugins get each line as the file has it.
            return p | "read" >> beam.io.ReadFromText(s["path"], coder=coders.BytesCoder())
        subscription = f"projects/{project(self.plan)}/subscriptions/{s['subscription']}"
        return p | "read" >> beam.io.ReadFromPubSub(subscription=subscription, **pubsub_dedup(s, p.options))

    def panes(self, events):
        """Event bytes to panes, (key, value as JSON text) in their windows
        with their pane info, and dead-letter lines."""
        stage = beam.ParDo(RunStage(self.path, self.origin(), self.keep_payload))
        # Declared, since Beam cannot infer them through the bundle buffer.
        stage = stage.with_output_types(typing.Tuple[str, bytes])
        staged = events | "transform" >> stage.with_outputs(DEAD_LETTERS, main="elements")
        panes = (
            staged.elements
            | "window" >> beam.WindowInto(**self.window_into)
            | "aggregate" >> beam.CombinePerKey(PluginCombine(self.path))
        )
        return panes, staged[DEAD_LETTERS]

    def write_lines(self, lines, path, label):
        if self.streaming:
            # WriteToText needs a bounded input; one machine appends.
            return lines | label >> beam.ParDo(AppendLines(path))
        return lines | label >> beam.io.WriteToText(path, shard_name_template="", append_trailing_newlines=True)

    def write_dead_letters(self, dead):
        self.write_lines(dead, self.plan["dead_letters"]["path"], "write dead letters")
        topic = self.plan["dead_letters"].get("topic")
        if topic:
            # As `runnel run` publishes them: the line, with its stage and
            # reason code as attributes.
            (
                dead
                | "dead letter messages" >> beam.Map(dead_letter_message)
                | "publish dead letters"
                >> beam.io.WriteToPubSub(f"projects/{project(self.plan)}/topics/{topic}", with_attributes=True)
            )

    def write_rows(self, rows):
        sink = self.plan["sink"]
        if sink["type"] == "ndjson":
            self.write_lines(rows, sink["path"], "write rows")
        elif sink["type"] == "bigquery":
            # Beam's own writer, into the table `runnel setup` made; streaming
            # inserts, as `runnel run` does.
            table = f"{project(self.plan)}:{sink['dataset']}.{sink['table']}"
            (
                rows
                | "row objects" >> beam.Map(json.loads)
                | "write rows"
                >> beam.io.WriteToBigQuery(
                    table,
                    method=beam.io.WriteToBigQuery.Method.STREAMING_INSERTS,
                    create_disposition=beam.io.BigQueryDisposition.CREATE_NEVER,
                    write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
                )
            )


DIRECT_RUNNERS = (None, "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")


def pubsub_dedup(source, options):
    """ReadFromPubSub's arguments for `[source] id_attribute`: Beam's
    `id_label`, so that the runner removes messages with the same value as
    runnel does (Dataflow does; by message id it does so without being told).
    Beam's DirectRunner refuses `id_label` (NotImplementedError), so there it
    is left out, and said."""
    label = source.get("id_attribute")
    if not label:
        return {}
    if options.view_as(StandardOptions).runner in DIRECT_RUNNERS:
        print(
            f"note: [source] id_attribute = {label!r} is not passed to Beam's DirectRunner, which does not "
            "support ReadFromPubSub(id_label=...): a message published twice is counted twice there "
            "(Dataflow and `runnel run` count it once)",
            file=sys.stderr,
        )
        return {}
    return {"id_label": label}


def translate(path):
    """The file's job, or `Untranslatable` saying what to change."""
    return Job(path)


def build(p, path, events=None):
    """Adds the pipeline file's job to `p`, reading `events` (a PCollection
    of event bytes) instead of the file's source if given; returns (rows,
    dead letters)."""
    job = translate(path)
    if events is None:
        events = job.read(p)
    panes, dead = job.panes(events)
    rows = panes | "rows" >> beam.ParDo(Rows(job.path, job.stage_label, job.aggregate_label)).with_output_types(str)
    job.write_rows(rows)
    job.write_dead_letters(dead)
    return rows, dead
