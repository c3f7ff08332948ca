"""The body of each synthetic event, derived from its index so nothing is stored per event."""

from __future__ import annotations

from functools import lru_cache
from time import gmtime
from typing import Any

import orjson
from orjson import Fragment

from .mix import M48, M64, derive_key, mix64
from .timeline import uuid_text

EVENT_TYPES = (
    "page_view",
    "click",
    "api_call",
    "form_submit",
    "scroll",
    "purchase",
    "error",
    "video_play",
)
# Weighted like real traffic: views and clicks dominate, purchases and errors are rare.
_TYPE_TABLE = (0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 0, 1, 2, 4, 0, 1, 3, 7, 0, 1,
               2, 4, 5, 0)
DEVICE_TYPES = ("desktop", "mobile", "tablet")
BROWSERS = ("Chrome", "Safari", "Firefox", "Edge", "Opera", "Samsung Internet")
_PAGES = ("/home", "/pricing", "/products", "/products/widget-pro", "/checkout", "/cart",
          "/account/settings", "/blog/how-we-scaled", "/docs/getting-started", "/search",
          "/signup", "/login", "/about", "/careers", "/support/tickets", "/dashboard")
_REFERRERS = ("https://www.google.com/", "https://news.ycombinator.com/", "direct",
              "https://twitter.com/", "https://www.bing.com/", "https://duckduckgo.com/")
_ELEMENTS = ("button#signup", "a.nav-link", "button.add-to-cart", "div.card", "input#search",
             "button#checkout", "a.footer-link", "img.hero")
_API_PATHS = ("/api/orders", "/api/users/me", "/api/products", "/api/cart", "/api/search",
              "/api/recommendations")
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_STATUSES = (200, 200, 200, 200, 201, 204, 304, 400, 404, 500)
_FORMS = ("signup", "login", "checkout", "newsletter", "contact", "feedback")
_CURRENCIES = ("USD", "EUR", "GBP", "JPY")
_ERRORS = (("TypeError", "Cannot read properties of undefined (reading 'id')"),
           ("NetworkError", "Failed to fetch"),
           ("RangeError", "Maximum call stack size exceeded"),
           ("TimeoutError", "Request timed out after 30000ms"))
_H1 = 0x9E3779B97F4A7C15
_H2 = 0xBF58476D1CE4E5B9
_H3 = 0xD6E8FEB86659FD93
_VARIANTS = 512
_VARIANT_MASK = _VARIANTS - 1
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_PAIRS = tuple(a + b for a in _B36 for b in _B36)


_MMSS = tuple(f"{m:02d}:{sec:02d}" for m in range(60) for sec in range(60))
_MS_SUFFIX = tuple(f".{ms:03d}Z" for ms in range(1000))


@lru_cache(maxsize=8192)
def _hour_prefix(hour: int) -> str:
    t = gmtime(hour * 3600)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:"


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds as the service's ISO 8601 form, e.g. 2026-01-27T19:19:13.629Z."""
    secs, ms = divmod(ts_ms, 1000)
    hour, rest = divmod(secs, 3600)
    return _hour_prefix(hour) + _MMSS[rest] + _MS_SUFFIX[ms]


def _properties(kind: int, h: int) -> dict[str, Any]:
    page = _PAGES[h & 15]
    if kind == 0:
        return {"page": page} if h & 16 else {"page": page, "referrer": _REFERRERS[(h >> 5) % 6]}
    if kind == 1:
        return {"page": page, "element": _ELEMENTS[(h >> 4) & 7]}
    if kind == 2:
        return {"endpoint": _API_PATHS[(h >> 4) % 6], "method": _METHODS[(h >> 8) % 6],
                "status": _STATUSES[(h >> 12) % 10]}
    if kind == 3:
        return {"form": _FORMS[(h >> 4) % 6], "valid": bool((h >> 12) & 3)}
    if kind == 4:
        return {"page": page, "depth": (h >> 4) % 101}
    if kind == 5:
        return {"orderId": f"ord_{(h >> 8) & 0xFFFFFF:06x}", "amount": ((h >> 40) % 50000) / 100,
                "currency": _CURRENCIES[(h >> 4) & 3]}
    if kind == 6:
        name, message = _ERRORS[(h >> 4) & 3]
        return {"page": page, "errorType": name, "message": message}
    return {"videoId": f"vid_{(h >> 8) & 0xFFFFFF:06x}", "position": (h >> 16) % 600}


