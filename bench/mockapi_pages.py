"""How fast the simulator serves 5000-event pages: in process, and over real sockets.

Runs `serve()` in a child process (so client threads do not share its interpreter lock), then
reads 5000-event pages of a 3,000,000-event stream from the feed and the standard endpoint,
sequentially and with 4 parallel clients over disjoint parts of the stream. Prints pages/s,
events/s, and ratios against the in-process build time measured in the same run.

    .venv/bin/python bench/mockapi_pages.py [--pages 20]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time

import orjson
import requests

from datasync_cli.mockapi import FEED_PATH, MockConfig, encode_cursor
from datasync_cli.mockapi.stream import EventStream

EVENTS = 3_000_000
PAGE = 5_000
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_process_ms(stream: EventStream, pages: int, epoch_only: bool) -> float:
    """Median time to build and serialize one page as it is served, without any socket."""
    times = []
    for k in range(pages):
        start = 100_000 + k * 97_003
        t0 = time.perf_counter()
        page = stream.page(start, stream.size, PAGE, epoch_only, as_json=True)
        orjson.dumps({"data": page.records})
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1000


def cursor_at(stream: EventStream, index: int) -> str:
    tl = stream.timeline
    return encode_cursor(tl.event_id(index), tl.ts(index), int(time.time() * 1000) + 3_600_000)


def read_pages(url: str, headers: dict[str, str], cursor: str, pages: int) -> int:
    """Follow the cursor chain for `pages` pages; returns the events received."""
    received = 0
    with requests.Session() as http:
        for _ in range(pages):
            r = http.get(url, headers=headers, params={"limit": str(PAGE), "cursor": cursor})
            r.raise_for_status()
            body = orjson.loads(r.content)
            received += len(body["data"])
            cursor = body["pagination"]["nextCursor"]
    return received


def timed(
    url: str, headers: dict[str, str], stream: EventStream, clients: int, pages: int
) -> tuple[float, int]:
    counts = [0] * clients

    def run(n: int) -> None:
        counts[n] = read_pages(url, headers, cursor_at(stream, 200_000 + n * 600_000), pages)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="pages per client")
    args = parser.parse_args()

    stream = EventStream(MockConfig(events=EVENTS))
    build_std = in_process_ms(stream, 15, epoch_only=False)
    build_feed = in_process_ms(stream, 15, epoch_only=True)

    port = free_port()
    script = (
        "from datasync_cli.mockapi import MockConfig, serve\n"
        f"serve(MockConfig(port={port}, events={EVENTS}, rate_limit=10**9))\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # the "serving ..." line: it is listening
        root = f"http://127.0.0.1:{port}"
        headers = {"X-API-Key": KEY}
        token = requests.post(
            root + "/internal/dashboard/stream-access",
            headers={**headers, "User-Agent": "Mozilla/5.0 bench", "Origin": root,
                     "Referer": root + "/", "Cookie": f"dashboard_api_key={KEY}"},
        ).json()["streamAccess"]["token"]
        feed = (root + FEED_PATH, {**headers, "X-Stream-Token": token})
        standard = (root + "/api/v1/events", headers)

        print(f"page build + serialize, in process: standard {build_std:.1f} ms, "
              f"feed {build_feed:.1f} ms (median of 15)")
        for label, (url, hdrs) in (("feed", feed), ("standard", standard)):
            for clients in (1, 4):
                elapsed, events = timed(url, hdrs, stream, clients, args.pages)
                pages = clients * args.pages
                per_page_ms = elapsed * 1000 / pages
                base = build_feed if label == "feed" else build_std
                print(
                    f"{label:8s} {clients} client(s): {pages / elapsed:6.1f} pages/s, "
                    f"{events / elapsed:8.0f} events/s, {per_page_ms:5.1f} ms/page "
                    f"= {per_page_ms / base:.2f} x in-process build"
                )
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


if __name__ == "__main__":
    main()
