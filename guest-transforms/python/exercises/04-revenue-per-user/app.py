"""Exercise 4: revenue per user per one-minute window.

Sum `event_value_in_usd` per user and window. Most events have no value
(`null`): they add nothing, but their window still gets a pane (0.0). A
value that is not a number is refused with a reason.

Check your work: `runnel try guest-transforms/python/exercises/04-revenue-per-user`.
"""

from runnel_sdk import Refuse
from runnel_sdk.aggregate import Aggregate, export

FIELD = "event_value_in_usd"


class RevenuePerUser(Aggregate):
    # Names how encode() writes an accumulator (JSON, by default).
    STATE_FORMAT = "exercise-revenue-json/1"

    def fields(self):
        # The host reads this field of each event for add_input.
        return [FIELD]

    def create_accumulator(self):
        return 0.0

    def add_input(self, total, event):
        # TODO(snippet 1): `event.get(FIELD)` is None for a missing or null
        # value (add nothing: return `total`), else the value as Python has
        # it. A number (`int` or `float`, but not `bool`: True is an int in
        # Python) is added: return `total + value`. Anything else is refused:
        # `raise Refuse(f"{FIELD} is not a number: {event.raw(FIELD)}")`.
        raise NotImplementedError("add the event's value")

    def merge_accumulators(self, totals):
        # TODO(snippet 2): partial sums of one window make one: return their total.
        raise NotImplementedError("merge the sums")

    def extract_output(self, total):
        return float(total)


Aggregator = export(RevenuePerUser)
