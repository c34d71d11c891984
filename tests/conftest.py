from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.replay import ReplayServer


@pytest.fixture
def replay() -> Iterator[Any]:
    servers: list[ReplayServer] = []

    def start(*scenarios: dict[str, Any]) -> ReplayServer:
        server = ReplayServer(list(scenarios)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
