"""Write-path efficiency: `datasync ingest` from a zero-latency simulator against raw `psql \\copy`.

Both paths end with the same rows in `ingested_events`: ours fetches pages over HTTP, parses,
normalizes and writes them page by page; the baseline copies the very same rows (exported from
our result) from a local file into `staging_events` in one go, then runs the same upsert.
Prints events/s of each and their ratio (target: ours >= 0.8 x raw).

    python bench/write_path.py [--events 1000000] [--workers N]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from common import count, database, ingest_args, machine, mock_api, psql, server_dsn, timed

UPSERT = (
    "INSERT INTO ingested_events (id, event_type, timestamp, data) "
    "SELECT id, event_type, timestamptz 'epoch' + ts_us * interval '1 microsecond', data::jsonb "
    "FROM staging_events WHERE writer_id = 0 ON CONFLICT (id) DO NOTHING; "
    "DELETE FROM staging_events WHERE writer_id = 0;"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--skip-sequential", action="store_true", help="no --workers 1 run")
    args = ap.parse_args()
    server = server_dsn()
    print(f"machine: {machine()}")
    print(f"events: {args.events:,}")

    runs = [("datasync ingest", ["--workers", str(args.workers)] if args.workers else [])]
    if not args.skip_sequential:
        runs.append(("datasync ingest --workers 1", ["--workers", "1"]))
    rates = {}
    ours_db = ""
    for label, extra in runs:
        ours_db = database(server, "bench_write_ours")
        with mock_api("--events", str(args.events)) as url:
            ours = timed(ingest_args(url, ours_db, "--no-progress", *extra))
        if ours.returncode != 0:
            raise SystemExit(f"ingest failed ({ours.returncode}):\n{ours.output}")
        n = count(ours_db)
        rates[label] = n / ours.seconds
        print(f"{label}: {n:,} rows in {ours.seconds:.1f} s = {rates[label]:,.0f} events/s "
              f"(peak RSS {ours.max_rss_mib:.0f} MiB)")

    raw_db = database(server, "bench_write_raw")
    subprocess.run([*ingest_args("http://unused/api/v1", raw_db)[:3], "migrate",
                    "--database-url", raw_db], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.copy"
        export = (
            "\\copy (SELECT 0, id, event_type, "
            "(extract(epoch FROM timestamp) * 1000000)::bigint, data::text "
            f"FROM ingested_events) TO '{rows}'"
        )
        subprocess.run([psql(), ours_db, "-q", "-c", export], check=True)
        load = f"\\copy staging_events (writer_id, id, event_type, ts_us, data) FROM '{rows}'"
        start = time.monotonic()
        subprocess.run([psql(), raw_db, "-q", "-1", "-c", load, "-c", UPSERT], check=True)
        raw_s = time.monotonic() - start
    m = count(raw_db)
    print(f"raw psql \\copy + upsert: {m:,} rows in {raw_s:.1f} s = {m / raw_s:,.0f} events/s")
    for label, rate in rates.items():
        print(f"ratio {label} / raw: {rate / (m / raw_s):.2f} (target >= 0.80 for the default)")


if __name__ == "__main__":
    main()
