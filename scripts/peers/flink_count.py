"""The workshop's count in Apache Flink SQL (PyFlink), for `runnel bench`.

    python flink_count.py EVENTS.ndjson ROWS.txt

A TUMBLE window count of events per user per minute on event time
(event_timestamp, watermark = the largest time seen), parallelism 1,
streaming mode, reading the NDJSON file with Flink's JSON format. Writes one
line per window, `user,start_us,count`, and prints one JSON line:
{"events": N, "seconds": wall time from job submission to the last row}.
"""
import json
import sys
import time

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(path, out):
    with open(path) as f:
        events = sum(1 for l in f if l.strip())
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("parallelism.default", "1")
    config.set("table.local-time-zone", "UTC")
    env.execute_sql(f"""
        CREATE TABLE events (
            user_pseudo_id STRING,
            event_date STRING,
            event_timestamp BIGINT,
            ts AS TO_TIMESTAMP_LTZ(event_timestamp / 1000, 3),
            WATERMARK FOR ts AS ts
        ) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')
    """)
    started = time.time()
    result = env.execute_sql("""
        SELECT user_pseudo_id,
               UNIX_TIMESTAMP(DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss')) AS start_s,
               COUNT(*) AS n,
               MAX(DAYOFWEEK(TO_DATE(event_date, 'yyyyMMdd'))) AS weekday
        FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
        GROUP BY user_pseudo_id, window_start, window_end
    """)
    rows = []
    with result.collect() as results:
        for r in results:
            rows.append(f"{r[0]},{r[1] * 1_000_000},{r[2]}")
    seconds = time.time() - started
    with open(out, "w") as f:
        f.write("\n".join(sorted(rows)) + "\n")
    print(json.dumps({"events": events, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
