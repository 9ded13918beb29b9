"""Exercise 5: flag anomalous purchases (real-time ML inference).

A purchase is an event with a numeric `event_value_in_usd`. Score each one
against a k-means model shipped in the config:

    {"centroids": [[0.99, 24.0], [4.99, 96.0]], "scale": [5.0, 48.0], "threshold": 1.5}

Features: `[value in USD, hours since the user's previous event]`, the
hours being `(event_timestamp - event_previous_timestamp) / 3.6e9`
(timestamps are µs). Divide each feature (and each centroid coordinate) by
its `scale`, take the Euclidean distance to the nearest centroid, and emit
the purchase with two fields added: `"anomaly"`: distance > threshold, and
`"anomaly_score"`: the distance rounded to 4 decimals. Events that are not
purchases are not scored: emit nothing for them.

Check your work: `runnel try guest-transforms/python/exercises/05-flag-anomalies`.
"""

import json
import math

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export


class FlagAnomalies(Transform):
    def __init__(self, config):
        # The model, from the plugin's config (a bad one refuses the plugin).
        model = json.loads(config)
        self.centroids = model["centroids"]
        self.scale = model["scale"]
        self.threshold = model["threshold"]
        if not self.centroids:
            raise ValueError("the config needs at least one centroid")

    def fields(self):
        return ["event_value_in_usd", "event_timestamp", "event_previous_timestamp"]

    def nearest_distance(self, features):
        """Distance from `features` to the nearest centroid, in scaled units."""
        # TODO(snippet 1): scale `features` and every centroid by `self.scale`
        # (divide coordinate i by `self.scale[i]`), and return the smallest
        # Euclidean distance (`math.dist(p, q)` helps).
        raise NotImplementedError("distance to the nearest centroid")

    def transform(self, event, out):
        value = event.float("event_value_in_usd")
        if value is None:
            return  # not a purchase
        now = event.int("event_timestamp")
        if now is None:
            raise Refuse("a purchase without event_timestamp")
        previous = event.int("event_previous_timestamp")
        hours = (now - (now if previous is None else previous)) / 3.6e9
        # TODO(snippet 2): score `[value, hours]` with `self.nearest_distance`,
        # then emit the event with both fields added (the host edits its bytes):
        #   out.keep().add_field("anomaly", d > self.threshold).add_field("anomaly_score", round(d, 4))
        raise NotImplementedError("score the purchase and add the fields")


Transformer = export(FlagAnomalies)
