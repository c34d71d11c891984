"""A raw-bytes LSP client for `errand serve`: frames written by hand, so tests can
send what no well-behaved client would (oversized headers, invalid JSON, lone
surrogates), and every wait is bounded.

A reader thread drains the server's stdout into a queue of decoded messages;
stderr goes to a file whose size tests can check. Server-to-client requests
(`window/workDoneProgress/create`, `workspace/applyEdit`) are answered: edits are
accepted without being written, unless `apply_edits` is set.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

READ_TIMEOUT = 30.0


def frame(body: bytes | str) -> bytes:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def errand_command() -> list[str]:
    script = Path(sys.executable).with_name("errand")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "errand.frontends.cli.main", "serve"]


class RawServer:
    def __init__(self, env: dict[str, str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            errand_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "ERRAND_DAEMON": "off", **env},
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.responses: dict[Any, dict[str, Any]] = {}
        self.null_id_errors: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.apply_edits: Any = None
        """A callable given each workspace/applyEdit's `edit` (as JSON) to write it."""
        self.apply_answer: dict[str, Any] | None = None
        """Answer workspace/applyEdit with this instead (``{"result": ...}`` or
        ``{"error": ...}``)."""
        self._next_id = 1_000_000  # far from the ids tests pick themselves
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # --- writing -------------------------------------------------------------------

    def send_raw(self, data: bytes, timeout: float = 60.0) -> None:
        """Write bytes to the server's stdin; fails if the server stops reading."""
        error: list[BaseException] = []

        def write() -> None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except BaseException as exc:  # noqa: BLE001 - reported below
                error.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout)
        if writer.is_alive():
            raise AssertionError(f"the server did not read {len(data)} bytes in {timeout}s")
        if error:
            raise AssertionError(f"writing to the server failed: {error[0]!r}")

    def send(self, message: dict[str, Any] | str) -> None:
        body = message if isinstance(message, str) else json.dumps(message)
        self.send_raw(frame(body))

    def request(self, method: str, params: Any = None, *, msg_id: Any = None) -> Any:
        if msg_id is None:
            self._next_id += 1
            msg_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def call(self, method: str, params: Any = None, timeout: float = READ_TIMEOUT) -> Any:
        return self.wait_response(self.request(method, params), timeout)

    def command(self, name: str, *arguments: Any, timeout: float = READ_TIMEOUT) -> Any:
        return self.call(
            "workspace/executeCommand",
            {"command": name, "arguments": list(arguments)},
            timeout,
        )

    # --- reading -------------------------------------------------------------------

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if not line.strip():
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                continue
            body = out.read(length)
            if len(body) < length:
                return
            self.messages.put(json.loads(body))

    def _pump(self, timeout: float) -> bool:
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return False
        if "method" in message and "id" in message:
            self._answer(message)
        elif "method" in message:
            self.notifications.append(message)
        elif message.get("id") is None:
            self.null_id_errors.append(message)
        else:
            assert message["id"] not in self.responses, f"two answers to {message['id']!r}"
            self.responses[message["id"]] = message
        return True

    def _answer(self, message: dict[str, Any]) -> None:
        result: Any = None
        if message["method"] == "workspace/applyEdit" and self.apply_answer is not None:
            self.send({"jsonrpc": "2.0", "id": message["id"], **self.apply_answer})
            return
        if message["method"] == "workspace/applyEdit":
            if self.apply_edits is not None:
                self.apply_edits(message["params"]["edit"])
            result = {"applied": True}
        self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})

    def wait_response(self, msg_id: Any, timeout: float = READ_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while msg_id not in self.responses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no answer to request {msg_id!r} in {timeout}s")
            self._pump(min(remaining, 0.5))
        return self.responses[msg_id]

    def wait_null_errors(self, count: int, timeout: float = READ_TIMEOUT) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.null_id_errors) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{len(self.null_id_errors)} of {count} id-null errors in {timeout}s"
                )
            self._pump(min(remaining, 0.5))
        return self.null_id_errors

    def drain(self, seconds: float) -> None:
        """Take in everything the server sends for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._pump(min(remaining, 0.1))

    def wait_notification(
        self, predicate: Any, timeout: float = 90.0, what: str = "a notification"
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.notifications[seen:]:
                if predicate(message):
                    return message
            seen = len(self.notifications)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._pump(min(remaining, 0.5))

    # --- lifecycle -----------------------------------------------------------------

    def initialize(self, folder: Path, init_options: Any = None) -> dict[str, Any]:
        response = self.call(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": folder.as_uri(),
                "workspaceFolders": [{"uri": folder.as_uri(), "name": folder.name}],
                "initializationOptions": init_options,
                "capabilities": {
                    "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}}
                },
            },
        )
        assert "result" in response, response
        self.notify("initialized", {})
        return response

    def assert_alive(self) -> None:
        """The process runs and answers a normal request."""
        assert self.proc.poll() is None, f"errand exited with {self.proc.returncode}"
        response = self.command("errand.listTasks", {})
        assert "result" in response, response

    def close(self, timeout: float = 20.0) -> int | None:
        try:
            if self.proc.poll() is None:
                msg_id = self.request("shutdown")
                self.wait_response(msg_id, timeout)
                self.notify("exit")
                self.proc.wait(timeout)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout)
            self._stderr.close()
        return self.proc.returncode

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_bytes().decode("utf-8", "replace")
