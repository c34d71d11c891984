"""The repository's setup script: run in the copy before the agent, in its own sandbox.

The setup phase may have network and the secrets ``.errand/config.toml`` names; the
agent's sandbox, opened after, has neither. The script is logged like any command (its
chunk comes first) but is never a check.
"""

from __future__ import annotations

import os
import time

from errand.agent.tools import CommandRecord
from errand.config.repo import SetupConfig
from errand.engine import verify
from errand.engine.errors import SetupFailed
from errand.engine.journal import Journal
from errand.engine.recorder import Recorder
from errand.engine.state import AttemptState, TaskState
from errand.hosts.base import AttemptHost, ShellOptions

SANDBOX_ENV = {
    # Edits land within the same second as the previous run: a same-size change would
    # otherwise be masked by a stale timestamp-validated .pyc.
    "PYTHONDONTWRITEBYTECODE": "1",
}


async def run_setup(
    journal: Journal, state: TaskState, attempt: AttemptState, host: AttemptHost, setup: SetupConfig
) -> None:
    assert setup.script is not None
    info = attempt.info
    secrets = {name: os.environ[name] for name in setup.secrets if name in os.environ}
    missing = [verify.missing_secret(name) for name in setup.secrets if name not in secrets]
    verify.set_alerts(info, [*info.alerts, *missing])
    recorder = Recorder(journal, state, attempt, setup=True)
    chunk_id = attempt.next_chunk_id()
    timeout_s = float(setup.timeout_seconds)
    options = ShellOptions(
        writable=True, network=setup.network, env={**SANDBOX_ENV, **secrets}, timeout_s=timeout_s
    )
    async with host.shell(options) as shell:
        recorder.command_started(chunk_id, setup.script)
        started = time.time()
        result = await shell.run(
            setup.script,
            timeout_s=timeout_s,
            on_output=lambda text: recorder.command_output(chunk_id, text),
        )
    recorder.command_finished(CommandRecord.of(chunk_id, setup.script, result, started))
    if result.exit_code != 0:
        raise SetupFailed(
            f"setup script failed with exit code {result.exit_code} (log: {chunk_id})"
        )
