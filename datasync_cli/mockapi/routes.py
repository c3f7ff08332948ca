"""The service's paths, and which route a request takes."""

from __future__ import annotations

API_BASE = "/api/v1"
EVENTS_PATH = "/api/v1/events"
FEED_PATH = "/api/v1/events/d4ta/x7k9/feed"
TOKEN_PATH = "/internal/dashboard/stream-access"
TOKEN_HEADER = "X-Stream-Token"
# Only these get injected faults; the info and token endpoints never fail by chance.
DATA_ROUTES = ("events", "event", "feed")


def route_of(method: str, path: str) -> str:
    """The route name for a method and a path already stripped of its trailing slash."""
    if method == "GET":
        if path == API_BASE:
            return "info"
        if path == EVENTS_PATH:
            return "events"
        if path == FEED_PATH:
            return "feed"
        rest = path[len(EVENTS_PATH) + 1 :]
        if path.startswith(EVENTS_PATH + "/") and rest and "/" not in rest:
            return "event"
    if method == "POST" and path == TOKEN_PATH:
        return "stream_access"
    return "not_found"