class RecordFactory:
    """Builds event bodies; sessions and users are a small fixed table shared by all events."""

    def __init__(self, seed: int, size: int) -> None:
        self._k_attr = derive_key(seed, "attr")
        n_sessions = max(1, min(60_000, size // 50))
        n_users = max(1, min(3_000, size // 1_000))
        k_user, k_sess = derive_key(seed, "user"), derive_key(seed, "session")
        users = [
            uuid_text(mix64(k_user + u) & M48, mix64((k_user ^ u) + 1))
            for u in range(n_users)
        ]
        sessions: list[tuple[str, str, dict[str, str]]] = []
        for s in range(n_sessions):
            h = mix64((k_sess + s) & M64)
            sid = uuid_text(h & M48, mix64(h))
            user = users[(h >> 48) % n_users]
            device = DEVICE_TYPES[(h >> 20) % 3]
            browser = BROWSERS[(h >> 24) % 6]
            session = {"id": sid, "deviceType": device, "browser": browser}
            sessions.append((sid, user, session))
        self.session_count = n_sessions
        # Properties come from a fixed table of variants, kept as JSON text (see _event_texts).
        k_props = derive_key(seed, "props")
        properties = [
            [_properties(kind, mix64(k_props + (kind << 16) + v)) for v in range(_VARIANTS)]
            for kind in range(len(EVENT_TYPES))
        ]
        # An event's JSON text around its id, name and timestamp, cut at those three: per
        # session what follows the id and what ends the event, per kind and variant what
        # follows the name up to the timestamp.
        self._session_heads = [
            f'","sessionId":"{sid}","userId":"{user}","type":"' for sid, user, _ in sessions
        ]
        self._session_tails = [
            f',"session":{orjson.dumps(session).decode()}}}' for _, _, session in sessions
        ]
        self._type_heads = [f'{kind}","name":"event_' for kind in EVENT_TYPES]
        self._props_json = [
            [f'","properties":{orjson.dumps(props).decode()},"timestamp":' for props in variants]
            for variants in properties
        ]

    def events(
        self, start: int, stamps: list[int], ids: list[str], epoch_only: bool, as_json: bool = False
    ) -> list[Any]:
        """Events start, start+1, ... with the given timestamps and ids, as served.

        On the standard endpoint about one timestamp in three is an epoch-ms number, the rest
        ISO strings; the choice is fixed per event. With `as_json` each event comes as its
        compact JSON (an orjson.Fragment): serving a page then builds no dict per event, which
        was most of the simulator's CPU. Without, each is that JSON read back into a dict of
        its own (for pages whose events a fault alters), so the two forms cannot differ.
        """
        texts = self._event_texts(start, stamps, ids, epoch_only)
        if as_json:
            return [Fragment(text) for text in texts]
        return [orjson.loads(text) for text in texts]

    def _event_texts(
        self, start: int, stamps: list[int], ids: list[str], epoch_only: bool
    ) -> list[str]:
        """Each event's compact JSON, byte for byte what orjson writes for its dict. Every text
        here is ASCII that JSON need not escape (UUIDs, fixed tables), so an event is its
        pieces joined: per session what follows the id and what ends the event, per kind and
        variant what follows the name up to the timestamp."""
        k_attr, n_sessions = self._k_attr, self.session_count
        heads, tails, kinds = self._session_heads, self._session_tails, self._type_heads
        props, pairs, types = self._props_json, _PAIRS, _TYPE_TABLE
        out: list[str] = []
        append = out.append
        for offset, ts_ms in enumerate(stamps):
            h = ((k_attr + start + offset) * _H1) & M64
            h ^= h >> 29
            h = (h * _H2) & M64
            h ^= h >> 32
            s = (h >> 8) % n_sessions
            kind = types[h & 31]
            n = h >> 30
            p = (h * _H3) & M64
            p ^= p >> 31
            epoch = epoch_only or (h >> 5) % 3 == 0
            stamp = str(ts_ms) if epoch else f'"{iso_ms(ts_ms)}"'
            append(
                f'{{"id":"{ids[offset]}{heads[s]}{kinds[kind]}{pairs[n % 1296]}'
                f'{pairs[(n >> 11) % 1296]}{pairs[(n >> 22) % 1296]}'
                f'{props[kind][p & _VARIANT_MASK]}{stamp}{tails[s]}'
            )
        return out

    def event(self, i: int, ts_ms: int, event_id: str, epoch_only: bool) -> dict[str, Any]:
        """Event i alone, exactly as `events` builds it."""
        record: dict[str, Any] = self.events(i, [ts_ms], [event_id], epoch_only)[0]
        return record
