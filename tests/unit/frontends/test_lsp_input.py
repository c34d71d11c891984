"""Pure pieces of errand's defence against bad input: the frame reader, message
decoding, argument validation, log records and rotation."""

from __future__ import annotations

import io
import logging
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from errand.frontends import logfile as logs
from errand.frontends.lsp.messages import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    Refusal,
    decode,
    recover,
)
from errand.frontends.lsp.stream import MAX_HEADER_LINE, Frame, FrameError, FrameReader
from errand.wire import protocol
from errand.wire.arguments import InvalidArguments, parse_params
from errand.workspace.branch import BranchError, check_branch_name

OK = b"Content-Length: 2\r\n\r\n{}"


class Trickle(io.RawIOBase):
    """A stream handing out at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._step, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def frames(data: bytes, max_frame: int = 1024, step: int = 65536) -> list[Frame | FrameError]:
    reader = FrameReader(io.BufferedReader(Trickle(data, step)), max_frame)
    out: list[Frame | FrameError] = []
    for _ in range(100):
        item = reader.next()
        if item is None:
            return out
        out.append(item)
    raise AssertionError("the reader did not reach the end")


def kinds(items: list[Frame | FrameError]) -> list[str]:
    return ["frame" if isinstance(i, Frame) else "error" for i in items]


@pytest.mark.parametrize("step", [1, 5, 65536])
def test_frames_are_read_in_any_chunking(step: int) -> None:
    body = b'{"jsonrpc":"2.0","method":"x"}'
    data = b"Content-Length: %d\r\nContent-Type: x\r\n\r\n" % len(body) + body + b"\r\n" + OK
    assert frames(data, step=step) == [Frame(body), Frame(b"{}")]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (b"Content-Length: 100000000000000000000", "100000000000000000000 bytes refused"),
        (b"Content-Length: 68719476736", "68719476736 bytes refused"),
        (b"Content-Length: " + b"9" * 100, "absurd size"),
        (b"Content-Length: abc", "not a number"),
        (b"Content-Length: -1", "not a number"),
        (b"Content-Type: text/plain", "no Content-Length"),
        (b"garbage without a colon", "not a header line"),
    ],
)
def test_bad_headers_are_refused_and_the_next_frame_is_read(header: bytes, fragment: str) -> None:
    for step in (3, 65536):
        items = frames(header + b"\r\n\r\n" + OK, step=step)
        assert kinds(items) == ["error", "frame"], items
        assert isinstance(items[0], FrameError) and fragment in items[0].message
        assert items[1] == Frame(b"{}")


def test_an_oversized_frame_is_discarded_exactly() -> None:
    # The discarded body holds what looks like a header: it must not be read as one.
    body = (b"Content-Length: 2\r\n\r\n{}" * 100).ljust(3000, b" ")
    items = frames(b"Content-Length: 3000\r\n\r\n" + body + OK, max_frame=1024, step=100)
    assert kinds(items) == ["error", "frame"]
    assert isinstance(items[0], FrameError) and "its body was discarded" in items[0].message


def test_header_lines_are_bounded() -> None:
    long_line = b"X" * (MAX_HEADER_LINE * 50)
    for tail in (b"\r\n\r\n", b""):
        items = frames(long_line + tail + OK, step=4096)
        assert kinds(items) == ["error", "frame"], items
    digits = b"Content-Length: " + b"9" * (MAX_HEADER_LINE * 10) + b"\r\n\r\n"
    assert kinds(frames(digits + OK)) == ["error", "frame"]


def test_a_long_line_is_never_buffered() -> None:
    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.served >= 64 * 1024 * 1024:
                data = b"\r\n\r\n" + OK
                data = data[: len(buffer)]
                if self.served > 64 * 1024 * 1024 + len(b"\r\n\r\n" + OK):
                    return 0
                buffer[: len(data)] = data
                self.served += len(data) + 1
                return len(data)
            buffer[:] = b"x" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    reader = FrameReader(io.BufferedReader(Endless(), 65536), 1024)
    assert isinstance(reader.next(), FrameError)
    assert len(reader._buf) <= MAX_HEADER_LINE + 65536
    assert reader.next() == Frame(b"{}")


def test_blank_lines_between_frames_are_ignored_and_eof_mid_frame_ends() -> None:
    assert frames(b"\r\n\r\n" + OK + b"\r\n") == [Frame(b"{}")]
    assert frames(b"Content-Length: 10\r\n\r\n{}") == []


@pytest.mark.parametrize(
    ("body", "code", "msg_id", "fragment"),
    [
        (b"{", PARSE_ERROR, None, "not valid JSON"),
        (b'{"jsonrpc":"2.0","id":41,"method":"x",', PARSE_ERROR, 41, "not valid JSON"),
        (b'{"jsonrpc":"2.0","id":"a","method":"x","params":{"n":NaN}}', PARSE_ERROR, "a", "NaN"),
        (b'\xff{"jsonrpc":"2.0","id":3}', PARSE_ERROR, 3, "UTF-8"),
        (b"[]", INVALID_REQUEST, None, "batches"),
        (b'"x"', INVALID_REQUEST, None, "one JSON object"),
        (b'{"jsonrpc":"1.0","id":1,"method":"x"}', INVALID_REQUEST, 1, "jsonrpc"),
        (b'{"jsonrpc":"2.0","id":{},"method":"x"}', INVALID_REQUEST, None, "id must be"),
        (b'{"jsonrpc":"2.0","id":true,"method":"x"}', INVALID_REQUEST, None, "id must be"),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', INVALID_REQUEST, 1, "method must be"),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}', INVALID_REQUEST, 1, "params"),
        (b'{"jsonrpc":"2.0","id":1}', INVALID_REQUEST, 1, "result or an error"),
        (
            b'{"jsonrpc":"2.0","id":2,"method":"x","params":{"a":' + b"1" * 5000 + b"}}",
            INVALID_PARAMS,
            2,
            "params.a is an integer of 5000 digits",
        ),
        (
            b'{"jsonrpc":"2.0","id":2,"method":"x","params":' + b"[" * 200 + b"]" * 200 + b"}",
            INVALID_PARAMS,
            2,
            "nested deeper than 128",
        ),
        (
            b'{"jsonrpc":"2.0","method":"x","params":' + b"[" * 9000 + b"]" * 9000 + b',"id":9}',
            INVALID_PARAMS,
            9,
            "params is nested deeper",
        ),
    ],
)
def test_decode_refuses_with_the_id_when_it_is_recoverable(
    body: bytes, code: int, msg_id: Any, fragment: str
) -> None:
    refused = decode(body)
    assert isinstance(refused, Refusal), refused
    assert (refused.code, refused.msg_id) == (code, msg_id), refused
    assert fragment in refused.message, refused.message
    assert refused.answered


def test_decode_names_the_command_argument() -> None:
    body = (
        b'{"jsonrpc":"2.0","id":7,"method":"workspace/executeCommand","params":'
        b'{"command":"errand.getLog","arguments":[{"taskId":"x","attempt":' + b"1" * 4301 + b"}]}}"
    )
    refused = decode(body)
    assert isinstance(refused, Refusal)
    assert refused.message == (
        "errand.getLog: invalid arguments: attempt is an integer of 4301 digits, far out of range"
    )


def test_bad_notifications_are_not_answered() -> None:
    refused = decode(b'{"jsonrpc":"2.0","method":"x","params":{"a":' + b"1" * 5000 + b"}}")
    assert isinstance(refused, Refusal) and not refused.answered


def test_recover_ignores_nested_ids() -> None:
    found = recover('{"params":{"id":5,"method":"inner"},"method":"outer","id":"top"')
    assert (found.msg_id, found.method) == ("top", "outer")


def test_decode_keeps_good_messages() -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"s": "é🚀"}}
    body = b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"s":"\xc3\xa9\\ud83d\\ude80"}}'
    assert decode(body) == message


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (
            protocol.DelegateParams,
            {"prompt": "x", "attempts": 99},
            "attempts must be between 1 and 4, not 99",
        ),
        (protocol.DelegateParams, {"prompt": " \n"}, "prompt is blank"),
        (
            protocol.DelegateParams,
            {"prompt": "a\ud800b"},
            "prompt contains a lone surrogate (\\ud800), which is not valid Unicode",
        ),
        (
            protocol.DelegateParams,
            {"prompt": "x", "mode": "\udfff"},
            "mode contains a lone surrogate",
        ),
        (
            protocol.DelegateParams,
            {"prompt": "x", "workspace": "a\x00"},
            "workspace contains a NUL",
        ),
        (
            protocol.GetDiffParams,
            {"taskId": "t", "attempt": 2**63},
            "attempt must be between 1 and 4",
        ),
        (
            protocol.GetLogParams,
            {"taskId": "t", "attempt": 0},
            "attempt must be between 1 and 4, not 0",
        ),
        (protocol.TaskRef, {"taskId": "x" * 65}, "taskId is 65 characters long"),
        (
            protocol.ApplyParams,
            {"taskId": "t", "files": ["a", "b\ud800"]},
            "files[1] contains a lone",
        ),
        (protocol.CreateBranchParams, {"taskId": "t", "branch": "a\x00b"}, "branch is not a valid"),
        (protocol.CreateBranchParams, {"taskId": "t", "branch": "b" * 10_000}, "branch is 10000"),
        (
            protocol.CreateBranchParams,
            {"taskId": "t", "branch": "x\udc80"},
            "branch contains a lone",
        ),
        (protocol.ListTasksParams, {"x\ud800": 1}, "a field name in the argument contains"),
    ],
)
def test_arguments_are_refused_naming_the_field(
    kind: type[Any], raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArguments) as info:
        parse_params((raw,), kind, "errand.x")
    assert str(info.value).startswith("errand.x: invalid arguments: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "main",
        "a/b",
        "errand/fix-1234",
        "-x",
        "/x",
        "x/",
        "x.",
        "x.lock",
        "a..b",
        "a b",
        "a\n",
        "a~b",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[b",
        "a\\b",
        "a@{b",
        "a//b",
        "a@b",
        "é",
        "a\u00a0b",
        ".a",
        "a/.b",
        "a.lock/b",
        "a/b.lock",
        "HEAD",
        "@",
        "a/-b",
    ],
)
def test_branch_rule_is_at_least_as_strict_as_git_s(name: str) -> None:
    accepted = bool(re.compile(_branch_pattern()).search(name))
    try:
        check_branch_name(name)
    except BranchError:
        assert not accepted
    git = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True)
    assert git.returncode == 0 or not accepted


def _branch_pattern() -> str:
    from msgspec import inspect as mi

    info = mi.type_info(protocol.CreateBranchParams)
    assert isinstance(info, mi.StructType)
    (field,) = [f for f in info.fields if f.name == "branch"]
    assert isinstance(field.type, mi.UnionType)
    meta = field.type.types[0]
    assert isinstance(meta, mi.Metadata) and isinstance(meta.type, mi.StrType)
    assert meta.type.pattern is not None
    return meta.type.pattern


def test_log_records_are_capped_and_rotation_keeps_its_limit(tmp_path: Path) -> None:
    handler = logs.RotatingLog(
        tmp_path / "x.log",
        maxBytes=64 * 1024,
        backupCount=2,
        encoding="utf-8",
        errors="backslashreplace",
    )
    handler.setFormatter(logs.CappedFormatter(logs.FORMAT))
    logger = logging.getLogger("errand.test.rotation")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("%s", "🚀" * 2_000_000)  # 8 MB of UTF-8 in one record
        for i in range(2000):
            logger.warning("record %d %s \ud800", i, "é" * (i % 3000))
        try:
            raise ValueError("x" * 100_000)
        except ValueError:
            logger.exception("a traceback")
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.glob("x.log*"))
    assert len(files) == 3
    for path in files:
        assert path.stat().st_size <= 64 * 1024, path
        for line in path.read_text(encoding="utf-8").splitlines():
            assert len(line) <= logs.MAX_RECORD + 100
