"""Reference solution of exercise 1: keep only gameplay events.

The game sends many kinds of events; the dashboard only wants gameplay. A
gameplay event is one whose `event_name` starts with `level_` (e.g.
`level_start`, `level_end_quickplay`) or is `post_score`. Keep those,
unchanged and in order; emit nothing for the others. An event without an
`event_name` is refused with a reason (it goes to the dead letters).

Graded by the tests (tests/tests/python.rs); the template is guest-transforms/python/exercises/01-filter-gameplay.
"""

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export


def is_gameplay(name):
    """Whether `name` is a gameplay event."""
    return name.startswith("level_") or name == "post_score"


class FilterGameplay(Transform):
    def fields(self):
        return ["event_name"]

    def transform(self, event, out):
        name = event.str("event_name")
        if name is None:
            raise Refuse("event has no event_name")
        if is_gameplay(name):
            out.keep()


Transformer = export(FilterGameplay)
