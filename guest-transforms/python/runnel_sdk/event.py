"""What a plugin reads of one event: the values of the fields it declared
(read by the host, natively, before the call), and the whole event only
when it asked for whole events."""

import json
import traceback


class Refuse(Exception):
    """Raise to refuse the current event: it goes to the dead letters with
    this message as the reason (`refused`), and the rest of the batch goes
    on. Any other exception is a bug, like a panic in a Rust plugin: the
    event is dead-lettered as `plugin_failed` with the exception and where
    it was raised, and the plugin is restarted."""


class Event:
    """One event as a plugin sees it. Values are JSON text until you ask
    for them as Python values (`get`, `str`, `int`, `float`)."""

    # One flat list of values serves the whole batch (event `i`'s start at
    # `i * len(fields)`): a list per event cost more than the plugin's own
    # work in the sandbox's interpreter.
    __slots__ = ("_index", "_values", "_base", "_whole")

    def __init__(self, index, values, whole, base=0):
        self._index = index
        self._values = values
        self._whole = whole
        self._base = base

    def raw(self, name):
        """The field's JSON text as the event has it (`'"20180803"'`), or
        None when the event has no such field. Raises KeyError for a
        field the plugin did not declare in `fields()`."""
        try:
            return self._values[self._base + self._index[name]]
        except KeyError:
            raise KeyError(
                f"field {name!r} was not declared: return it from fields() "
                "so the host reads it for you"
            ) from None

    def get(self, name, default=None):
        """The field as a Python value (dict, list, str, int, float, bool,
        None), or `default` when the event has no such field."""
        text = self.raw(name)
        return default if text is None else json.loads(text)

    def str(self, name):
        """The field when it is a JSON string, else None."""
        text = self.raw(name)
        if text is None or text[:1] != '"':
            return None
        # Most strings have no escapes: no need for the JSON parser.
        if "\\" not in text:
            return text[1:-1]
        return json.loads(text)

    def int(self, name):
        """The field when it is an integer (or a string of digits, as
        BigQuery exports write int64), else None."""
        value = self.get(name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return None
        return None

    def float(self, name):
        """The field when it is a number, else None."""
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    def bytes(self):
        """The whole event (UTF-8 JSON). Only for plugins whose
        `whole_events()` returns True: the host sends just the declared
        fields otherwise, which is much faster."""
        if self._whole is None:
            raise RuntimeError(
                "event.bytes() needs the whole event: return True from "
                "whole_events() (or declare the fields you read in fields())"
            )
        return self._whole


def values_of(batch):
    """A field batch as one flat list of JSON texts (None: absent), event
    `i`'s first at `i * fields`, and the whole events (None each when the
    batch does not carry them)."""
    values, texts, start = batch.values, [], 0
    for end in batch.ends:
        texts.append(values[start:end].decode() if end > start else None)
        start = end
    whole = list(_pieces(batch.events.bytes, batch.events.ends)) or [None] * batch.count
    return texts, whole


def _pieces(buffer, ends):
    """The pieces of a buffer packed as the contract packs them: piece `i`
    is `buffer[ends[i-1]:ends[i]]`."""
    start = 0
    for end in ends:
        yield buffer[start:end]
        start = end


def reason_of(error):
    """A dead letter's reason for an exception a plugin raised."""
    if isinstance(error, Refuse):
        return str(error) or "refused"
    frame = traceback.extract_tb(error.__traceback__)[-1:]
    where = f" (line {frame[0].lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def json_text(value):
    """`value` as JSON text; plain strings and integers without the JSON
    encoder (it costs more than the plugin's own work in the sandbox)."""
    kind = type(value)
    if kind is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return '"' + value + '"'
    elif kind is int:
        return str(value)
    return json.dumps(value)
