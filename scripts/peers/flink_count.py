"""The workshop's count in Apache Flink SQL (PyFlink), for `runnel bench`.

    python flink_count.py EVENTS.ndjson ROWS.txt

A TUMBLE window count of events per user per minute on event time
(event_timestamp), parallelism 1, reading the NDJSON file with Flink's JSON
format and writing the windows with its CSV format, in batch execution mode
(results read back through PyFlink's collect() cost a Python round trip per
row, which would be timing the bridge, not Flink). Writes one line per
window, `user,start_us,count`, and prints one JSON line:
{"events": N, "seconds": wall time of the job, submission to completion}.
"""
import glob
import json
import os
import shutil
import sys
import tempfile
import time

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(path, out):
    with open(path) as f:
        events = sum(1 for l in f if l.strip())
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
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
    outdir = tempfile.mkdtemp(prefix="flink-rows-")
    env.execute_sql(f"""
        CREATE TABLE windows (user_pseudo_id STRING, start_s BIGINT, n BIGINT, weekday BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{outdir}', 'format' = 'csv')
    """)
    started = time.time()
    env.execute_sql("""
        INSERT INTO windows
        SELECT user_pseudo_id,
               UNIX_TIMESTAMP(DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss')) AS start_s,
               COUNT(*) AS n,
               MAX(DAYOFWEEK(TO_DATE(event_date, 'yyyyMMdd'))) AS weekday
        FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
        GROUP BY user_pseudo_id, window_start, window_end
    """).wait()
    seconds = time.time() - started
    rows = []
    for part in glob.glob(os.path.join(outdir, "**", "*"), recursive=True):
        if os.path.isfile(part) and not os.path.basename(part).startswith("."):
            with open(part) as f:
                for line in f:
                    user, start_s, n, _ = line.strip().split(",")
                    user = user.strip('"')  # Flink's CSV quotes some values
                    rows.append(f"{user},{int(start_s) * 1_000_000},{n}")
    shutil.rmtree(outdir, ignore_errors=True)
    with open(out, "w") as f:
        f.write("\n".join(sorted(rows)) + "\n")
    print(json.dumps({"events": events, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
