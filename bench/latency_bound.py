"""Latency-bound throughput: a simulator with 3.5 s per request and a hidden feed throttle.

The throttle (0.8 requests/s) caps any client at 0.8 x 5000 = 4,000 events/s. Prints events/s
of `datasync ingest` with its default readers and with `--workers 1` (the sequential baseline),
each as a fraction of that ceiling, and the number of 429s the client provoked.
Target: >= 0.9 of the ceiling with no more than a handful of 429s.

    python bench/latency_bound.py [--events 1000000] [--latency-ms 3500] [--feed-rate 0.8]
"""

from __future__ import annotations

import argparse
import json

from common import count, database, ingest_args, machine, mock_api, server_dsn, timed


def summary_of(output: str) -> dict[str, object]:
    for line in reversed(output.splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("event") == "summary":
            return dict(obj)
    return {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--latency-ms", type=float, default=3500)
    ap.add_argument("--feed-rate", type=float, default=0.8)
    ap.add_argument("--feed-burst", type=int, default=2)
    ap.add_argument("--skip-sequential", action="store_true")
    args = ap.parse_args()
    server = server_dsn()
    ceiling = args.feed_rate * 5000
    print(f"machine: {machine()}")
    print(f"events: {args.events:,}; latency {args.latency_ms:.0f} ms; feed throttle "
          f"{args.feed_rate}/s (burst {args.feed_burst}); ceiling {ceiling:,.0f} events/s")
    runs = [("parallel (default readers)", "latency-parallel", [])]
    if not args.skip_sequential:
        runs.append(("sequential (--workers 1)", "latency-sequential", ["--workers", "1"]))
    for label, log, extra in runs:
        dsn = database(server, "bench_latency")
        knobs = ["--events", str(args.events), "--latency-ms", str(args.latency_ms),
                 "--latency-jitter-ms", str(args.latency_ms / 10), "--feed-rate",
                 str(args.feed_rate), "--feed-burst", str(args.feed_burst)]
        with mock_api(*knobs) as url:
            result = timed(ingest_args(url, dsn, "--no-progress", *extra), log=log)
        if result.returncode != 0:
            raise SystemExit(f"{label}: ingest failed ({result.returncode}):\n{result.output}")
        n = count(dsn)
        rate = n / result.seconds
        s = summary_of(result.output)
        print(f"{label}: {n:,} events in {result.seconds:.1f} s = {rate:,.0f} events/s = "
              f"{rate / ceiling:.2f} of the ceiling; 429s: {s.get('rate_limited', '?')}")


if __name__ == "__main__":
    main()
