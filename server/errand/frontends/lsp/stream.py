"""LSP base-protocol framing (``Content-Length`` headers) read from a byte stream,
bounded against whatever a client sends.

pygls's own reader reads a header line of any length and then ``read(n)`` for any
declared ``n``, outside its error handling: one header such as
``Content-Length: 100000000000000000000`` ended the server. This reader never holds
more than one header line (:data:`MAX_HEADER_LINE`) or one frame of at most
``max_frame`` bytes in memory, and it reports what it refused instead of raising:

- a frame larger than ``max_frame`` is refused, and its declared bytes are discarded
  in chunks as they arrive, so the next frame is read in step. When the declared size
  is beyond any plausible message (more than :data:`DISCARD_FACTOR` times the
  limit), the bytes are not waited for: the reader skips ahead to the next
  ``Content-Length:`` instead;
- a header line longer than :data:`MAX_HEADER_LINE`, a ``Content-Length`` that is
  not a number, or a header block without one is refused, and the reader skips
  ahead to the next ``Content-Length:``.

Blocking; the server calls :meth:`FrameReader.next` from a worker thread.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Protocol

DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 8 * 1024
"""Bytes in one header line, line ending included."""
DISCARD_FACTOR = 16
"""Frames declared larger than ``DISCARD_FACTOR * max_frame`` are not waited for."""
CHUNK = 64 * 1024
MARKER = b"Content-Length:"


class ByteStream(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Frame:
    body: bytes


@dataclass(frozen=True, slots=True)
class FrameError:
    """Something that is not a frame errand accepts; ``message`` is for the client."""

    message: str


def describe_size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


class _Mark(enum.Enum):
    TOO_LONG = "a header line too long to read"
    BLANK = "a blank line between frames"


class FrameReader:
    def __init__(self, stream: ByteStream, max_frame: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._stream = stream
        self.max_frame = max_frame
        self._buf = bytearray()
        self._eof = False
        self._skip = 0
        """Bytes of a refused frame still to discard."""
        self._resync = False
        """Skip to the next ``Content-Length:`` before reading headers."""

    def next(self) -> Frame | FrameError | None:
        """The next frame or refusal; None at the end of the stream."""
        while True:
            if self._skip and not self._discard():
                return None
            if self._resync and not self._seek_marker():
                return None
            result = self._read_frame()
            if result is not _Mark.BLANK:
                return result

    # --- frames --------------------------------------------------------------------

    def _read_frame(self) -> Frame | FrameError | Literal[_Mark.BLANK] | None:
        length: int | None = None
        lines = 0
        while True:
            line = self._read_line()
            if line is None:
                return None
            if line is _Mark.TOO_LONG:
                return self._lost(f"a header line is longer than {describe_size(MAX_HEADER_LINE)}")
            if not line.strip():
                break
            lines += 1
            name, sep, value = line.partition(b":")
            if not sep:
                return self._lost(f"not a header line: {_show(line)}")
            if name.strip().lower() != b"content-length" or length is not None:
                continue
            digits = value.strip()
            if not digits.isdigit() or not digits.isascii():
                return self._lost(f"Content-Length is not a number: {_show(digits)}")
            length = -1 if len(digits) > 30 else int(digits)
        if lines == 0:
            return _Mark.BLANK  # a stray blank line between frames
        if length is None:
            return self._lost("no Content-Length header")
        if length < 0 or length > self.max_frame * DISCARD_FACTOR:
            self._resync = True
            shown = "an absurd size" if length < 0 else f"{length} bytes"
            return FrameError(
                f"message of {shown} refused: the limit is "
                f"{describe_size(self.max_frame)} (ERRAND_MAX_FRAME_BYTES); "
                "skipped to the next Content-Length header"
            )
        if length > self.max_frame:
            self._skip = length
            return FrameError(
                f"message of {length} bytes refused: the limit is "
                f"{describe_size(self.max_frame)} (ERRAND_MAX_FRAME_BYTES); "
                "its body was discarded"
            )
        body = self._read_exactly(length)
        return None if body is None else Frame(body)

    def _lost(self, problem: str) -> FrameError:
        self._resync = True
        return FrameError(
            f"invalid message header: {problem}; skipped to the next Content-Length header"
        )

    # --- buffered reading ----------------------------------------------------------

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read1(CHUNK)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _read_line(self) -> bytes | Literal[_Mark.TOO_LONG] | None:
        """One line (ending included), or None at the end of the stream. A line
        longer than :data:`MAX_HEADER_LINE` is not read: its first byte is dropped
        (so the search for the next header starts past it) and ``TOO_LONG`` is
        returned."""
        searched = 0
        while True:
            end = self._buf.find(b"\n", searched, MAX_HEADER_LINE)
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if len(self._buf) >= MAX_HEADER_LINE:
                del self._buf[:1]
                return _Mark.TOO_LONG
            searched = len(self._buf)
            if not self._fill():
                return None

    def _read_exactly(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            if not self._fill():
                return None
        body = bytes(self._buf[:n])
        del self._buf[:n]
        return body

    def _discard(self) -> bool:
        """Drop the rest of a refused frame; False at the end of the stream."""
        while self._skip:
            if not self._buf and not self._fill():
                return False
            taken = min(self._skip, len(self._buf))
            del self._buf[:taken]
            self._skip -= taken
        return True

    def _seek_marker(self) -> bool:
        """Drop everything before the next ``Content-Length:``; False at the end of
        the stream."""
        while True:
            at = self._buf.find(MARKER)
            if at >= 0:
                del self._buf[:at]
                self._resync = False
                return True
            keep = len(MARKER) - 1
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            if not self._fill():
                return False


def _show(raw: bytes, limit: int = 60) -> str:
    text = raw.strip().decode("ascii", "backslashreplace")
    return repr(text if len(text) <= limit else text[:limit] + "…")
