"""Latency-bound throughput: a simulator with 3.5 s per request and a hidden feed throttle.

The throttle (0.8 requests/s) caps any client at 0.8 x 5000 = 4,000 events/s. Prints events/s
of `datasync ingest` with its default readers and with `--workers 1` (the sequential baseline),
each as a fraction of that ceiling and of the ideal run (see `ideal_seconds`), and the number
of 429s the client provoked.
Target: >= 0.9 of the ceiling with no more than a handful of 429s.

    python bench/latency_bound.py [--events 1000000] [--latency-ms 3500] [--feed-rate 0.8]
"""

from __future__ import annotations

import argparse
import json
import math

from common import count, database, ingest_args, machine, mock_api, server_dsn, timed

PAGE = 5000


def ideal_seconds(events: int, latency_s: float, rate: float, burst: int, readers: int) -> float:
    """The fastest a client with `readers` requests in flight can be against this simulator.

    The first page (from the standard endpoint, which says where the stream is) and the stream
    token take one round trip side by side; the feed's bucket is then full, so `burst` requests
    go at once and the rest one every 1/rate s; the last answer arrives one round trip after
    the last request. Every page is full, none is refused. One reader sends one request per
    round trip, which the bucket never holds back at these numbers."""
    feed_requests = max(math.ceil(events / PAGE) - 1, 0)
    if readers == 1:
        return (1 + feed_requests) * latency_s
    return 2 * latency_s + max(feed_requests - burst, 0) / rate


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
    ceiling = args.feed_rate * PAGE
    jitter_ms = args.latency_ms / 10
    mean_latency_s = (args.latency_ms + jitter_ms / 2) / 1000
    ideal = ideal_seconds(args.events, mean_latency_s, args.feed_rate, args.feed_burst, 8)
    ideal_share = args.events / ideal / ceiling
    print(f"machine: {machine()}")
    print(f"events: {args.events:,}; latency {args.latency_ms:.0f} ms (+0-{jitter_ms:.0f} ms); "
          f"feed throttle {args.feed_rate}/s (burst {args.feed_burst}); ceiling "
          f"{ceiling:,.0f} events/s; ideal run {ideal:.1f} s = {ideal_share:.3f} of the ceiling")
    runs = [("parallel (default readers)", "latency-parallel", [], ideal)]
    if not args.skip_sequential:
        alone = ideal_seconds(args.events, mean_latency_s, args.feed_rate, args.feed_burst, 1)
        runs.append(("sequential (--workers 1)", "latency-sequential", ["--workers", "1"], alone))
    for label, log, extra, best in runs:
        dsn = database(server, "bench_latency")
        knobs = ["--events", str(args.events), "--latency-ms", str(args.latency_ms),
                 "--latency-jitter-ms", str(jitter_ms), "--feed-rate",
                 str(args.feed_rate), "--feed-burst", str(args.feed_burst)]
        with mock_api(*knobs) as url:
            result = timed(ingest_args(url, dsn, "--no-progress", *extra), log=log)
        if result.returncode != 0:
            raise SystemExit(f"{label}: ingest failed ({result.returncode}):\n{result.output}")
        n = count(dsn)
        rate = n / result.seconds
        s = summary_of(result.output)
        pages = s.get("pages_by_endpoint", {})
        print(f"{label}: {n:,} events in {result.seconds:.1f} s = {rate:,.0f} events/s = "
              f"{rate / ceiling:.3f} of the ceiling, {best / result.seconds:.3f} of the ideal "
              f"({best:.1f} s); 429s: {s.get('rate_limited', '?')}; pages: {pages}; "
              f"the run's own clock {s.get('elapsed_s', '?')} s")


if __name__ == "__main__":
    main()
