"""Writes replay scenarios that exercise Beam's windowing rules on real Flood It
events: every window kind, both accumulation modes, allowed lateness, early,
on-time and late firings, processing-time triggers, sessions that merge, and
boundary instants. Deterministic (fixed seeds).

Usage: python make_scenarios.py SAMPLE.ndjson OUT_DIR
Then compute each one's golden with make_golden.py (scripts/beam-golden.sh).
"""

import gzip
import json
import os
import random
import sys

WM_STEP_US = 10_000_000  # the watermark moves every 10 s of processing time

CONFIGS = {
    "fixed_default_discarding": dict(window={"type": "fixed", "size_s": 60}, trigger={"type": "default"},
                                     accumulation="discarding", allowed_lateness_s=0),
    "fixed_default_lateness": dict(window={"type": "fixed", "size_s": 60}, trigger={"type": "default"},
                                   accumulation="accumulating", allowed_lateness_s=120),
    "sliding_default": dict(window={"type": "sliding", "size_s": 60, "period_s": 20}, trigger={"type": "default"},
                            accumulation="discarding", allowed_lateness_s=30),
    "sliding_early_count": dict(window={"type": "sliding", "size_s": 120, "period_s": 30},
                                trigger={"type": "after_watermark", "early": {"type": "after_count", "count": 3},
                                         "late": None},
                                accumulation="accumulating", allowed_lateness_s=0),
    "session_default": dict(window={"type": "session", "gap_s": 30}, trigger={"type": "default"},
                            accumulation="discarding", allowed_lateness_s=0),
    "session_early_late": dict(window={"type": "session", "gap_s": 45},
                               trigger={"type": "after_watermark", "early": {"type": "after_count", "count": 2},
                                        "late": {"type": "after_count", "count": 1}},
                               accumulation="accumulating", allowed_lateness_s=120),
    "global_count_discarding": dict(window={"type": "global"},
                                    trigger={"type": "repeatedly", "of": {"type": "after_count", "count": 3}},
                                    accumulation="discarding", allowed_lateness_s=0),
    "global_count_accumulating": dict(window={"type": "global"},
                                      trigger={"type": "repeatedly", "of": {"type": "after_count", "count": 2}},
                                      accumulation="accumulating", allowed_lateness_s=0),
    "fixed_repeated_processing_time": dict(window={"type": "fixed", "size_s": 60},
                                           trigger={"type": "repeatedly",
                                                    "of": {"type": "after_processing_time", "delay_s": 30}},
                                           accumulation="discarding", allowed_lateness_s=0),
    "fixed_early_count_late_count": dict(window={"type": "fixed", "size_s": 60},
                                         trigger={"type": "after_watermark",
                                                  "early": {"type": "after_count", "count": 2},
                                                  "late": {"type": "after_count", "count": 1}},
                                         accumulation="discarding", allowed_lateness_s=60),
    "fixed_early_pt_late_pt": dict(window={"type": "fixed", "size_s": 60},
                                   trigger={"type": "after_watermark",
                                            "early": {"type": "after_processing_time", "delay_s": 10},
                                            "late": {"type": "after_processing_time", "delay_s": 5}},
                                   accumulation="accumulating", allowed_lateness_s=120),
    "fixed_watermark_only": dict(window={"type": "fixed", "size_s": 60},
                                 trigger={"type": "after_watermark", "early": None, "late": None},
                                 accumulation="discarding", allowed_lateness_s=60),
    "fixed_repeated_count": dict(window={"type": "fixed", "size_s": 30},
                                 trigger={"type": "repeatedly", "of": {"type": "after_count", "count": 2}},
                                 accumulation="discarding", allowed_lateness_s=0),
    "fixed_any_count_or_time": dict(window={"type": "fixed", "size_s": 60},
                                    trigger={"type": "repeatedly", "of": {"type": "after_any", "of": [
                                        {"type": "after_count", "count": 3},
                                        {"type": "after_processing_time", "delay_s": 20}]}},
                                    accumulation="accumulating", allowed_lateness_s=30),
}


def slim(event):
    return {k: event[k] for k in ("event_date", "event_timestamp", "event_name", "user_pseudo_id")}


def scenario(name, cfg, events, seed):
    rng = random.Random(seed)
    users = sorted({e["user_pseudo_id"] for e in events})
    chosen = set(rng.sample(users, min(3, len(users))))
    stream = [e for e in events if e["user_pseudo_id"] in chosen][:60]
    # Arrival order: mostly in time order, some events held back (late).
    arrivals = []
    for e in stream:
        ts_us = e["event_timestamp"] // 1000 * 1000  # Beam's millisecond precision
        delay = rng.choice([0] * 6 + [15, 40, 90, 150])
        arrivals.append((ts_us + delay * 1_000_000, ts_us, e))
    arrivals.sort(key=lambda a: a[0])
    lines = [{"config": dict(cfg, aggregate="count")}, {"processing_time_us": 0}]
    t0 = arrivals[0][1] - 5_000_000
    pt = 0
    wm = None
    next_wm_pt = WM_STEP_US
    for arrive, ts_us, e in arrivals:
        arrive_pt = arrive - t0
        while next_wm_pt <= arrive_pt:
            lines.append({"processing_time_us": next_wm_pt})
            pt = next_wm_pt
            new_wm = t0 + next_wm_pt - 3_500_000
            if wm is None or new_wm > wm:
                wm = new_wm
                lines.append({"watermark_us": wm})
            next_wm_pt += WM_STEP_US
        if arrive_pt > pt:
            pt = arrive_pt // 1000 * 1000
            lines.append({"processing_time_us": pt})
        lines.append({"event": slim(e), "ts_us": ts_us})
    # Boundary instants: an element exactly at a window start, the watermark
    # one millisecond before a window end, then exactly at it.
    last_ts = arrivals[-1][1]
    if cfg["window"]["type"] in ("fixed", "sliding"):
        size = cfg["window"].get("period_s", cfg["window"].get("size_s")) * 1_000_000
        boundary = (last_ts // size + 1) * size
        user = sorted(chosen)[0]
        lines.append({"event": slim(dict(stream[0], user_pseudo_id=user, event_timestamp=boundary)), "ts_us": boundary})
        for target in (boundary + size - 1000, boundary + size):
            if wm is None or target > wm:
                lines.append({"watermark_us": target})
                wm = target
            pt += 1_000_000
            lines.append({"processing_time_us": pt})
    lines.append({"processing_time_us": pt + 600_000_000})
    lines.append({"watermark_us": "inf"})
    return lines


def main(sample, out_dir):
    opener = gzip.open if sample.endswith(".gz") else open
    with opener(sample, "rt") as f:
        events = []
        for line in f:
            if line.strip():
                events.append(json.loads(line))
            if len(events) >= 3000:
                break
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, cfg) in enumerate(sorted(CONFIGS.items())):
        lines = scenario(name, cfg, events, seed=1000 + i)
        with open(os.path.join(out_dir, f"gen_{name}.ndjson"), "w") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
