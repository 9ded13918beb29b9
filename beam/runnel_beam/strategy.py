"""runnel's windowing strategy (the `[windowing]` table, and the replay
scenarios' `config`) as Beam's own window fn, trigger and accumulation
mode: the two describe the same model, so each node maps one to one.

It imports no bridge, so Beam-only scripts (tests/replay/beam) use it too.
"""

from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration


class Untranslatable(ValueError):
    """A setting of the pipeline file that Beam cannot run the same way."""


def window_fn(spec):
    kind = spec["type"]
    if kind == "fixed":
        return window.FixedWindows(spec["size_s"])
    if kind == "sliding":
        return window.SlidingWindows(spec["size_s"], spec["period_s"])
    if kind == "session":
        return window.Sessions(spec["gap_s"])
    if kind == "global":
        return window.GlobalWindows()
    raise Untranslatable(f"[windowing] window type {kind!r} has no Beam counterpart")


def trigger_fn(spec):
    """runnel's trigger spec (the same tree Beam has) as Beam's trigger."""
    kind = spec["type"]
    if kind == "default":
        return trigger.DefaultTrigger()
    if kind == "after_watermark":
        early = trigger_fn(spec["early"]) if spec.get("early") else None
        late = trigger_fn(spec["late"]) if spec.get("late") else None
        return trigger.AfterWatermark(early=early, late=late)
    if kind == "after_count":
        return trigger.AfterCount(spec["count"])
    if kind == "after_processing_time":
        delay = float(spec["delay_s"])
        if not delay.is_integer():
            # Beam's Python SDK writes the delay into its pipeline proto as
            # an integer and fails on a fraction.
            raise Untranslatable(
                f"[windowing] after_processing_time delay_s = {delay}: Beam's Python SDK takes whole seconds here"
            )
        return trigger.AfterProcessingTime(int(delay))
    if kind == "repeatedly":
        return trigger.Repeatedly(trigger_fn(spec["of"]))
    if kind == "after_any":
        return trigger.AfterAny(*[trigger_fn(t) for t in spec["of"]])
    if kind == "after_all":
        return trigger.AfterAll(*[trigger_fn(t) for t in spec["of"]])
    raise Untranslatable(f"[windowing] trigger type {kind!r} has no Beam counterpart")


def accumulation_mode(name):
    if name == "accumulating":
        return trigger.AccumulationMode.ACCUMULATING
    return trigger.AccumulationMode.DISCARDING


def window_into(w):
    """`beam.WindowInto`'s arguments for a `[windowing]` table."""
    return dict(
        windowfn=window_fn(w["window"]),
        trigger=trigger_fn(w.get("trigger") or {"type": "default"}),
        accumulation_mode=accumulation_mode(w.get("accumulation")),
        allowed_lateness=Duration(micros=round(float(w.get("allowed_lateness_s", 0)) * 1e6)),
    )
