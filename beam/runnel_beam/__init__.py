"""runnel pipelines on Apache Beam: the same pipeline file and plugins.

    python -m runnel_beam --config pipeline.toml [Beam options ...]

`build(p, path)` adds a runnel pipeline file's job to a Beam pipeline:
read, the transform plugin (ParDo, a bundle per plugin call, bad events to a
dead-letter output), WindowInto with Beam's own window fns and triggers
translated from the file, the aggregate plugin (CombinePerKey, accumulators
are the plugin's exported state bytes), rows, and the dead letters. What
cannot be translated is refused with a `Untranslatable` that says why.

Every plugin call goes through `runnel_beam._bridge`, which is runnel's own
plugin runtime (same contract checks, sandbox limits and native field reads
as `runnel run`). See beam/README.md.
"""

from .pipeline import Untranslatable, build, translate  # noqa: F401
