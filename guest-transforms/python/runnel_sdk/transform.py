"""The per-event transform: subclass `Transform`, then export it with
`Transformer = export(YourClass)` at the top of your module (the name
`Transformer` is what the build looks for)."""

import json

from componentize_py_types import Err
from wit_world.exports import transformer as contract

from runnel_sdk.event import Event, Refuse, json_text, reason_of, values_of


class Transform:
    """Override `transform`; `fields` names what it reads."""

    def __init__(self, config: str):
        """`config` is the plugin's config string from the pipeline file
        (often JSON; `json.loads(config or "{}")`). Raise to refuse it."""
        self.config = config

    def fields(self):
        """The top-level fields `transform` reads; the host reads them
        natively and sends only their values."""
        return []

    def whole_events(self):
        """True when `transform` reads `event.bytes()`."""
        return False

    def transform(self, event: Event, out: "Emit"):
        """Emit zero, one or many outputs for `event` with `out`; raise
        `Refuse("why")` to refuse it (a dead letter with that reason). Any
        other exception is a bug: the event is dead-lettered as
        `plugin_failed` with the exception, and the plugin restarted."""
        raise NotImplementedError("override transform(self, event, out)")


class Emitted:
    """One output: the input event with edits, or a new payload."""

    __slots__ = ("_out",)

    def __init__(self, out):
        self._out = out

    def add_field(self, name, value):
        """Appends `"name": value` (any JSON-serialisable Python value);
        the host edits the event's bytes."""
        return self.add_field_json(name, json_text(value))

    def add_field_json(self, name, text):
        """Appends `"name": text`, where `text` is one JSON value."""
        self._out.edits.append(contract.Edit_Add(contract.Field(name, text)))
        return self

    def remove_field(self, name):
        """Removes the top-level field `name`."""
        self._out.edits.append(contract.Edit_Remove(name))
        return self

    def set_key(self, key):
        """Groups this output under `key` instead of the input's key."""
        self._out.key = str(key)
        return self

    def set_event_time_us(self, micros):
        """Gives this output its own event time (µs since the epoch)."""
        self._out.event_time_us = int(micros)
        return self


class Emit:
    """Where `transform` puts the current event's outputs (valid during
    that call only: the SDK reuses it for the next event)."""

    __slots__ = ("_source", "_outputs")

    def __init__(self, source, outputs):
        self._source = source
        self._outputs = outputs

    def _push(self, payload):
        out = contract.Emitted(self._source, payload, [], None, None)
        self._outputs.append(out)
        return Emitted(out)

    def keep(self):
        """Emits the input event unchanged (no bytes cross back)."""
        return self._push(None)

    def replace(self, payload):
        """Emits a new payload: one JSON object, as bytes, str or a dict.

        The host checks it: anything else sends the input to the dead
        letters as a broken contract."""
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload).encode()
        return self._push(bytes(payload))

    def add_field(self, name, value):
        """Emits the input event with `"name": value` appended."""
        # `keep().add_field(...)` in one step: each Python call counts in
        # the sandbox's interpreter, and this is most transforms' output.
        edit = contract.Edit_Add(contract.Field(name, json_text(value)))
        out = contract.Emitted(self._source, None, [edit], None, None)
        self._outputs.append(out)
        return Emitted(out)


def export(cls):
    """The contract's `transformer` for a `Transform` subclass."""
    # The runtime makes a new `Transformer` for every call, so the plugin
    # lives here, once per instance of the component.
    state = {}

    class Transformer:
        def init(self, config):
            try:
                plugin = cls(config)
                names = list(plugin.fields())
                whole = bool(plugin.whole_events())
            except Exception as e:  # the host shows it and refuses the plugin
                raise Err(f"{cls.__name__}: {reason_of(e)}")
            state.update(plugin=plugin, names=names, index={n: i for i, n in enumerate(names)})
            return contract.TransformInfo(names, whole)

        def transform(self, batch):
            index, call = state["index"], state["plugin"].transform
            width = len(index)
            values, whole = values_of(batch)
            emitted, rejected = [], []
            out = Emit(0, emitted)
            for source in range(batch.count):
                mark = len(emitted)
                out._source = source
                try:
                    call(Event(index, values, whole[source], source * width), out)
                except Refuse as e:
                    del emitted[mark:]
                    rejected.append(contract.Rejected(source, reason_of(e)))
                # Any other exception is a bug, as a panic is in Rust: it
                # ends the call, and the host retries the batch without the
                # event that raised it, which it dead-letters with the
                # exception (`plugin_failed`).
            return contract.TransformResult(emitted, rejected)

    return Transformer
