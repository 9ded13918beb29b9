"""Reference solution of exercise 5: k-means anomaly scores for purchases.

Graded by the tests (tests/tests/python.rs); the template is
guest-transforms/python/exercises/05-flag-anomalies.
"""

import json
import math

from runnel_sdk import Refuse
from runnel_sdk.transform import Transform, export


class FlagAnomalies(Transform):
    def __init__(self, config):
        model = json.loads(config)
        self.centroids = model["centroids"]
        self.scale = model["scale"]
        self.threshold = model["threshold"]
        if not self.centroids:
            raise ValueError("the config needs at least one centroid")

    def fields(self):
        return ["event_value_in_usd", "event_timestamp", "event_previous_timestamp"]

    def nearest_distance(self, features):
        scaled = [f / s for f, s in zip(features, self.scale)]
        return min(math.dist(scaled, [c / s for c, s in zip(centroid, self.scale)]) for centroid in self.centroids)

    def transform(self, event, out):
        value = event.float("event_value_in_usd")
        if value is None:
            return
        now = event.int("event_timestamp")
        if now is None:
            raise Refuse("a purchase without event_timestamp")
        previous = event.int("event_previous_timestamp")
        d = self.nearest_distance([value, (now - (now if previous is None else previous)) / 3.6e9])
        out.keep().add_field("anomaly", d > self.threshold).add_field("anomaly_score", round(d, 4))


Transformer = export(FlagAnomalies)
