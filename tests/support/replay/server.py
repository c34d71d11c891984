"""The HTTP side: routes, server-sent events, and :class:`ReplayServer`."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

from support.replay.chat import chat_chunks, chat_completion
from support.replay.director import Director, Failure, count_tokens, error_body
from support.replay.history import chat_history, responses_history
from support.replay.responses import (
    response_events,
    response_object,
    response_output,
    responses_options,
    responses_usage,
)
from support.replay.scenario import JSONObj, Scenario, ScenarioSource, collect, dumps

log = logging.getLogger(__name__)

OWNER: Final = "errand-replay"


def _route(raw_path: str) -> str:
    path = unquote(urlsplit(raw_path).path).rstrip("/") or "/"
    if path == "/v1" or path.startswith("/v1/"):
        path = path[3:] or "/"
    return path


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], director: Director) -> None:
        self.director = director
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The stdlib prints the traceback to stderr; send it to logging instead.
        log.exception("replay server: error while handling a request from %s", client_address)


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "errand-replay/1"
    disable_nagle_algorithm = True

    @property
    def director(self) -> Director:
        return cast(_HTTPServer, self.server).director

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            self.close_connection = True
            raise _ClientGone from exc

    def _send_json(
        self, status: int, payload: object, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_replay_{self.director.next_serial()}")
        self.send_header("x-errand-replay", "scripted")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self._write(data)

    def _send_error_json(self, status: int, message: str, code: str | None = None) -> None:
        self._send_json(status, error_body(status, message, None, code))

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", f"req_replay_{self.director.next_serial()}")
        self.send_header("x-errand-replay", "scripted")
        self.end_headers()
        try:
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _send_event(self, data: str, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        payload = text.encode("utf-8")
        self._write(f"{len(payload):x}\r\n".encode("ascii") + payload + b"\r\n")

    def _end_events(self) -> None:
        self._write(b"0\r\n\r\n")

    # ------------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        path = _route(self.path)
        try:
            if method == "POST" and path == "/chat/completions":
                self._json_endpoint(raw, self._chat)
            elif method == "POST" and path == "/responses":
                self._json_endpoint(raw, self._responses)
            elif method == "GET" and path == "/models":
                self._send_json(200, {"object": "list", "data": self._models()})
            elif method == "GET" and path.startswith("/models/"):
                wanted = path[len("/models/") :]
                found = [m for m in self._models() if m["id"] == wanted]
                if found:
                    self._send_json(200, found[0])
                else:
                    self._send_error_json(
                        404, f"The model {wanted!r} does not exist", "model_not_found"
                    )
            elif method == "GET" and path == "/_requests":
                self._send_json(200, self.director.requests())
            elif method == "POST" and path == "/_reset":
                self.director.reset()
                self._send_json(200, {"ok": True})
            else:
                self._send_error_json(404, f"errand replay: no route for {method} {path}")
        except (_ClientGone, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            log.debug("client went away during %s %s", method, path)

    def _models(self) -> list[JSONObj]:
        return [
            {"id": s.name, "object": "model", "created": 0, "owned_by": OWNER}
            for s in self.director.scenarios
        ]

    def _json_endpoint(self, raw: bytes, handle: Callable[[JSONObj, int], None]) -> None:
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.director.record(raw.decode("utf-8", "replace"))
            self._send_error_json(400, f"errand replay: the request body is not JSON: {exc}")
            return
        self.director.record(body)
        if not isinstance(body, dict):
            self._send_error_json(400, "errand replay: the request body must be a JSON object")
            return
        handle(cast(JSONObj, body), len(raw))

    @staticmethod
    def _sleep_ms(ms: int) -> None:
        if ms > 0:
            time.sleep(ms / 1000)

    def _chat(self, body: JSONObj, raw_size: int) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            self._send_error_json(400, "errand replay: 'messages' must be a list")
            return
        history = chat_history(messages)
        plan = self.director.plan(body.get("model"), history)
        if isinstance(plan, Failure):
            self._send_json(plan.status, plan.body, plan.headers)
            return
        counts = count_tokens(plan.turn, raw_size, history.prefix_chars)
        model = str(body.get("model", plan.scenario.name))
        completion_id = f"chatcmpl-replay-{self.director.next_serial()}"
        created = int(time.time())
        if not body.get("stream"):
            self._sleep_ms(plan.turn.delay_ms)
            self._send_json(
                200,
                chat_completion(
                    plan, model=model, counts=counts, completion_id=completion_id, created=created
                ),
            )
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._start_events()
        self._sleep_ms(plan.turn.delay_ms)
        chunks = chat_chunks(
            plan,
            model=model,
            counts=counts,
            completion_id=completion_id,
            created=created,
            include_usage=include_usage,
        )
        for i, chunk in enumerate(chunks):
            if i:
                self._sleep_ms(plan.turn.chunk_delay_ms)
            self._send_event(dumps(chunk))
        self._send_event("[DONE]")
        self._end_events()

    def _responses(self, body: JSONObj, raw_size: int) -> None:
        given = body.get("input")
        if isinstance(given, str):
            items: list[object] = [{"role": "user", "content": given}]
        elif isinstance(given, list):
            items = list(given)
        elif given is None:
            items = []
        else:
            self._send_error_json(400, "errand replay: 'input' must be a string or a list")
            return
        previous_chars = 0
        previous_id = body.get("previous_response_id")
        if previous_id is not None:
            earlier = self.director.stored_response(str(previous_id))
            if earlier is None:
                self._send_error_json(
                    400,
                    f"Previous response with id '{previous_id}' not found.",
                    "previous_response_not_found",
                )
                return
            previous_chars = len(dumps(earlier))
            items = earlier + items
        history = responses_history(items)
        plan = self.director.plan(body.get("model"), history)
        if isinstance(plan, Failure):
            self._send_json(plan.status, plan.body, plan.headers)
            return
        counts = count_tokens(plan.turn, raw_size + previous_chars, history.prefix_chars)
        output = response_output(plan, responses_options(body))
        response_id = f"resp_replay_{self.director.next_serial():06d}"
        self.director.store_response(response_id, items + list(output))
        created = int(time.time())
        if not body.get("stream"):
            self._sleep_ms(plan.turn.delay_ms)
            self._send_json(
                200,
                response_object(
                    body,
                    response_id=response_id,
                    created=created,
                    status="completed",
                    output=output,
                    usage=responses_usage(counts),
                ),
            )
            return
        self._start_events()
        self._sleep_ms(plan.turn.delay_ms)
        events = response_events(
            body, plan, response_id=response_id, created=created, output=output, counts=counts
        )
        for i, event in enumerate(events):
            if i:
                self._sleep_ms(plan.turn.chunk_delay_ms)
            self._send_event(dumps(event), event["type"])
        self._end_events()


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"replay server binds only to loopback, not {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"replay server binds only to an IPv4 loopback address, not {host!r}")
    return host


class ReplayServer:
    """A scripted model server on loopback, serving from a background daemon thread.

    ``scenarios`` may be :class:`Scenario` objects, scenario dicts, paths of
    scenario files or folders, or one path.
    """

    def __init__(
        self,
        scenarios: ScenarioSource,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.scenarios: list[Scenario] = collect(scenarios)
        self._host = _loopback(host)
        self._port = port
        self._director = Director(self.scenarios)
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayServer:
        if self._server is not None:
            raise RuntimeError("replay server already started")
        server = _HTTPServer((self._host, self._port), self._director)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"errand-replay-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.info("replay model server on %s", self.url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("replay server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give the ``openai`` client, ending in ``/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    @property
    def requests(self) -> list[Any]:
        """Every request body received so far (copies), in order of arrival.

        A body that was not JSON is logged as its text.
        """
        return self._director.requests()

    def reset(self) -> None:
        """Same as ``POST /_reset``."""
        self._director.reset()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
