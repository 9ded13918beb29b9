"""Exercise 1: keep only gameplay events.

The game sends many kinds of events; the dashboard only wants gameplay. A
gameplay event is one whose `event_name` starts with `level_` (e.g.
`level_start`, `level_end_quickplay`) or is `post_score`. Keep those,
unchanged and in order; emit nothing for the others. An event without an
`event_name` is refused with a reason (it goes to the dead letters).

Check your work: `runnel try guest-transforms/python/exercises/01-filter-gameplay`.
"""

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export


def is_gameplay(name):
    """Whether `name` is a gameplay event."""
    # TODO(snippet 1): True for names starting with "level_", and for "post_score".
    raise NotImplementedError(f"decide whether {name!r} is a gameplay event")


class FilterGameplay(Transform):
    def fields(self):
        return ["event_name"]

    def transform(self, event, out):
        # TODO(snippet 2): read the name with `event.str("event_name")`; refuse
        # an event without one (`raise Refuse("event has no event_name")`);
        # when `is_gameplay(name)`, keep the event unchanged (`out.keep()`);
        # otherwise emit nothing.
        raise NotImplementedError("keep gameplay events")


Transformer = export(FilterGameplay)
