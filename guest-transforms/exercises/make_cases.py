#!/usr/bin/env python3
"""Writes the workshop exercises' test cases from the bundled Flood It events.

Expected outputs are computed here, in plain Python (datetime, grouping,
arithmetic), independently of runnel and of the reference solutions, so a
solution that scores 100% agrees with a second implementation.

    python3 guest-transforms/exercises/make_cases.py

Visible cases go to guest-transforms/exercises/NN-*/cases.ndjson (the
participants see them); held-back cases to
guest-transforms/solutions/NN-*/held-back.ndjson (the instructor's).
Deterministic: the same data gives the same files.
"""

import datetime
import gzip
import json
import math
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "guest-transforms" / "exercises"
SOLUTIONS = ROOT / "guest-transforms" / "solutions"
FIELDS = ["event_date", "event_timestamp", "event_name", "event_previous_timestamp",
          "event_value_in_usd", "user_pseudo_id"]


def events():
    with gzip.open(ROOT / "examples" / "data" / "floodit-events.ndjson.gz", "rt") as f:
        for line in f:
            e = json.loads(line)
            # Cases carry the fields the exercises use, to stay readable.
            yield {k: e.get(k) for k in FIELDS}


ALL = list(events())


def pick(pred, n, start=0):
    out = [e for e in ALL[start:] if pred(e)]
    return [dict(e) for e in out[:n]]


def case(name, hint, inputs, expect, **extra):
    c = {"name": name, "hint": hint, "input": inputs, "expect": expect}
    c.update(extra)
    return c


def write(path, cases):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for c in cases:
            f.write(json.dumps(c, separators=(",", ":")) + "\n")


# 01: filter gameplay events ------------------------------------------------

def is_gameplay(name):
    return name.startswith("level_") or name == "post_score"


def filter_cases():
    def expect(inputs):
        return [e for e in inputs if is_gameplay(e["event_name"])]

    mixed = [dict(e) for e in ALL[:12]]
    visible = [
        case("keeps a level_start", "level_start is a gameplay event: keep it unchanged.",
             pick(lambda e: e["event_name"] == "level_start", 1), pick(lambda e: e["event_name"] == "level_start", 1)),
        case("drops screen views and engagement", "screen_view and user_engagement are not gameplay: emit nothing for them.",
             pick(lambda e: e["event_name"] in ("screen_view", "user_engagement"), 4), []),
        case("keeps the quickplay variants", "level_end_quickplay starts with level_ too.",
             pick(lambda e: e["event_name"].endswith("_quickplay"), 3), pick(lambda e: e["event_name"].endswith("_quickplay"), 3)),
        case("a real mix, in order", "Keep gameplay events in their input order; drop the rest.", mixed, expect(mixed)),
    ]
    many = [dict(e) for e in ALL[1000:1060]]
    held = [
        case("post_score is gameplay", "Posting a score is part of playing: keep post_score.",
             pick(lambda e: e["event_name"] == "post_score", 2), pick(lambda e: e["event_name"] == "post_score", 2)),
        case("level_up and level_retry", "Every event whose name starts with level_ is gameplay.",
             pick(lambda e: e["event_name"] in ("level_up", "level_retry"), 4), pick(lambda e: e["event_name"] in ("level_up", "level_retry"), 4)),
        case("sixty real events", "Keep gameplay events in their input order.", many, expect(many)),
        case("an event without a name is refused", "Return Err(reason) for an event without event_name: it goes to the dead letters.",
             [{"event_timestamp": 1533279652346001, "user_pseudo_id": "U1"}], [], expect_rejected=[0]),
    ]
    return visible, held


# 02: add the weekday -------------------------------------------------------

def with_weekday(e):
    out = dict(e)
    day = datetime.datetime.strptime(e["event_date"], "%Y%m%d")
    out["weekday"] = day.strftime("%A")
    return out


def weekday_cases():
    def dated(date, n=1, start=0):
        evs = [dict(e) for e in ALL[start:start + n]]
        for e in evs:
            e["event_date"] = date
        return evs

    first = [dict(ALL[0])]
    ten = [dict(e) for e in ALL[100:110]]
    visible = [
        case("a Friday", "Parse event_date as %Y%m%d and add \"weekday\": \"Friday\".", first, [with_weekday(e) for e in first]),
        case("ten events of the bundled day", "Every event gets the weekday of its own event_date.", ten, [with_weekday(e) for e in ten]),
        case("a leap day", "20240229 is a Thursday: use a real calendar, not arithmetic on the digits.",
             dated("20240229"), [with_weekday(e) for e in dated("20240229")]),
        case("a malformed date is refused", "An event_date that is not %Y%m%d: return Err(reason).",
             dated("2018-08-03"), [], expect_rejected=[0]),
    ]
    mixed = dated("20181231", 2, 200) + dated("20190101", 2, 300) + dated("20180805", 2, 400)
    held = [
        case("year boundaries", "Each event's own date decides its weekday.", mixed, [with_weekday(e) for e in mixed]),
        case("a Sunday", "Weeks end on Sunday.", dated("20180805"), [with_weekday(e) for e in dated("20180805")]),
        case("a missing date is refused", "An event without event_date: return Err(reason).",
             [{k: v for k, v in ALL[5].items() if k != "event_date"}], [], expect_rejected=[0]),
    ]
    return visible, held


