"""StreamTokens: supplied and issued tokens, renewal ahead of expiry, fallback and return."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.errors import RetriableSourceError, SourceError
from datasync_cli.source import StreamTokens
from datasync_cli.source.errors import StreamAccessDeniedError
from datasync_cli.source.token import DEFAULT_FEED_PATH, DEFAULT_TOKEN_HEADER


class Issuer:
    """Hands out numbered tokens, or raises what it is told to."""

    def __init__(self, expires_in: Any = 300, **access: Any) -> None:
        self.calls = 0
        self.failure: SourceError | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.expires_in = expires_in
        self.access = access

    def __call__(self) -> Mapping[str, Any]:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        if self.failure is not None:
            raise self.failure
        body = {"token": f"{self.calls:064x}", "expiresIn": self.expires_in, **self.access}
        return {"streamAccess": body, "meta": {"note": "x"}}


def test_a_supplied_token_has_an_estimated_life_and_no_key_means_no_renewal() -> None:
    clock = FakeClock()
    tokens = StreamTokens(clock, None, supplied="supplied-token", token_ttl=300)
    token = tokens.current()
    assert token is not None and token.origin == "supplied" and token.estimated
    assert tokens.seconds_left() == pytest.approx(300)
    clock.advance(400)
    assert tokens.current() is token  # past the estimate, but only the service can tell
    assert tokens.renew_after_rejection(token) is None
    assert tokens.current() is None and tokens.seconds_left() is None
    assert tokens.last_problem is not None and "no API key" in tokens.last_problem


def test_issued_tokens_are_renewed_once_ahead_of_expiry() -> None:
    clock = FakeClock()
    issuer = Issuer(expires_in=300)
    tokens = StreamTokens(clock, issuer)
    first = tokens.current()
    assert first is not None and first.origin == "issued" and not first.estimated
    assert tokens.seconds_left() == pytest.approx(300)
    clock.advance(200)
    assert tokens.current() is first and issuer.calls == 1
    clock.advance(41)  # 59 s left: less than max(20 %, 60 s)
    second = tokens.current()
    assert second is not None and second.value != first.value
    for _ in range(5):
        assert tokens.current() is second
    assert issuer.calls == 2


def test_a_renewal_in_flight_is_not_repeated_and_others_keep_the_old_token() -> None:
    clock = FakeClock()
    issuer = Issuer()
    tokens = StreamTokens(clock, issuer)
    old = tokens.current()
    clock.advance(250)
    issuer.gate, issuer.entered = threading.Event(), threading.Event()
    renewed: list[Any] = []
    worker = threading.Thread(target=lambda: renewed.append(tokens.current()))
    worker.start()
    assert issuer.entered.wait(5)  # the renewal is now in flight
    assert tokens.current() is old  # no second renewal; the old token is still valid
    issuer.gate.set()
    worker.join(5)
    assert issuer.calls == 2
    assert renewed[0] is not None and renewed[0] is not old
    assert tokens.current() is renewed[0]


def test_endpoint_and_header_come_from_the_answer_with_documented_fallbacks() -> None:
    clock = FakeClock()
    named = StreamTokens(clock, Issuer(endpoint="/api/v1/x/feed", tokenHeader="X-T")).current()
    assert named is not None and (named.endpoint, named.header) == ("/api/v1/x/feed", "X-T")
    plain = StreamTokens(clock, Issuer(expires_in=None), token_ttl=120).current()
    assert plain is not None
    assert (plain.endpoint, plain.header) == (DEFAULT_FEED_PATH, DEFAULT_TOKEN_HEADER)
    assert plain.estimated and plain.lifetime_s == 120


@pytest.mark.parametrize(
    "failure",
    [
        StreamAccessDeniedError("POST stream-access: HTTP 403 DASHBOARD_REQUIRED"),
        RetriableSourceError("giving up"),
    ],
)
def test_no_token_when_access_fails_and_another_try_after_a_minute(failure: SourceError) -> None:
    clock = FakeClock()
    issuer = Issuer()
    issuer.failure = failure
    tokens = StreamTokens(clock, issuer)
    assert tokens.current() is None
    assert tokens.last_problem is not None and failure.message in tokens.last_problem
    clock.advance(30)
    assert tokens.current() is None and issuer.calls == 1  # not asked again so soon
    issuer.failure = None
    clock.advance(31)
    token = tokens.current()
    assert token is not None and issuer.calls == 2 and tokens.last_problem is None


def test_a_refused_token_is_replaced_once_then_the_feed_is_left_alone() -> None:
    clock = FakeClock()
    issuer = Issuer()
    tokens = StreamTokens(clock, issuer, supplied="copied-from-dashboard")
    supplied = tokens.current()
    assert supplied is not None
    fresh = tokens.renew_after_rejection(supplied)
    assert fresh is not None and fresh.origin == "issued" and issuer.calls == 1
    # A second reader refused with the old token gets the fresh one without a new request.
    assert tokens.renew_after_rejection(supplied) is fresh and issuer.calls == 1
    # The fresh token is refused too: stop asking for a while.
    assert tokens.renew_after_rejection(fresh) is None
    assert tokens.current() is None and issuer.calls == 1
    clock.advance(61)
    assert tokens.current() is not None and issuer.calls == 2


def test_an_accepted_token_clears_earlier_refusals() -> None:
    clock = FakeClock()
    issuer = Issuer()
    tokens = StreamTokens(clock, issuer)
    first = tokens.current()
    assert first is not None
    second = tokens.renew_after_rejection(first)
    assert second is not None
    tokens.accepted(second)
    third = tokens.renew_after_rejection(second)
    assert third is not None and issuer.calls == 3


def test_the_token_value_never_shows_in_a_repr() -> None:
    tokens = StreamTokens(FakeClock(), None, supplied="s3cr3t-stream-token")
    assert "s3cr3t" not in repr(tokens.current())


def test_a_first_token_can_be_asked_for_in_the_background() -> None:
    clock = FakeClock()
    issuer = Issuer()
    issuer.gate = threading.Event()
    tokens = StreamTokens(clock, issuer)
    assert tokens.issue_in_background()
    assert issuer.entered.wait(5)
    assert tokens.current(wait=False) is None  # on its way: the caller need not wait
    assert not tokens.issue_in_background()  # one request in flight, never two
    issuer.gate.set()
    token = tokens.current()  # waits for the one in flight
    assert token is not None and issuer.calls == 1
    assert not tokens.issue_in_background()  # there is a token already
    assert tokens.current(wait=False) is token


def test_no_background_request_without_a_key_or_with_a_supplied_token() -> None:
    clock = FakeClock()
    assert not StreamTokens(clock, None).issue_in_background()
    issuer = Issuer()
    assert not StreamTokens(clock, issuer, supplied="given").issue_in_background()
    assert issuer.calls == 0


@pytest.mark.parametrize(
    ("access", "usable"),
    [
        ({"token": "a" * 64, "tokenHeader": "X-API-Key"}, True),  # never replaces our key
        ({"token": "bad\r\nX-Injected: 1"}, False),
        ({"token": "t" * 5000}, False),
        ({"token": "ok", "expiresIn": 10**400}, True),
        ({"token": "ok", "expiresIn": float("nan")}, True),
    ],
)
def test_a_token_answer_is_trusted_only_within_bounds(
    access: dict[str, Any], usable: bool
) -> None:
    from datasync_cli.source.token import token_from_answer

    token = token_from_answer({"streamAccess": access}, now=0.0, ttl=300.0)
    assert (token is not None) == usable
    if token is not None:
        assert token.header == DEFAULT_TOKEN_HEADER
        assert token.lifetime_s == 300.0 and token.estimated
