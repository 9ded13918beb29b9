"""Exercise 2: add the weekday (the workshop's Cloud Run challenge).

Each event has `event_date` as `%Y%m%d` text, e.g. "20180803". Add a field
`"weekday"` with the English name of that day, e.g. "Friday", and keep
every other field as it is. An event whose `event_date` is missing or not a
`%Y%m%d` date is refused with a reason.

Check your work: `runnel try guest-transforms/python/exercises/02-add-weekday`.
"""

import datetime

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday_name(date):
    """"Monday" ... "Sunday" for `date` (%Y%m%d); raises Refuse if it is not a date."""
    # TODO(snippet 1): check that `date` is 8 digits (`len(date) == 8 and
    # date.isdigit()`), else `raise Refuse(...)`; make the day with
    # `datetime.date(int(date[:4]), int(date[4:6]), int(date[6:]))` (it
    # raises ValueError for a day that does not exist: refuse that too), and
    # name it with `WEEKDAYS[day.weekday()]`. (Not datetime.strptime: a
    # plugin can only import, while it runs, what it imported when it was
    # built, and strptime imports a module on its first call.)
    raise NotImplementedError(f"the weekday of {date!r}")


class AddWeekday(Transform):
    def fields(self):
        return ["event_date"]

    def transform(self, event, out):
        # TODO(snippet 2): read `event.str("event_date")`, refusing an event
        # without one (`raise Refuse("event has no event_date")`); name its
        # day with `weekday_name(date)`; add the field with
        # `out.add_field("weekday", weekday)`.
        raise NotImplementedError("add the weekday field")


Transformer = export(AddWeekday)
