#!/usr/bin/env python3
"""Runs the workspace's test binaries (built by `cargo test --no-run`) the
way `cargo test` does, but the slow ones that mostly wait (on the
emulators' leases and redeliveries) at the same time as the rest, each in a
process of its own: the test phase then takes about as long as its longest
lane, not the sum of all. Prints each binary's output (the waiting ones
once they end), the wall time of each, and a closing line
`tests: N passed, N failed`. Exit status 1 if any binary failed.

    scripts/run-tests.py [--parallel a,b] [--skip c,d] [--no-doc] -- CRATE-ARGS -- [FILTER ...]

CRATE-ARGS are cargo's package arguments (`-p runnel -p ...`); FILTER is
passed to every test binary (a name filter, as `cargo test NAME`).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")


def executables(crate_args):
    """(label, path, package folder) of each test binary, in cargo's order."""
    out = subprocess.run(
        ["cargo", "test", "--locked", *crate_args, "--no-run", "--message-format=json"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    found = []
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") != "compiler-artifact" or not m.get("profile", {}).get("test") or not m.get("executable"):
            continue
        target = m["target"]
        kind = target["kind"][0]
        label = target["name"] if kind == "test" else f"{target['name']} ({kind})"
        found.append((label, m["executable"], os.path.dirname(m["manifest_path"])))
    return found


def counts(text):
    passed = failed = ignored = 0
    for line in text.splitlines():
        r = RESULT.match(line)
        if r:
            passed, failed, ignored = passed + int(r[1]), failed + int(r[2]), ignored + int(r[3])
    return passed, failed, ignored


def env_for(folder):
    env = dict(os.environ)
    # What cargo sets for a test binary that tests here read.
    env["CARGO_MANIFEST_DIR"] = folder
    env.setdefault("CARGO", "cargo")
    return env


def main():
    args = sys.argv[1:]
    if "--" not in args:
        sys.exit(__doc__)
    split = args.index("--")
    own, rest = args[:split], args[split + 1 :]
    crate_args, filters = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
    p = argparse.ArgumentParser()
    p.add_argument("--parallel", default="")
    p.add_argument("--skip", default="")
    p.add_argument("--no-doc", action="store_true")
    opts = p.parse_args(own)
    parallel = set(filter(None, opts.parallel.split(",")))
    skip = set(filter(None, opts.skip.split(",")))
    logs = os.path.join("target", "test-logs")
    os.makedirs(logs, exist_ok=True)

    bins = [b for b in executables(crate_args) if b[0] not in skip]
    waiting = {}
    ended = {}  # label: (when its process ended, its exit status); a thread waits for each

    def note_end(label, proc):
        status = proc.wait()
        ended[label] = (time.monotonic(), status)

    for label, exe, folder in bins:
        if label in parallel:
            log = open(os.path.join(logs, f"{label}.log"), "w")
            proc = subprocess.Popen([exe, *filters], cwd=folder, env=env_for(folder), stdout=log, stderr=subprocess.STDOUT)
            waiter = threading.Thread(target=note_end, args=(label, proc), daemon=True)
            waiter.start()
            waiting[label] = (waiter, log, time.monotonic())
    if waiting:
        print(f"running at the same time as the rest (output when each ends): {', '.join(waiting)}", flush=True)

    results = []  # (label, seconds, status, passed, failed, ignored)
    for label, exe, folder in bins:
        if label in parallel:
            continue
        print(f"     Running {label} ({exe})", flush=True)
        start = time.monotonic()
        proc = subprocess.run([exe, *filters], cwd=folder, env=env_for(folder), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(proc.stdout)
        sys.stdout.flush()
        results.append((label, time.monotonic() - start, proc.returncode, *counts(proc.stdout)))
    if not opts.no_doc and not filters:
        print("   Doc-tests", flush=True)
        start = time.monotonic()
        proc = subprocess.run(["cargo", "test", "--locked", *crate_args, "--doc"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(proc.stdout)
        results.append(("doc-tests", time.monotonic() - start, proc.returncode, *counts(proc.stdout)))
    for label, (waiter, log, start) in waiting.items():
        waiter.join()  # the process has ended, and its end is noted
        log.close()
        end, status = ended[label]
        took = end - start
        with open(log.name) as f:
            text = f.read()
        print(f"     Ran {label} (at the same time as the rest, {took:.0f} s)")
        sys.stdout.write(text)
        results.append((label, took, status, *counts(text)))

    print("\ntest binaries (wall time, result):")
    for label, took, status, passed, failed, ignored in results:
        verdict = "ok" if status == 0 else f"FAILED (exit {status})"
        print(f"  {label:<28} {took:7.1f} s  {passed:4d} passed {failed:3d} failed  {verdict}")
    total_passed = sum(r[3] for r in results)
    total_failed = sum(r[4] for r in results)
    total_ignored = sum(r[5] for r in results)
    broken = [r[0] for r in results if r[2] != 0]
    # A binary that failed without a result line (it crashed) counts as one failure.
    print(f"tests: {total_passed} passed, {max(total_failed, len(broken))} failed, {total_ignored} skipped")
    if broken:
        print(f"failed: {', '.join(broken)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
