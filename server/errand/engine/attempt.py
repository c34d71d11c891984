"""One attempt, from its queue slot to its recorded result.

An attempt waits for a slot (at most ``maxParallel`` run at once, in queue order),
prepares its host's copy, reads the repository's rules, runs the setup script when
there is one, and then the agent, all under the disk quota. Whatever ends it (an
answer, a limit, a model error, a cancel) becomes one :class:`Outcome`; then the
result is recorded and checked, still holding the slot, because recording a large
copy's diff is work too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from errand.agent.evidence.agents_md import (
    AgentsDoc,
    agents_doc,
    candidate_paths,
    user_instructions,
)
from errand.agent.evidence.checks import checks_from
from errand.agent.evidence.citations import cited_paths, resolve_citations
from errand.agent.loop import AgentLimits, AgentProgress, LimitsExceeded, NoAnswer, run_agent
from errand.agent.prompts import system_prompt
from errand.agent.tools import Toolbox
from errand.config.repo import CONFIG_PATH, RepoConfig, RepoConfigError, repo_config
from errand.config.settings import Settings
from errand.engine import verify
from errand.engine.errors import EngineError
from errand.engine.journal import Journal
from errand.engine.recorder import Recorder
from errand.engine.setup import SANDBOX_ENV, run_setup
from errand.engine.state import CANCELLED, AttemptState, TaskState, now_iso
from errand.hosts.base import AttemptHost, HostPool, ShellOptions
from errand.hosts.quota import DiskQuota, DiskQuotaExceeded, within_quota
from errand.models.base import Model, ModelError, SystemMsg, UserMsg
from errand.sandbox.base import SandboxUnavailable
from errand.wire.protocol import Status, Usage

log = logging.getLogger(__name__)

ModelFactory = Callable[[Settings], Model]


@dataclass(frozen=True, slots=True)
class Context:
    """What every attempt of the engine shares."""

    settings: Settings
    hosts: HostPool
    journal: Journal
    model_factory: ModelFactory
    slots: asyncio.Semaphore


class Outcome(NamedTuple):
    status: Status
    reason: str | None = None
    keep: bool = True
    """Whether the copy's result is worth recording."""


ENDINGS = (LimitsExceeded, NoAnswer, ModelError, EngineError, RepoConfigError)
"""Exceptions that end an attempt with their own message as the reason."""


def outcome_of(exc: Exception) -> Outcome | None:
    """How an exception that ended an attempt is said; None for a bug in errand."""
    if isinstance(exc, DiskQuotaExceeded):
        return Outcome("failed", f"{exc}; no diff was recorded and the copy was removed", False)
    if isinstance(exc, SandboxUnavailable):
        return Outcome("failed", f"sandbox unavailable: {exc}")
    if isinstance(exc, ENDINGS):
        return Outcome("failed", str(exc))
    return None


