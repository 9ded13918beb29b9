"""add-weekday in Python: adds the day of the week of `event_date`
(`%Y%m%d`, e.g. "20180803") as `"weekday": "Friday"`. The twin of the Rust
guest `guest-transforms/guests/add-weekday`.

Config (JSON, optional): {"output_field": "weekday"}."""

import datetime
import json

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export


class AddWeekday(Transform):
    def __init__(self, config):
        options = json.loads(config) if config.strip() else {}
        unknown = set(options) - {"output_field"}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; the only one is output_field")
        self.output_field = options.get("output_field", "weekday")

    def fields(self):
        return ["event_date"]

    def transform(self, event, out):
        date = event.str("event_date")
        if date is None:
            raise Refuse("event has no event_date string")
        out.add_field(self.output_field, weekday_of(date))


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday_of(date):
    """The English name of the weekday of `date` (%Y%m%d)."""
    # Not datetime.strptime: it imports `_strptime` when first called, and
    # a plugin can only import, at run time, what its module imported
    # when it was built.
    if len(date) != 8 or not date.isdigit():
        raise Refuse(f"event_date {date!r} is not a %Y%m%d date")
    try:
        day = datetime.date(int(date[:4]), int(date[4:6]), int(date[6:]))
    except ValueError as e:
        raise Refuse(f"event_date {date!r} is not a %Y%m%d date: {e}")
    return WEEKDAYS[day.weekday()]


Transformer = export(AddWeekday)
