"""Write-path efficiency, measured two ways in one run.

1. End to end: `datasync ingest` from a zero-latency simulator against raw `psql \\copy` of the
   very same rows (exported from our result) into `staging_events` in one go, then the upsert.
   Both paths end with the same rows in `ingested_events`.
2. The writer alone, on the same pages: datasync's path (a page with no stored id is COPYed
   straight into ingested_events, commits asynchronous) against the path it replaced (COPY into
   an UNLOGGED staging table with the instant as epoch microseconds, INSERT ... SELECT ... ON
   CONFLICT DO NOTHING, TRUNCATE, checkpoint, synchronous commit), each into a fresh database.
   Only the time spent writing is counted, not building the pages.

The end-to-end comparison runs `--rounds` times, ours then raw, and compares each run of ours
with the baseline runs on either side of it (the machine's speed drifts between minutes).

Prints events/s of each and their ratios (targets: ingest >= 1.1 x raw in every round; writer
>= 1.3 x old).

    python bench/write_path.py [--events 1000000] [--rounds 3] [--workers N] [--skip-sequential]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
from common import count, database, ingest_args, machine, mock_api, psql, server_dsn, timed

from datasync_cli.mockapi import MockConfig
from datasync_cli.mockapi.stream import EventStream
from datasync_cli.models import Batch, Checkpoint
from datasync_cli.sink import CopyWriter, migrate
from datasync_cli.sink.copy_format import make_batch
from datasync_cli.transform import transform_page

PAGE = 5000
UPSERT = (
    "INSERT INTO ingested_events (id, event_type, timestamp, data) "
    "SELECT id, event_type, timestamp, data::jsonb FROM staging_events "
    "ON CONFLICT (id) DO NOTHING; TRUNCATE staging_events;"
)
# The path datasync took before: staging with the instant as a number, converted in SQL.
OLD_STAGING = (
    "CREATE UNLOGGED TABLE old_staging (id TEXT, event_type TEXT, ts_us BIGINT, data TEXT)"
)
OLD_UPSERT = (
    "INSERT INTO ingested_events (id, event_type, timestamp, data) "
    "SELECT id, event_type, timestamptz 'epoch' + (ts_us / 1000000) * interval '1 second' "
    "+ (ts_us % 1000000) * interval '1 microsecond', data::jsonb FROM old_staging "
    "ON CONFLICT (id) DO NOTHING"
)
OLD_CHECKPOINT = (
    "INSERT INTO cursor_state (reader_id, events) VALUES ('r000', %s) "
    "ON CONFLICT (reader_id) DO UPDATE SET events = EXCLUDED.events, updated_at = now()"
)


def end_to_end(server: str, events: int, workers: int | None, sequential: bool,
               rounds: int) -> None:
    """`rounds` runs of ours, each followed by the raw baseline, so every run of ours sits
    between two baseline runs (the first after one): this machine's speed drifts by a fifth
    within minutes, and a ratio of two runs minutes apart would mostly measure the drift."""
    extra = ["--workers", str(workers)] if workers else []
    ours: list[float] = []
    raw: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.copy"
        for n in range(1, rounds + 1):
            ours.append(ingest_rate(server, events, f"datasync ingest, run {n}", extra, rows))
            raw.append(raw_rate(server, rows, n))
        sequential_rate = (
            ingest_rate(server, events, "datasync ingest --workers 1", ["--workers", "1"], rows)
            if sequential else None
        )
    ratios = []
    for n, rate in enumerate(ours):
        beside = raw[max(0, n - 1) : n + 1] if n else raw[:1]
        ratios.append(rate / (sum(beside) / len(beside)))
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"ratio datasync ingest / raw, each run against the baseline runs beside it: {shown}")
    print(f"  lowest {min(ratios):.2f}, median {statistics.median(ratios):.2f} "
          "(target >= 1.1 for the default)")
    if sequential_rate is not None:
        print(f"ratio --workers 1 / raw (mean of the baseline runs): "
              f"{sequential_rate / statistics.mean(raw):.2f}")


def ingest_rate(server: str, events: int, label: str, extra: list[str], rows: Path) -> float:
    """Events/s of one `datasync ingest`; its rows become the baseline's input the first time."""
    ours_db = database(server, "bench_write_ours")
    with mock_api("--events", str(events)) as url:
        ours = timed(ingest_args(url, ours_db, "--no-progress", *extra))
    if ours.returncode != 0:
        raise SystemExit(f"ingest failed ({ours.returncode}):\n{ours.output}")
    n = count(ours_db)
    rate = n / ours.seconds
    print(f"{label}: {n:,} rows in {ours.seconds:.1f} s = {rate:,.0f} events/s "
          f"(peak RSS {ours.max_rss_mib:.0f} MiB)")
    if not rows.exists():
        export = (f"\\copy (SELECT id, event_type, timestamp, data::text "
                  f"FROM ingested_events) TO '{rows}'")
        subprocess.run([psql(), ours_db, "-q", "-c", export], check=True)
    return rate


