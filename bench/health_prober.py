#!/usr/bin/env python3
"""Hit a URL every --interval seconds until --stop-file exists (or --duration
passes) and print what a user would have seen, as JSON: how many requests,
how many failed (no answer, or a status other than 200), and the longest gap
between two successful answers. Standard library only: it runs on the
controller (bench/rebuild_downtime) and inside a test instance (molecule/rebuild).

  health_prober.py --url http://127.0.0.1:8502/health --stop-file /tmp/stop [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path


def probe(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> tuple[bool, str]:
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status == 200, str(response.status)
    except urllib.error.HTTPError as error:
        return False, str(error.code)
    except OSError as error:
        return False, type(error).__name__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--stop-file", default="")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0: until --stop-file")
    parser.add_argument("--out", default="", help="write the JSON here too")
    args = parser.parse_args()

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    start = time.monotonic()
    last_ok = start
    longest_gap = 0.0
    total = failed = 0
    failures: dict[str, int] = {}
    first_failure_at = last_failure_at = None
    next_at = start
    while True:
        now = time.monotonic()
        if args.stop_file and Path(args.stop_file).exists():
            break
        if args.duration and now - start >= args.duration:
            break
        ok, status = probe(opener, args.url, args.timeout)
        answered = time.monotonic()
        total += 1
        if ok:
            longest_gap = max(longest_gap, answered - last_ok)
            last_ok = answered
        else:
            failed += 1
            failures[status] = failures.get(status, 0) + 1
            if first_failure_at is None:
                first_failure_at = answered - start
            last_failure_at = answered - start
        next_at += args.interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    end = time.monotonic()
    longest_gap = max(longest_gap, end - last_ok) if failed else longest_gap
    result = {
        "url": args.url,
        "seconds": round(end - start, 3),
        "probes": total,
        "failed": failed,
        "failures": failures,
        "longest_gap_seconds": round(longest_gap, 3),
        "first_failure_at": first_failure_at,
        "last_failure_at": last_failure_at,
    }
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
