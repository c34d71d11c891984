"""errand's JSON-RPC layer over pygls: every message a client sends is answered or
dropped on purpose, never left without an answer, and nothing it sends can end the
server.

pygls parses a body with ``json.loads(body, object_hook=structure_message)`` and
hands it to ``handle_message``, both inside a ``try`` that only logs: a request
whose params it can't structure (``arguments`` that is not a list, ``params`` that
is not an object), nesting deeper than the interpreter recurses, a 5,000-digit
integer, or invalid JSON got no answer at all, and each left a traceback in the
log. Here the body is decoded by :mod:`errand.frontends.lsp.messages`, the envelope and the
lifecycle are checked first, the message is structured with pygls's converter
under our own error handling, and only then given to pygls. A refused request is
answered with its id (``null`` when it can't be known) and logged in one line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

from errand.frontends.lsp import messages as m
from errand.frontends.lsp.stream import FrameError, FrameReader
from errand.wire.words import clip

log = logging.getLogger(__name__)

QUIET_CODES = m.CLIENT_ERRORS | {m.REQUEST_FAILED}
"""Error codes of answers about the client's request rather than errand's bugs: no
traceback, one line in the log."""


class ErrandProtocol(LanguageServerProtocol):
    """Pins positions to UTF-16: errand's edits are computed in UTF-16 code units, the
    LSP default and the only encoding VS Code speaks."""

    initialize_seen = False

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, Any]:
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = [types.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))

    # --- receiving -----------------------------------------------------------------

    def receive(self, body: bytes) -> None:
        """Handle one frame's body. Never raises."""
        try:
            self._receive(body)
        except Exception:  # a bug here must not end the server
            log.exception("could not handle a message")

    def _receive(self, body: bytes) -> None:
        decoded = m.decode(body)
        if isinstance(decoded, m.Refusal):
            self.refuse(decoded)
            return
        message = decoded
        if "method" not in message:
            self._receive_response(message)
            return
        method: str = message["method"]
        is_request = "id" in message
        if is_request:
            problem = self._request_problem(message)
            if problem is not None:
                self.refuse(problem)
                return
        elif method != types.CANCEL_REQUEST and not self._handles(method):
            log.debug("ignored notification %s: no handler", method)
            return
        kind = self.get_message_type(method) or (
            JsonRPCRequestMessage if is_request else JsonRPCNotification
        )
        try:
            structured = self._converter.structure(message, kind)
        except Exception as exc:  # noqa: BLE001 - cattrs raises many kinds
            text = f"{method}: invalid params: {describe_structure_error(exc)}"
            if is_request:
                self.refuse(m.Refusal(message["id"], m.INVALID_PARAMS, text, method, "request"))
            else:
                log.info("ignored notification %s", clip(text, 300))
            return
        if method == types.INITIALIZE:
            self.initialize_seen = True
        self.handle_message(structured)

    def _request_problem(self, message: dict[str, Any]) -> m.Refusal | None:
        method: str = message["method"]

        def refuse(code: int, text: str) -> m.Refusal:
            return m.Refusal(message["id"], code, text, method, "request")

        if self._shutdown and method != types.EXIT:
            return refuse(m.INVALID_REQUEST, f"{method}: the server is shutting down")
        if method == types.INITIALIZE and self.initialize_seen:
            return refuse(m.INVALID_REQUEST, "initialize was already received")
        if method != types.INITIALIZE and not self.initialize_seen:
            return refuse(m.SERVER_NOT_INITIALIZED, f"{method}: send initialize first")
        if not self._handles(method):
            return refuse(m.METHOD_NOT_FOUND, f"unknown method {method!r}")
        if method == types.WORKSPACE_EXECUTE_COMMAND:
            problem = self._command_problem(message.get("params"))
            if problem is not None:
                return refuse(m.INVALID_PARAMS, f"{method}: {problem}")
        return None

    def _command_problem(self, params: Any) -> str | None:
        if not isinstance(params, dict):
            return "params must be an object {command, arguments}"
        command = params.get("command")
        if not isinstance(command, str):
            return "params.command must be a string naming the command"
        if command not in self.fm.commands:
            known = ", ".join(sorted(self.fm.commands))
            return f"unknown command {clip(repr(command), 100)}; the commands are: {known}"
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, list):
            return f"{command}: arguments must be a list holding one object, not {_kind(arguments)}"
        return None

    def _handles(self, method: str) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features

    def _receive_response(self, message: dict[str, Any]) -> None:
        msg_id = message["id"]
        future = self._request_futures.get(msg_id)
        if future is None:
            log.info("ignored a response to unknown request %s", clip(repr(msg_id), 80))
            return
        kind = (
            types.ResponseErrorMessage
            if "error" in message
            else self._result_types.pop(msg_id, None) or JsonRPCResponseMessage
        )
        try:
            structured = self._converter.structure(message, kind)
        except Exception as exc:  # noqa: BLE001 - cattrs raises many kinds
            self._request_futures.pop(msg_id, None)
            text = f"the client's answer is invalid: {describe_structure_error(exc)}"
            log.info("response %s refused: %s", clip(repr(msg_id), 80), clip(text, 300))
            if not future.done():
                future.set_exception(JsonRpcException(clip(text), m.INVALID_PARAMS))
            return
        self.handle_message(structured)

    # --- answering -----------------------------------------------------------------

    def refuse(self, refusal: m.Refusal) -> None:
        """Answer (when JSON-RPC wants an answer) and log one line."""
        log.info(
            "refused %s %s: %d %s",
            refusal.kind if refusal.msg_id is None else f"{refusal.kind} {refusal.msg_id!r}"[:100],
            refusal.method or "",
            refusal.code,
            clip(refusal.message, 300),
        )
        if refusal.kind == "response" and refusal.msg_id is not None:
            future = self._request_futures.pop(refusal.msg_id, None)
            if future is not None and not future.done():
                future.set_exception(JsonRpcException(clip(refusal.message), refusal.code))
        if refusal.answered:
            self._send_data(m.error_response(refusal.msg_id, refusal.code, refusal.message))

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """As pygls's, but an error about the client's request is answered without a
        traceback in the log (pygls logs one for every refusal)."""
        if not future.cancelled():
            exc = future.exception()
            if isinstance(exc, JsonRpcException) and exc.code in QUIET_CODES:
                self._request_futures.pop(msg_id, None)
                log.info(
                    "refused request %s: %d %s",
                    repr(msg_id)[:80],
                    exc.code,
                    clip(exc.message, 300),
                )
                self._send_data(m.error_response(msg_id, exc.code, exc.message))
                return
        super()._send_handler_result(future, msg_id=msg_id)


def describe_structure_error(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        lines = cattrs.transform_error(exc, path="$")
        return clip("; ".join(lines), 500)
    cause = exc.__cause__ or exc
    return clip(f"{type(cause).__name__}: {cause}", 500)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


# --- the stdio loop ----------------------------------------------------------------


def serve_stdio(
    protocol: ErrandProtocol,
    stop: threading.Event,
    executor: Any,
    max_frame: int,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> None:
    """Read frames from stdin until it ends, as pygls's ``start_io`` would, through
    the bounded :class:`FrameReader`."""
    protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    reader = FrameReader(stdin or sys.stdin.buffer, max_frame)  # type: ignore[arg-type]

    async def loop() -> None:
        running = asyncio.get_running_loop()
        while not stop.is_set():
            item = await running.run_in_executor(executor, reader.next)
            if item is None:
                break
            if isinstance(item, FrameError):
                protocol.refuse(m.Refusal(None, m.INVALID_REQUEST, item.message))
                continue
            protocol.receive(item.body)

    try:
        asyncio.run(loop())
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
