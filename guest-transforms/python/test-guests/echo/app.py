"""A transform for the Python SDK's own tests: it writes back what it read,
so a test can check that field values cross the boundary exactly, both
ways, through the SDK's shortcuts (strings without the JSON parser, plain
strings and integers without the JSON encoder). By `event_name`:

- "refuse": emits an output, then refuses the event (the output must not
  survive the refusal);
- "twice": two outputs, the second under the key "twice";
- anything else: one output with `name` = event.str("event_name"),
  `value_copy` = event.get("value") and `raw` = event.raw("value")."""

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export


class Echo(Transform):
    def fields(self):
        return ["event_name", "value"]

    def transform(self, event, out):
        name = event.str("event_name")
        if name == "refuse":
            out.keep()
            raise Refuse("refused after emitting")
        out.add_field("name", name).add_field("value_copy", event.get("value")).add_field("raw", event.raw("value"))
        if name == "twice":
            out.keep().set_key("twice")


Transformer = export(Echo)
