"""Redaction: nothing secret, and nothing a server controls, reaches the operator unchecked.

One module for every output path: URLs and DSNs are shown without their password, known secrets
(API key, stream token, DSN password) are replaced wherever they appear, and text that came from
a server is escaped and shortened before it is printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
# libpq's keyword form: host=... password=secret dbname=...; values may be single-quoted.
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
# user:password@ inside any URL-like text (also in messages that quote a URL).
_URL_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s/]*@")
# The documented default DSN's password is no secret, and "postgres" is everywhere.
_PUBLIC_PASSWORDS = frozenset({"postgres"})
SERVER_TEXT_LIMIT = 300


def is_keyword_dsn(dsn: str) -> bool:
    return "://" not in dsn and "=" in dsn


def redact_url(url: str) -> str:
    """A URL or DSN with its password replaced by ***, fit to show an operator."""
    if is_keyword_dsn(url):
        return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def dsn_password(url: str) -> str | None:
    """The password inside a URL or keyword DSN, or None."""
    if is_keyword_dsn(url):
        match = _KEYWORD_PASSWORD.search(url)
        if not match:
            return None
        value = match.group(2)
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return value or None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def secret_values(*candidates: str | None, urls: Iterable[str | None] = ()) -> list[str]:
    """The secrets among raw values and the passwords inside URLs, longest first."""
    found = {s for s in candidates if s}
    for url in urls:
        password = dsn_password(url) if url else None
        if password and password not in _PUBLIC_PASSWORDS:
            found.add(password)
    return sorted(found, key=len, reverse=True)


# A secret shorter than this is replaced only where it stands alone (no letter or digit right
# before or after it): a one-letter key would otherwise turn "token" into "to***en" in every
# line, and a short one hidden inside a longer word gives nothing away.
SHORT_SECRET = 8


class Scrubber:
    """Replaces every known secret (in any spelling a URL or libpq may give it) with ***, and
    any password inside a URL or keyword DSN, before a line reaches any output."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self._short: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Learn one more secret (a stream token issued during the run)."""
        if not secret:
            return
        spellings = {secret, unquote(secret), quote(secret, safe=""), quote(secret)}
        known = sorted(set(self._secrets) | spellings, key=len, reverse=True)
        self._secrets = known
        short = [s for s in known if len(s) < SHORT_SECRET]
        self._short = re.compile(
            r"(?<![^\W_])(?:" + "|".join(map(re.escape, short)) + r")(?![^\W_])"
        ) if short else None

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if len(secret) < SHORT_SECRET:
                break  # longest first: the rest are short
            if secret in text:
                text = text.replace(secret, MASK)
        if self._short is not None:
            text = self._short.sub(MASK, text)
        if "@" in text:
            text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
        if "=" in text:
            text = _KEYWORD_PASSWORD.sub(rf"\1{MASK}", text)
        return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{ord(char):04x}")


def server_text(text: str, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Text a server sent, safe to print: control characters (newlines, terminal escapes,
    lone surrogates) escaped and the length capped, so it cannot forge lines or drive the
    terminal."""
    shown = _CONTROL.sub(_escape, text[: limit + 1])
    return shown if len(text) <= limit and len(shown) <= 2 * limit else shown[:limit] + "..."