class AttemptRun:
    def __init__(self, ctx: Context, state: TaskState, attempt: AttemptState) -> None:
        self.ctx = ctx
        self.state = state
        self.attempt = attempt
        self.journal = ctx.journal

    async def __call__(self) -> None:
        try:
            await self.ctx.slots.acquire()
        except asyncio.CancelledError:
            await self._finish(self._cancelled())
            return
        try:
            outcome = await self._outcome()
            self.attempt.finishing = True
            await self._finish(outcome)
        finally:
            self.attempt.finishing = False
            self.ctx.slots.release()

    def _cancelled(self) -> Outcome:
        problem = self.state.record.problem
        return Outcome("failed", problem) if problem else Outcome("cancelled", CANCELLED)

    async def _outcome(self) -> Outcome:
        try:
            await self.set_status("preparing")
            host = await self._prepare()
            quota = DiskQuota(self.ctx.settings.max_disk_bytes, host.disk_usage)
            self.attempt.info.report = await within_quota(self._work(host), quota)
            return Outcome("completed")
        except asyncio.CancelledError:
            return self._cancelled()
        except Exception as exc:
            known = outcome_of(exc)
            if known is not None:
                return known
            log.exception("attempt %s/%s crashed", self.state.task_id, self.attempt.info.attempt)
            return Outcome("failed", f"internal error: {type(exc).__name__}: {exc}")

    async def _prepare(self) -> AttemptHost:
        await self.state.prepared.wait()
        snapshot = self.state.record.snapshot
        if snapshot is None:
            raise EngineError(self.state.record.problem or "the workspace could not be snapshotted")
        info, attempt = self.attempt.info, self.attempt
        info.started_at = now_iso()
        if attempt.host is None:
            attempt.host = self.ctx.hosts.new(self.state.task_id, info.attempt)
        attempt.host_ref = await attempt.host.prepare(snapshot)
        info.workspace_kind = attempt.host_ref.copy_kind
        info.workspace_reason = attempt.host_ref.reason
        await self.journal.save_attempt(self.state, attempt)
        return attempt.host

    async def _work(self, host: AttemptHost) -> str:
        """The repository's rules, the setup script (on a fresh attempt), then the
        agent in its sandbox; returns the report."""
        info, attempt = self.attempt.info, self.attempt
        config, rules = await self._rules(host)
        attempt.check_extra = [*rules.check_commands, *config.checks.commands]
        if not attempt.conversation:
            verify.set_alerts(info, [])
            if config.setup.script:
                await run_setup(self.journal, self.state, self.attempt, host, config.setup)
            prompt = self.state.record.prompts[0]
            if rules.text:
                prompt = f"{prompt}\n\n{user_instructions(rules)}"
            attempt.conversation = [
                SystemMsg(system_prompt(self.state.record.mode)),
                UserMsg(prompt),
            ]
        writable = self.state.record.mode == "code"
        options = ShellOptions(
            writable=writable,
            timeout_s=float(self.ctx.settings.command_timeout_seconds),
            env=SANDBOX_ENV,
        )
        async with host.shell(options) as shell:
            info.sandbox = shell.name
            verify.set_alerts(
                info, verify.merge(info.alerts, verify.sandbox_alerts(shell.warnings))
            )
            await self.set_status("running")
            toolbox = Toolbox(
                shell,
                host if writable else None,
                recorder=Recorder(self.journal, self.state, self.attempt),
                next_chunk_id=attempt.next_chunk_id,
                max_timeout_s=float(self.ctx.settings.command_timeout_seconds),
            )
            return await self._agent(toolbox)

    async def _rules(self, host: AttemptHost) -> tuple[RepoConfig, AgentsDoc]:
        snapshot = self.state.record.snapshot
        assert snapshot is not None
        wanted = [CONFIG_PATH, *candidate_paths(snapshot.subdir)]
        contents = await host.read_files(wanted)
        return repo_config(contents[CONFIG_PATH]), agents_doc(snapshot.subdir, contents)

    async def _agent(self, toolbox: Toolbox) -> str:
        settings, info = self.ctx.settings, self.attempt.info
        # Making a client loads TLS certificates (tens of ms): not on the event loop.
        model = await asyncio.to_thread(self.ctx.model_factory, settings)
        progress = AgentProgress(
            steps=info.steps,
            input_tokens=info.usage.input_tokens,
            output_tokens=info.usage.output_tokens,
            cached_tokens=info.usage.cached_tokens,
        )
        limits = AgentLimits(
            max_steps=settings.max_steps,
            max_wall_s=float(settings.max_wall_seconds),
            max_tokens=settings.max_tokens,
            context_chars=settings.context_tokens * 3,
        )

        def on_text(text: str) -> None:
            self.journal.log(self.state, self.attempt, "message", text=text)

        def on_step(p: AgentProgress) -> None:
            info.steps = p.steps
            info.usage = Usage(
                input_tokens=p.input_tokens,
                output_tokens=p.output_tokens,
                cached_tokens=p.cached_tokens,
                cost_usd=settings.prices.cost(p.input_tokens, p.output_tokens, p.cached_tokens),
            )
            self.state.touch()
            # Each turn is kept: an attempt whose daemon dies resumes from its last turn.
            self.journal.save_progress(self.state, self.attempt)

        try:
            return await run_agent(
                model,
                toolbox,
                self.attempt.conversation,
                limits,
                progress,
                on_text=on_text,
                on_step=on_step,
            )
        finally:
            await model.close()

    # --- the end -------------------------------------------------------------------

    async def _finish(self, outcome: Outcome) -> None:
        info, attempt = self.attempt.info, self.attempt
        status, reason = outcome.status, outcome.reason
        diff = ""
        if attempt.host is not None and outcome.keep and attempt.host_ref is not None:
            try:
                result = await attempt.host.result()
                attempt.result_tree, diff = result.tree, result.diff
                info.files, info.diff_stat = result.files, result.stat
            except Exception as exc:
                log.exception("recording the result failed")
                status, reason = "failed", f"could not record the diff: {exc}"
        info.checks = checks_from(attempt.commands, attempt.check_extra)
        if status == "completed":
            await self._check_report()
        await self._release(status, outcome.keep)
        info.status, info.reason, info.finished_at = status, reason, now_iso()
        self.journal.flush()
        self.state.touch()
        await self.journal.save_attempt(self.state, attempt, diff=diff)
        self.journal.log(self.state, attempt, "status", status=status, text=reason)
        await self.journal.save_task(self.state)
        self.journal.changed(self.state)

    async def _check_report(self) -> None:
        info, attempt = self.attempt.info, self.attempt
        assert info.report is not None and attempt.host is not None
        snapshot = self.state.record.snapshot
        assert snapshot is not None
        try:
            files = await attempt.host.read_files(cited_paths(info.report))
            chunks = {c.chunk_id: c.output for c in attempt.commands}
            chunks.update(attempt.setup_outputs)
            info.citations = resolve_citations(
                info.report, files=files, repo_root=snapshot.repo_root, chunks=chunks
            )
            found = verify.report_alerts(
                info.report, info.citations, info.checks, attempt.check_extra
            )
        except Exception:
            log.exception("checking the report failed")
            found = [verify.UNCHECKED]
        verify.set_alerts(info, verify.merge([a for a in info.alerts if a not in found], found))

    async def _release(self, status: Status, keep: bool) -> None:
        """Measure the copy and let go of it; remove it when nothing of it is wanted."""
        attempt = self.attempt
        if attempt.host is None or attempt.host_ref is None:
            return
        try:
            if status != "cancelled":
                attempt.info.workspace_bytes = await attempt.host.disk_usage()
            await attempt.host.release()
            if status == "cancelled" or not keep:
                await attempt.host.discard()
                attempt.host, attempt.host_ref = None, None
        except OSError as exc:
            log.warning("could not measure or release the copy of %s: %s", attempt.info, exc)

    async def set_status(self, status: Status) -> None:
        self.attempt.info.status = status
        self.journal.log(self.state, self.attempt, "status", status=status)
        self.state.touch()
        await self.journal.save_attempt(self.state, self.attempt)
        await self.journal.save_task(self.state)
        self.journal.changed(self.state)
