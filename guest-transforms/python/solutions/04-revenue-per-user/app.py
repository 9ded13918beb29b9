"""Reference solution of exercise 4: revenue per user per one-minute window.

Graded by the tests (tests/tests/python.rs); the template is
guest-transforms/python/exercises/04-revenue-per-user.
"""

from runnel_sdk import Refuse
from runnel_sdk.aggregate import Aggregate, export

FIELD = "event_value_in_usd"


class RevenuePerUser(Aggregate):
    STATE_FORMAT = "exercise-revenue-json/1"

    def fields(self):
        return [FIELD]

    def create_accumulator(self):
        return 0.0

    def add_input(self, total, event):
        value = event.get(FIELD)
        if value is None:
            return total
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Refuse(f"{FIELD} is not a number: {event.raw(FIELD)}")
        return total + value

    def merge_accumulators(self, totals):
        return sum(totals)

    def extract_output(self, total):
        return float(total)


Aggregator = export(RevenuePerUser)
