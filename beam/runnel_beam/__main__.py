"""python -m runnel_beam --config FILE [Beam pipeline options ...]

Runs a runnel pipeline file on Apache Beam: the runner and its options are
Beam's own (`--runner DirectRunner --direct_running_mode multi_processing
--direct_num_workers 2`, or `--runner DataflowRunner --project ...`);
`--check` translates the file and loads its plugins without running.
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from .pipeline import build, translate
from .strategy import Untranslatable


@contextlib.contextmanager
def private_temp_dir():
    """Points the run's temporary files at one new folder, removed when the
    run ends. Beam's DirectRunner leaves things in the temp folder after
    every run (its job server's `beam-temp*` root, pipeline files, a
    requirements cache); `TMPDIR` is set too, so worker processes
    (`--direct_running_mode multi_processing`) use the folder as well."""
    path = tempfile.mkdtemp(prefix="runnel-beam-")
    saved = (os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"], tempfile.tempdir = path, path
    try:
        yield path
    finally:
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]
        shutil.rmtree(path, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m runnel_beam", description=__doc__.split("\n\n")[1])
    parser.add_argument("--config", required=True, help="the runnel pipeline file (TOML)")
    parser.add_argument("--check", action="store_true", help="translate and load the plugins, do not run")
    args, beam_args = parser.parse_known_args(argv)
    try:
        job = translate(args.config)
        for note in job.notes:
            print(f"note: {note}", file=sys.stderr)
        if args.check:
            print(f"{args.config}: translates to Beam (transform {job.stage_label}, aggregate {job.aggregate_label})")
            return 0
        options = PipelineOptions(beam_args)
        if job.source["type"] == "pubsub":
            options.view_as(StandardOptions).streaming = True
        with private_temp_dir(), beam.Pipeline(options=options) as p:
            build(p, args.config)
    except (Untranslatable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
