"""Frames on the daemon's socket: ``Content-Length`` headers, as LSP has them.

The daemon trusts nothing it reads: a header block longer than :data:`MAX_HEADERS`,
a missing or bad ``Content-Length``, a frame over the size limit or a body that is not
one JSON object ends that connection (and only that one) with :class:`FramingError`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec

MAX_HEADERS = 8 * 1024
"""Bytes of one frame's header block."""
_LENGTH = re.compile(rb"^content-length:\s*(\d{1,12})\s*$", re.IGNORECASE)
_encoder = msgspec.json.Encoder()


class FramingError(Exception):
    """What was read is not a frame errand accepts; the connection ends."""


async def read_frame(reader: asyncio.StreamReader, max_frame: int) -> dict[str, Any] | None:
    """The next message, or None at the end of the stream."""
    length: int | None = None
    seen = 0
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial and length is None and seen == 0:
                return None
            raise FramingError("the stream ended inside a frame's headers") from None
        except asyncio.LimitOverrunError:
            raise FramingError("a header line is too long") from None
        seen += len(line)
        if seen > MAX_HEADERS:
            raise FramingError(f"a frame's headers are over {MAX_HEADERS} bytes")
        if line == b"\r\n":
            break
        match = _LENGTH.match(line.rstrip(b"\r\n"))
        if match:
            length = int(match.group(1))
        elif not line.lower().startswith(b"content-type:"):
            raise FramingError(f"not a header: {line[:60]!r}")
    if length is None:
        raise FramingError("a frame without Content-Length")
    if length > max_frame:
        raise FramingError(f"a frame of {length} bytes is over the {max_frame} byte limit")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FramingError("the stream ended inside a frame") from None
    try:
        message = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise FramingError(f"a frame that is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FramingError("a frame that is not one JSON object")
    return message


def frame(message: dict[str, Any]) -> bytes:
    body = _encoder.encode(message)
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
