"""runnel's plugin SDK for Python: write a transform or an aggregate as a
plain class; the SDK speaks the contract (`wit/plugin.wit`: batches, slots,
field values) for you.

A transform (built against the `transform` world)::

    from runnel_sdk.transform import Transform, export

    class AddWeekday(Transform):
        def fields(self):
            return ["event_date"]

        def transform(self, event, out):
            out.add_field("weekday", weekday_of(event.str("event_date")))

    Transformer = export(AddWeekday)

An aggregate (built against the `aggregate` world): see
`runnel_sdk.aggregate`. Build either with `runnel build DIR`.

Layout: `event` (what a plugin reads of one event), `transform` and
`aggregate` (the base classes and the adapters to the contract). This
module imports neither adapter: each build has only its own world's
bindings.
"""

from runnel_sdk.event import Event, Refuse

__all__ = ["Event", "Refuse"]
