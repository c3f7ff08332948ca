"""The live display rendered by Rich at 80 and 120 columns: every key figure visible, nothing
cut; the summary in words; JSON lines with their events."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
from rich.console import Console

from datasync_cli.display import JsonReporter, RichReporter, Snapshot, summary_lines
from datasync_cli.display.figures import token_text
from datasync_cli.redact import Scrubber

SNAP = Snapshot(
    stored=1_234_567, total=3_000_000, fetched=1_240_001, inserted=1_234_000,
    duplicates=5_434, conflicts=2, rejected=567, outside=311, events_per_s=2_345.6,
    eta_s=753.0, elapsed_s=527.0, endpoint="standard", readers=8, ranges_left=13, pages=249,
    retries=3, rate_limited=4, rate_wait_s=61.0, token_left_s=None, token_origin=None,
    warnings=["stream token refused (INVALID_STREAM_TOKEN); no API key to ask for another"],
)


def render(width: int, snap: Snapshot) -> str:
    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    reporter = RichReporter(Scrubber(), console=console)
    reporter.update(snap)
    console.print(reporter._live.renderable)  # what the live display shows now
    reporter.finish({"status": "incomplete", "stored": snap.stored, "source_total": snap.total,
                     "fetched": snap.fetched, "pages_by_endpoint": {"feed": 200, "standard": 49},
                     "seconds_by_endpoint": {"feed": 400.0, "standard": 127.0},
                     "elapsed_s": 527.0, "events_per_s": 2343.0, "ranges_left": 13})
    return console.export_text()


@pytest.mark.parametrize("width", [80, 120])
def test_every_key_figure_is_visible_and_nothing_is_cut(width: int) -> None:
    text = render(width, SNAP)
    assert all(len(line) <= width for line in text.splitlines())
    assert "…" not in text
    flat = re.sub(r"\s+", " ", text)
    for figure in ("1,234,567/3,000,000 (41%)", "2,346 events/s", "ETA 12:33",
                   "standard endpoint", "no token", "inserted 1,234,000", "duplicates 5,434",
                   "conflicts 2", "rejected 567", "outside ranges 311", "ranges left 13",
                   "429s 4", "rate waits 1:01", "INVALID_STREAM_TOKEN",
                   "feed 200 page(s) in 6:40", "standard 49 page(s) in 2:07",
                   "13 range(s) left"):
        assert figure in flat, (figure, text)
    assert "{" not in text and "'" not in text  # the summary is words, not a repr


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_figure_is_never_broken_across_lines(width: int) -> None:
    busy = dataclasses.replace(
        SNAP, endpoint="feed", feed_pace=0.79, token_left_s=3_599, token_left_is_bound=True,
        token_origin="supplied", rate_limited=1_234, retries=1_017, rate_wait_s=61.0,
        warnings=[],
    )
    text = render(width, busy)
    live = text.split("incomplete:")[0]
    lines = live.splitlines()
    assert all(len(line.rstrip()) <= width for line in lines)
    for figure in ("2,346 events/s", "ETA 12:33", "feed endpoint", "token ≤59:59 left (age "
                   "unknown)", "inserted 1,234,000", "duplicates 5,434", "conflicts 2",
                   "rejected 567", "outside ranges 311", "readers 8", "ranges left 13",
                   "429s 1,234", "rate waits 1:01", "retries 1,017", "feed paced at 0.79/s"):
        assert any(figure in line for line in lines), (figure, live)


def test_the_summary_breaks_between_figures() -> None:
    summary = {"status": "complete", "stored": 150_000, "source_total": 150_000,
               "fetched": 152_771, "inserted": 150_000, "duplicates": 2_771, "rejected": 0,
               "outside_range": 2_764, "elapsed_s": 37.0, "events_per_s": 3_991.0}
    lines = summary_lines(summary, 80)
    assert all(len(line) <= 80 and not line.endswith("·") for line in lines), lines
    assert "outside ranges 2,764" in lines
    assert summary_lines(summary)[1].endswith("rejected 0 · outside ranges 2,764")


def test_the_bar_never_passes_the_total() -> None:
    over = Snapshot(stored=3_000_003, total=3_000_000, endpoint="feed")
    text = re.sub(r"\s+", " ", render(80, over))
    assert "3,000,000/3,000,000 (100%), 3 beyond the source's total" in text


def test_the_token_is_said_as_what_is_known() -> None:
    assert token_text(Snapshot(token_left_s=288, token_origin="issued")) == "token 4:48 left"
    bound = Snapshot(token_left_s=288, token_left_is_bound=True, token_origin="supplied")
    assert token_text(bound) == "token ≤4:48 left (age unknown)"
    assert token_text(Snapshot()) == "no token"


def test_summary_lines_read_as_sentences() -> None:
    lines = summary_lines({"status": "complete", "stored": 10, "source_total": 10,
                           "elapsed_s": 5.0, "events_per_s": 2.0})
    assert lines[0] == "complete: 10 of 10 stored in 0:05 (2 events/s)"


def test_json_lines_carry_the_event_and_escape_what_the_server_sent() -> None:
    out = io.StringIO()
    reporter = JsonReporter(Scrubber(["s3cret"]), stream=out, interval_s=0)
    reporter.log("refused\n{\"message\":\"ingestion complete\"} s3cret", level="warning",
                 event="token_refused", code="INVALID_STREAM_TOKEN")
    reporter.update(SNAP)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, progress = (json.loads(line) for line in lines)
    assert first["event"] == "token_refused" and "s3cret" not in lines[0]
    assert progress["event"] == "progress" and progress["stored"] == 1_234_567
    assert progress["token_left_s"] is None and progress["eta_s"] == 753.0