# 03 and 04: per user per minute ---------------------------------------------

MINUTE = 60_000_000


def rfc3339(us):
    return datetime.datetime.fromtimestamp(us / 1e6, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def per_user_minute(inputs, value_of, zero):
    acc = {}
    for e in inputs:
        start = e["event_timestamp"] - e["event_timestamp"] % MINUTE
        k = (e["user_pseudo_id"], start)
        acc[k] = value_of(acc.get(k, zero), e)
    return [{"key": u, "window_start": rfc3339(s), "value": v} for (u, s), v in sorted(acc.items())]


GAP = 30_000_000


def per_user_session(inputs, value_of, zero, gap=GAP):
    """Session windows (Beam's Sessions): a user's events closer than `gap`
    apart share a session; the value accumulates over it."""
    by_user = {}
    for e in inputs:
        by_user.setdefault(e["user_pseudo_id"], []).append(e)
    out = []
    for user, evs in sorted(by_user.items()):
        evs = sorted(evs, key=lambda e: e["event_timestamp"])
        start, end, acc = None, None, zero
        for e in evs:
            t = e["event_timestamp"]
            if start is not None and t < end:
                end = max(end, t + gap)
            else:
                if start is not None:
                    out.append({"key": user, "window_start": rfc3339(start), "value": acc})
                start, end, acc = t, t + gap, zero
            acc = value_of(acc, e)
        out.append({"key": user, "window_start": rfc3339(start), "value": acc})
    return out


def bridged(e, seconds):
    """Two sessions of `e`'s user, then an event between them that joins
    them: the host merges the two accumulators (the plugin's `merge`)."""
    out = []
    for dt in seconds:
        x = dict(e)
        x["event_timestamp"] = e["event_timestamp"] + dt * 1_000_000
        out.append(x)
    return out


SESSIONS = {"type": "session", "gap_s": GAP / 1e6}


def count_cases():
    count = lambda evs: per_user_minute(evs, lambda a, e: a + 1, 0)
    one_user = pick(lambda e: e["user_pseudo_id"] == ALL[0]["user_pseudo_id"], 8)
    first = [dict(e) for e in ALL[:40]]
    sessions = lambda evs: per_user_session(evs, lambda a, e: a + 1, 0)
    joined = bridged(ALL[0], [0, 10, 50, 60, 25])
    visible = [
        case("one event, one window", "A new accumulator starts at 0; each add is +1.", first[:1], count(first[:1])),
        case("one user's events", "Count each user's events per one-minute window.", one_user, count(one_user)),
        case("forty events, many users", "Keys and windows are the host's job; count what you are given.", first, count(first)),
        case("two sessions joined", "With session windows, an event between two sessions joins them: merge adds the "
             "two counts.", joined, sessions(joined), window=SESSIONS),
    ]
    boundary = [dict(ALL[0]) for _ in range(3)]
    base = ALL[0]["event_timestamp"] - ALL[0]["event_timestamp"] % MINUTE
    for e, ts in zip(boundary, [base + MINUTE - 1, base + MINUTE, base + MINUTE + 1]):
        e["event_timestamp"] = ts
    many = [dict(e) for e in ALL[5000:5400]]
    chain = bridged(ALL[0], [0, 40, 80, 120, 20, 100, 60])
    held = [
        case("the minute boundary", "Windows are half-open: an event at exactly hh:mm:00 belongs to the minute that starts then.",
             boundary, count(boundary)),
        case("four hundred events", "Count every event exactly once.", many, count(many)),
        case("sessions joined one by one", "Each bridging event merges two sessions' counts.", chain, sessions(chain),
             window=SESSIONS),
    ]
    return visible, held


def revenue_cases():
    def priced(evs, prices):
        out = []
        for e, p in zip(evs, prices):
            e = dict(e)
            e["event_name"] = "in_app_purchase" if p is not None else e["event_name"]
            e["event_value_in_usd"] = p
            out.append(e)
        return out

    def total(a, e):
        v = e["event_value_in_usd"]
        return a + (v if v is not None else 0.0)

    revenue = lambda evs: per_user_minute(evs, total, 0.0)
    user = ALL[0]["user_pseudo_id"]
    mine = pick(lambda e: e["user_pseudo_id"] == user, 6)
    visible = [
        case("one purchase", "Add event_value_in_usd to the accumulator.", priced(mine[:1], [0.99]), revenue(priced(mine[:1], [0.99]))),
        case("purchases add up", "Sum the values of a user's purchases in a minute.",
             priced(mine, [0.99, 1.99, 0.99, 4.99, 0.99, 0.99]), revenue(priced(mine, [0.99, 1.99, 0.99, 4.99, 0.99, 0.99]))),
        case("events without a value count as 0", "event_value_in_usd is null for most events: add nothing, but keep the window (0).",
             priced(mine, [None] * 6), revenue(priced(mine, [None] * 6))),
    ]
    mixed_src = [dict(e) for e in ALL[2000:2120]]
    prices = [[0.99, None, 2.49, None, None, 9.99][i % 6] for i in range(len(mixed_src))]
    whole = priced(mine[:2], [3, 2])
    joined = priced(bridged(ALL[0], [0, 10, 50, 60, 25]), [0.99, 1.99, 4.99, None, 2.49])
    chain = priced(bridged(ALL[0], [0, 40, 80, 20, 60]), [1.0, 2.0, 4.0, 8.0, 16.0])
    revenue_sessions = lambda evs: per_user_session(evs, total, 0.0)
    visible.append(case("two sessions joined", "With session windows, an event between two sessions joins them: merge "
                        "adds the two sums.", joined, revenue_sessions(joined), window=SESSIONS))
    held = [
        case("sessions joined one by one", "Each bridging event merges two sessions' sums.", chain, revenue_sessions(chain),
             window=SESSIONS),
        case("many users, some purchases", "Sum per user and minute; nulls add nothing.", priced(mixed_src, prices), revenue(priced(mixed_src, prices))),
        case("whole-dollar values", "A value written as an integer (3) is a number too.", whole, revenue(whole)),
    ]
    return visible, held


# 05: flag anomalous purchases ------------------------------------------------

ANOMALY_CONFIG = {"centroids": [[0.99, 24.0], [4.99, 96.0], [19.99, 240.0]], "scale": [5.0, 48.0], "threshold": 1.5}


def flag(e, cfg=ANOMALY_CONFIG):
    v = e["event_value_in_usd"]
    if v is None:
        return None
    hours = (e["event_timestamp"] - e["event_previous_timestamp"]) / 3.6e9
    x = [v / cfg["scale"][0], hours / cfg["scale"][1]]
    d = min(math.dist(x, [c[0] / cfg["scale"][0], c[1] / cfg["scale"][1]]) for c in cfg["centroids"])
    out = dict(e)
    out["anomaly"] = d > cfg["threshold"]
    out["anomaly_score"] = round(d, 4)
    return out


def anomaly_cases():
    def purchases(n, start, values, gaps_h):
        out = []
        for e, v, g in zip(ALL[start:start + n], values, gaps_h):
            e = dict(e)
            e["event_name"] = "in_app_purchase"
            e["event_value_in_usd"] = v
            e["event_previous_timestamp"] = e["event_timestamp"] - int(g * 3.6e9)
            out.append(e)
        return out

    def expect(inputs):
        return [f for f in (flag(e) for e in inputs) if f is not None]

    usual = purchases(3, 10, [0.99, 4.99, 0.99], [20, 90, 30])
    odd = purchases(2, 20, [99.99, 0.99], [1, 2000])
    mixed = [dict(e) for e in ALL[30:36]] + purchases(2, 40, [19.99, 49.99], [250, 3])
    visible = [
        case("usual purchases are not anomalies", "Distance to the nearest centroid (scaled features) is under the threshold: anomaly false.",
             usual, expect(usual), config=ANOMALY_CONFIG),
        case("unusual purchases are flagged", "A large value or a long absence is far from every centroid: anomaly true.",
             odd, expect(odd), config=ANOMALY_CONFIG),
        case("only purchases are scored", "Events without event_value_in_usd are not purchases: emit nothing for them.",
             mixed, expect(mixed), config=ANOMALY_CONFIG),
    ]
    many = purchases(20, 500, [0.99, 1.99, 4.99, 9.99, 19.99, 29.99, 0.49, 99.0, 2.99, 4.49] * 2,
                     [1, 12, 24, 48, 96, 200, 400, 800, 24, 90, 5, 30, 60, 120, 240, 480, 2, 20, 200, 2000])
    cfg2 = {"centroids": [[1.0, 10.0]], "scale": [1.0, 10.0], "threshold": 0.5}
    one = purchases(3, 600, [1.0, 1.2, 3.0], [10, 14, 10])
    held = [
        case("twenty purchases", "Score every purchase; keep them in order.", many, expect(many), config=ANOMALY_CONFIG),
        case("another configuration", "Read centroids, scale and threshold from the config, do not hard-code them.",
             one, [flag(e, cfg2) for e in one], config=cfg2),
    ]
    return visible, held


def main():
    for name, make in [("01-filter-gameplay", filter_cases), ("02-add-weekday", weekday_cases),
                       ("03-count-per-user", count_cases), ("04-revenue-per-user", revenue_cases),
                       ("05-flag-anomalies", anomaly_cases)]:
        visible, held = make()
        write(EXERCISES / name / "cases.ndjson", visible)
        write(SOLUTIONS / name / "held-back.ndjson", held)
        print(f"{name}: {len(visible)} visible, {len(held)} held-back cases")


if __name__ == "__main__":
    main()
