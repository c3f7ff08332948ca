"""Render docs/display.svg: the live display of a real run, as Rich draws it at 80 columns.

The run reads a local simulator's feed with short-lived stream tokens; part way through, the
simulator stops handing out tokens, so the run switches to the rate-limited standard endpoint
and says so. The picture is the display's last frame, with the lines logged above it and the
summary below.

    .venv/bin/python scripts/render_display.py [--database-url DSN] [--out docs/display.svg]

Without --database-url it uses the server on 127.0.0.1:5432 (database datasync_display, which
it drops and creates) or a private cluster under .datasync/pg.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from datasync_cli.demo import pick_database  # noqa: E402
from datasync_cli.display import NullReporter, RichReporter  # noqa: E402
from datasync_cli.mockapi import MockConfig, running_mock  # noqa: E402
from datasync_cli.pipeline import run_ingest  # noqa: E402
from datasync_cli.redact import Scrubber  # noqa: E402
from datasync_cli.settings import Settings  # noqa: E402
from datasync_cli.sink import create_database_for, drop_database  # noqa: E402

KEY = "display-key"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url")
    ap.add_argument("--out", default=str(ROOT / "docs" / "display.svg"))
    args = ap.parse_args()
    dsn = args.database_url or pick_database(None, ROOT, NullReporter()).replace(
        "datasync_demo", "datasync_display"
    )
    drop_database(dsn)
    create_database_for(dsn)
    config = MockConfig(
        events=150_000, api_key=KEY, latency_ms=1000, latency_jitter_ms=200, token_ttl=8.0,
        rate_limit=10, rate_window=6.0,
    )
    # Not a terminal: the live display draws its last frame once, when it stops, so the
    # recording holds the lines logged during the run, that frame, and the summary.
    console = Console(width=80, record=True, file=io.StringIO(), force_terminal=False,
                      color_system="truecolor")
    reporter = RichReporter(Scrubber([KEY]), console=console)
    with running_mock(config) as server:
        def refuse_tokens() -> None:
            # The dashboard stops handing out tokens: the next renewal is refused.
            time.sleep(4.0)
            server.app.config = dataclasses.replace(server.app.config, no_stream_access=True)

        threading.Thread(target=refuse_tokens, daemon=True).start()
        settings = Settings(database_url=dsn, api_url=server.url, api_key=KEY, workers=4,
                            page_size=2500)
        outcome = run_ingest(settings, reporter, threading.Event())
    reporter.finish(outcome.summary)
    console.save_svg(args.out, title="datasync ingest")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
