"""The per-key aggregation, as Apache Beam's CombineFn: subclass
`Aggregate`, then export it with `Aggregator = export(YourClass)` at the
top of your module (the name `Aggregator` is what the build looks for).

The host keeps one accumulator per (key, window) inside the plugin,
addressed by slot numbers the SDK hides; accumulators cross the boundary
as bytes (`encode` / `decode`) only to carry state to a new version of the
plugin on a hot reload."""

import json

from componentize_py_types import Err
from wit_world.exports import aggregator as contract

from runnel_sdk.event import Event, Refuse, reason_of, values_of


class Aggregate:
    """Override the CombineFn methods, `encode`/`decode` and STATE_FORMAT."""

    #: Names the encoding of `encode`; change it when the encoding changes,
    #: so a hot reload does not carry old bytes into new code.
    STATE_FORMAT = None

    def __init__(self, config: str):
        self.config = config

    def fields(self):
        """The top-level fields `add_input` reads (the host reads them and
        sends only their values); none for an aggregate that only counts."""
        return []

    def whole_events(self):
        """True when `add_input` reads `event.bytes()`."""
        return False

    def create_accumulator(self):
        raise NotImplementedError("override create_accumulator(self)")

    def add_input(self, accumulator, event: Event):
        """Returns the accumulator with `event` added; raise `Refuse("why")`
        to refuse the event (any other exception is a bug, as for a
        transform)."""
        raise NotImplementedError("override add_input(self, accumulator, event)")

    def merge_accumulators(self, accumulators):
        raise NotImplementedError("override merge_accumulators(self, accumulators)")

    def extract_output(self, accumulator):
        """An int, float, str, or any JSON-serialisable value."""
        raise NotImplementedError("override extract_output(self, accumulator)")

    def encode(self, accumulator) -> bytes:
        """The accumulator's bytes (default: JSON)."""
        return json.dumps(accumulator).encode()

    def decode(self, data: bytes):
        """The inverse of `encode`."""
        return json.loads(data)


def _value(output):
    if isinstance(output, bool):
        return contract.Value_Json(json.dumps(output))
    if isinstance(output, int):
        return contract.Value_Int(output)
    if isinstance(output, float):
        return contract.Value_Float(output)
    if isinstance(output, str):
        return contract.Value_Text(output)
    return contract.Value_Json(json.dumps(output))


def export(cls):
    """The contract's `aggregator` for an `Aggregate` subclass."""
    # The runtime makes a new `Aggregator` for every call: the plugin and
    # its accumulators (slot -> accumulator) live here instead.
    state = {"slots": {}}

    def plugin():
        return state["plugin"]

    def accumulator(slot):
        slots = state["slots"]
        if slot not in slots:
            slots[slot] = plugin().create_accumulator()
        return slots[slot]

    class Aggregator:
        def init(self, config):
            try:
                aggregate = cls(config)
                if not cls.STATE_FORMAT:
                    raise ValueError("set STATE_FORMAT, e.g. \"count-json/1\", to name the encoding of encode()")
                names = list(aggregate.fields())
                whole = bool(aggregate.whole_events())
            except Exception as e:
                raise Err(f"{cls.__name__}: {reason_of(e)}")
            if whole:
                reads = contract.Reads_WholeEvents()
            elif names:
                reads = contract.Reads_Fields(names)
            else:
                reads = contract.Reads_Nothing()
            state.update(plugin=aggregate, index={n: i for i, n in enumerate(names)}, slots={})
            return contract.AggregateInfo(cls.STATE_FORMAT, reads)

        def add(self, events, adds):
            index, slots = state["index"], state["slots"]
            aggregate = plugin()
            add_input, create = aggregate.add_input, aggregate.create_accumulator
            width = len(index)
            if events.count:
                values, whole = values_of(events)
            else:  # the aggregate reads nothing: one empty event serves all
                values, whole = [None] * width, None
                empty = Event(index, values, None)
            rejected = []
            for i, add in enumerate(adds):
                slot = add.slot
                try:
                    accumulator = slots[slot] if slot in slots else create()
                    if whole is None:
                        event = empty
                    else:
                        event = Event(index, values, whole[add.event], add.event * width)
                    slots[slot] = add_input(accumulator, event)
                except Refuse as e:
                    rejected.append(contract.RejectedAdd(i, reason_of(e)))
            return rejected

        def merge(self, target, sources):
            slots = state["slots"]
            others = [slots.pop(s) for s in sources if s != target and s in slots]
            if others:
                slots[target] = plugin().merge_accumulators([accumulator(target), *others])

        def extract(self, slots):
            return [_value(plugin().extract_output(accumulator(s))) for s in slots]

        def release(self, slots):
            for s in slots:
                state["slots"].pop(s, None)

        def export_state(self, slots):
            return [bytes(plugin().encode(accumulator(s))) for s in slots]

        def import_state(self, slot, data):
            try:
                state["slots"][slot] = plugin().decode(data)
            except Exception as e:
                raise Err(f"cannot decode the state of slot {slot}: {reason_of(e)}")

    return Aggregator


__all__ = ["Aggregate", "Event", "Refuse", "export"]
