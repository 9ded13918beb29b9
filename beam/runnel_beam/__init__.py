"""runnel pipelines on Apache Beam: the same pipeline file and plugins.

    python -m runnel_beam --config pipeline.toml [Beam options ...]

`build(p, path)` adds a runnel pipeline file's job to a Beam pipeline:
read, the transform plugin (ParDo, a bundle per plugin call, bad events to a
dead-letter output), WindowInto with Beam's own window fns and triggers
translated from the file, the aggregate plugin (CombinePerKey, accumulators
are the plugin's exported state bytes), rows, and the dead letters. What
cannot be translated is refused with an `Untranslatable` that says why.

Every plugin call goes through `runnel_beam._bridge`, which is runnel's own
plugin runtime (same contract checks, sandbox limits and native field reads
as `runnel run`). See beam/README.md.

Modules: `pipeline` (the file as a Beam job), `fns` (the DoFns and the
CombineFn), `strategy` (windows and triggers), `replay` (runnel's replay
scenarios as a TestStream).
"""

from .strategy import Untranslatable  # noqa: F401


def __getattr__(name):
    # Imported on first use, so `strategy` and `replay` load without the
    # bridge (the golden scripts use them with plain Beam).
    if name in ("build", "translate"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
