"""Content-Encoding undone by us, in bounded steps: a small compressed body cannot make the
process hold more than the size cap (a gzip body inflates up to about a thousand times).

The transport reads the raw bytes off the socket and feeds them here; whatever version of
urllib3 is installed, decompression never runs ahead of the cap.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

STEP = 1 << 16  # most bytes one decompression step may produce
_GZIP_MAGIC = b"\x1f\x8b"
ACCEPTED = "gzip, deflate"  # what we ask for: the encodings undone here


class EncodingError(ValueError):
    """A body that does not decode as its Content-Encoding says, or one we never asked for."""


class _Zlib:
    """One gzip or deflate layer. gzip may come in several members; deflate may come with or
    without its zlib header (servers send both)."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._raw_tried = False
        self._started = False
        self._obj = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._obj.decompress(data, STEP)
            except zlib.error as exc:
                if self._gzip or self._started or self._raw_tried:
                    raise EncodingError(f"not valid {'gzip' if self._gzip else 'deflate'}") \
                        from exc
                self._raw_tried = True  # deflate without its zlib header
                self._obj = self._new(raw=True)
                continue
            self._started = True
            data = self._obj.unconsumed_tail
            if self._obj.eof:
                data = self._obj.unused_data
                if not (self._gzip and data.startswith(_GZIP_MAGIC)):
                    data = b""  # trailing bytes after the stream: ignored, as browsers do
                else:
                    self._obj = self._new()
            if out:
                yield out

    def finish(self) -> Iterator[bytes]:
        out = self._obj.flush()
        if out:
            yield out


class Inflater:
    """Undo a Content-Encoding header's layers (last applied, first undone)."""

    def __init__(self, content_encoding: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        unknown = [c for c in codings if c not in ("gzip", "x-gzip", "deflate")]
        if unknown:
            raise EncodingError(
                f"the answer is encoded as {unknown[0]!r}, which was not asked for "
                f"(Accept-Encoding: {ACCEPTED})"
            )
        self._layers = [_Zlib(c) for c in reversed(codings)]

    def body(self, raw: Iterable[bytes]) -> Iterator[bytes]:
        """The decoded body of the raw chunks, piece by piece (see feed)."""
        for data in raw:
            yield from self.feed(data)
        yield from self.finish()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of `data`, each at most STEP bytes per layer."""
        yield from self._through(0, data)

    def finish(self) -> Iterator[bytes]:
        """What the layers still hold once the body has ended."""
        for depth, layer in enumerate(self._layers):
            for piece in layer.finish():
                yield from self._through(depth + 1, piece)

    def _through(self, depth: int, data: bytes) -> Iterator[bytes]:
        if depth == len(self._layers):
            yield data
            return
        for piece in self._layers[depth].feed(data):
            yield from self._through(depth + 1, piece)
