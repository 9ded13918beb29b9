"""Reference solution of exercise 3: the number of events per user per one-minute window (the
workshop's Dataflow challenge: the aggregation snippet).

The host keys events by `user_pseudo_id` and assigns them to one-minute
windows; this plugin is Beam's `CombineFn`: it keeps one accumulator per
(user, window) and says what to do with each event. Fill in `add_input`
and `merge_accumulators`; the rest is given.

Graded by the tests (tests/tests/python.rs); the template is guest-transforms/python/exercises/03-count-per-user.
"""

from runnel_sdk.aggregate import Aggregate, export


class CountPerUser(Aggregate):
    # Names how encode() writes an accumulator (JSON, by default).
    STATE_FORMAT = "exercise-count-json/1"

    def create_accumulator(self):
        return 0

    def add_input(self, count, event):
        return count + 1

    def merge_accumulators(self, counts):
        return sum(counts)

    def extract_output(self, count):
        return count


Aggregator = export(CountPerUser)
