"""Content-Encoding undone in bounded steps: every layer, every shape servers send, and no step
that produces more than STEP bytes however compressible the body."""

from __future__ import annotations

import gzip
import zlib

import pytest

from datasync_cli.source.inflate import STEP, EncodingError, Inflater

BODY = b'{"data":[{"id":"e-1","timestamp":1769541612369,"type":"click"}]}' * 500


def _decode(coding: str, data: bytes, piece: int = 1000) -> bytes:
    chunks = (data[i:i + piece] for i in range(0, len(data), piece))
    return b"".join(Inflater(coding).body(chunks))


def _deflate(data: bytes, raw: bool) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("coding", ["", "identity", " Identity "])
def test_no_encoding_passes_the_bytes_through(coding: str) -> None:
    assert _decode(coding, BODY) == BODY


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "GZIP"])
def test_gzip(coding: str) -> None:
    assert _decode(coding, gzip.compress(BODY)) == BODY


def test_gzip_in_several_members_is_read_to_the_end() -> None:
    data = gzip.compress(BODY[:1000]) + gzip.compress(BODY[1000:])
    assert _decode("gzip", data) == BODY


def test_deflate_with_and_without_its_zlib_header() -> None:
    assert _decode("deflate", _deflate(BODY, raw=False)) == BODY
    assert _decode("deflate", _deflate(BODY, raw=True)) == BODY


def test_layers_are_undone_last_first() -> None:
    data = gzip.compress(_deflate(BODY, raw=False))
    assert _decode("deflate, gzip", data) == BODY


def test_a_bomb_comes_out_in_bounded_pieces() -> None:
    data = gzip.compress(b"A" * (20 << 20), 9)  # 20 MB in about 20 KB
    inflater = Inflater("gzip")
    sizes = [len(p) for p in inflater.feed(data)]
    assert max(sizes) <= STEP
    assert sum(sizes) == 20 << 20


def test_an_encoding_never_asked_for_is_refused_by_name() -> None:
    with pytest.raises(EncodingError, match="'br'"):
        Inflater("br")


def test_a_damaged_body_is_an_encoding_error() -> None:
    damaged = bytearray(gzip.compress(BODY))
    damaged[20:40] = b"\xff" * 20
    with pytest.raises(EncodingError):
        _decode("gzip", bytes(damaged))
    with pytest.raises(EncodingError):
        _decode("deflate", b"this is not deflate at all")