def raw_rate(server: str, rows: Path, n: int) -> float:
    """Events/s of raw `psql \\copy` of the same rows into staging plus the upsert."""
    raw_db = database(server, "bench_write_raw")
    migrate(raw_db)
    load = f"\\copy staging_events (id, event_type, timestamp, data) FROM '{rows}'"
    start = time.monotonic()
    subprocess.run([psql(), raw_db, "-q", "-1", "-c", load, "-c", UPSERT], check=True)
    raw_s = time.monotonic() - start
    m = count(raw_db)
    print(f"raw psql \\copy + upsert, run {n}: {m:,} rows in {raw_s:.1f} s = "
          f"{m / raw_s:,.0f} events/s")
    return m / raw_s


def pages(events: int) -> Iterator[Batch]:
    """The simulator's stream as the batches a reader would hand the writer."""
    stream = EventStream(MockConfig(events=events))
    start = 0
    n = 0
    while start < stream.size:
        page = stream.page(start, stream.size, PAGE, True)
        good, bad = transform_page(page.records)
        n += 1
        yield make_batch(good, bad, Checkpoint("r000", events=n * PAGE, endpoint="feed"))
        if page.last_index is None:
            break
        start = page.last_index + 1


def writer_alone(server: str, events: int) -> None:
    new_db = database(server, "bench_writer_new")
    migrate(new_db)
    new_s = 0.0
    with CopyWriter(new_db) as writer:
        for batch in pages(events):
            began = time.monotonic()
            writer.write(batch)
            new_s += time.monotonic() - began
    old_db = database(server, "bench_writer_old")
    migrate(old_db)
    old_s = 0.0
    conn = psycopg2.connect(old_db)
    with conn.cursor() as cur:
        cur.execute(OLD_STAGING)
    conn.commit()
    for batch in pages(events):
        rows = "".join(f"{e.id}\t{e.event_type or chr(92) + 'N'}\t{e.ts_us}\t"
                       f"{e.data.replace(chr(92), chr(92) * 2)}\n" for e in batch.events)
        payload = rows.encode()
        began = time.monotonic()
        with conn.cursor() as cur:
            cur.copy_expert("COPY old_staging FROM STDIN", io.BytesIO(payload))
            cur.execute(OLD_UPSERT)
            cur.execute("TRUNCATE old_staging")
            cur.execute(OLD_CHECKPOINT, (batch.checkpoint.events,))
        conn.commit()
        old_s += time.monotonic() - began
    conn.close()
    n, m = count(new_db), count(old_db)
    print(f"writer, datasync's path: {n:,} rows in {new_s:.1f} s of writing = "
          f"{n / new_s:,.0f} events/s")
    print(f"writer, the path it replaced: {m:,} rows in {old_s:.1f} s of writing = "
          f"{m / old_s:,.0f} events/s")
    print(f"ratio new / old writer: {(n / new_s) / (m / old_s):.2f} (target >= 1.3)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3, help="runs of ours, each beside the baseline")
    ap.add_argument("--skip-sequential", action="store_true", help="no --workers 1 run")
    ap.add_argument("--skip-writer", action="store_true", help="no writer-alone comparison")
    args = ap.parse_args()
    server = server_dsn()
    print(f"machine: {machine()}")
    print(f"events: {args.events:,}")
    end_to_end(server, args.events, args.workers, not args.skip_sequential, args.rounds)
    if not args.skip_writer:
        writer_alone(server, args.events)


if __name__ == "__main__":
    main()
