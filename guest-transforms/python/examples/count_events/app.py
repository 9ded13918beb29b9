"""count-events in Python: the number of events per key and window (the
workshop's Dataflow solution). It reads no field, so the host sends it no
event data at all. The twin of the Rust guest
`guest-transforms/guests/count-events`."""

from runnel_sdk.aggregate import Aggregate, export


class CountEvents(Aggregate):
    STATE_FORMAT = "count-json/1"

    def create_accumulator(self):
        return 0

    def add_input(self, count, event):
        return count + 1

    def merge_accumulators(self, counts):
        return sum(counts)

    def extract_output(self, count):
        return count


Aggregator = export(CountEvents)
