"""The scrubber: every spelling of a known secret masked, a short secret only where it stands
alone, so a one-letter key cannot garble the words around it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from datasync_cli.redact import MASK, SHORT_SECRET, Scrubber

KEY = "sk-live/4f9a+b2c=="


def test_a_long_secret_is_masked_in_every_spelling_and_inside_words() -> None:
    scrub = Scrubber([KEY])
    for spelling in (KEY, quote(KEY, safe=""), quote(KEY)):
        assert scrub(f"GET /events?key={spelling}&limit=5") == f"GET /events?key={MASK}&limit=5"
    assert scrub(f"prefix{KEY}suffix") == f"prefix{MASK}suffix"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("stream token obtained", "stream token obtained"),
        ('{"token_left_s": 12}', '{"token_left_s": 12}'),
        ("GET /events?key=k&limit=5", f"GET /events?key={MASK}&limit=5"),
        ("invalid API key: k", f"invalid API key: {MASK}"),
        ("k", MASK),
        ("(k)", f"({MASK})"),
        ("snake_k_case", f"snake_{MASK}_case"),
    ],
)
def test_a_short_secret_is_masked_only_where_it_stands_alone(text: str, shown: str) -> None:
    assert Scrubber(["k"])(text) == shown


def test_the_short_rule_stops_at_its_length() -> None:
    short, long = "a" * (SHORT_SECRET - 1), "b" * SHORT_SECRET
    scrub = Scrubber([short, long])
    assert scrub(f"x{short}x x{long}x") == f"x{short}x x{MASK}x"
    assert scrub(f"={short}&") == f"={MASK}&"


def test_passwords_in_dsns_are_masked_without_being_known() -> None:
    scrub = Scrubber()
    assert scrub("postgresql://u:hunter2@db/x failed") == f"postgresql://u:{MASK}@db/x failed"
    assert scrub("host=db password='a b' dbname=x") == f"host=db password={MASK} dbname=x"
