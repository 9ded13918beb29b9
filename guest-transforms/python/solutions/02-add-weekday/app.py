"""Reference solution of exercise 2: add the weekday (the workshop's Cloud Run challenge).

Each event has `event_date` as `%Y%m%d` text, e.g. "20180803". Add a field
`"weekday"` with the English name of that day, e.g. "Friday", and keep
every other field as it is. An event whose `event_date` is missing or not a
`%Y%m%d` date is refused with a reason.

Graded by the tests (tests/tests/python.rs); the template is guest-transforms/python/exercises/02-add-weekday.
"""

import datetime

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday_name(date):
    """"Monday" ... "Sunday" for `date` (%Y%m%d); raises Refuse if it is not a date."""
    if len(date) != 8 or not date.isdigit():
        raise Refuse(f"event_date {date!r} is not a %Y%m%d date")
    try:
        day = datetime.date(int(date[:4]), int(date[4:6]), int(date[6:]))
    except ValueError as e:
        raise Refuse(f"event_date {date!r} is not a %Y%m%d date: {e}")
    return WEEKDAYS[day.weekday()]


class AddWeekday(Transform):
    def fields(self):
        return ["event_date"]

    def transform(self, event, out):
        date = event.str("event_date")
        if date is None:
            raise Refuse("event has no event_date")
        out.add_field("weekday", weekday_name(date))


Transformer = export(AddWeekday)
