"""Memory stays flat: peak RSS of `datasync ingest` at 100,000 and at 1,000,000 events.

Prints both peaks and their ratio (target: within 20%).

    python bench/memory.py [--small 100000] [--large 1000000]
"""

from __future__ import annotations

import argparse

from common import count, database, ingest_args, machine, mock_api, server_dsn, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    args = ap.parse_args()
    server = server_dsn()
    print(f"machine: {machine()}")
    peaks = []
    for n in (args.small, args.large):
        dsn = database(server, "bench_memory")
        with mock_api("--events", str(n)) as url:
            result = timed(ingest_args(url, dsn, "--no-progress"))
        if result.returncode != 0:
            raise SystemExit(f"ingest failed ({result.returncode}):\n{result.output}")
        stored = count(dsn)
        peaks.append(result.max_rss_mib)
        print(f"{n:,} events ({stored:,} stored): peak RSS {result.max_rss_mib:.0f} MiB "
              f"in {result.seconds:.1f} s")
    print(f"ratio large / small: {peaks[1] / peaks[0]:.2f} (target <= 1.20)")


if __name__ == "__main__":
    main()
