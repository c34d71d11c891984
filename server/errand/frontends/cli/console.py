"""Terminal rendering for the CLI: streams a task's steps and prints its result."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from errand.wire.protocol import Attempt, Task, TaskLog, TaskSummary


class Style:
    def __init__(self, stream: TextIO) -> None:
        self.enabled = stream.isatty() and "NO_COLOR" not in os.environ

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def dim(self, text: str) -> str:
        return self(text, "2")

    def bold(self, text: str) -> str:
        return self(text, "1")

    def green(self, text: str) -> str:
        return self(text, "32")

    def red(self, text: str) -> str:
        return self(text, "31")

    def cyan(self, text: str) -> str:
        return self(text, "36")


class ConsoleListener:
    """Prints a task's life as it happens."""

    def __init__(self, stream: TextIO | None = None, *, show_output: bool = True) -> None:
        self.out = stream or sys.stdout
        self.style = Style(self.out)
        self.show_output = show_output
        self._in_message = False
        self._last_status: dict[str, str] = {}
        self._only: str | None = None

    def only(self, task_id: str) -> None:
        """From now on, print this task's life only (a daemon tells of every task)."""
        self._only = task_id

    def _end_message(self) -> None:
        if self._in_message:
            self.out.write("\n")
            self._in_message = False

    def task_changed(self, summary: TaskSummary, removed: bool = False) -> None:
        if self._only is not None and summary.task_id != self._only:
            return
        if self._last_status.get(summary.task_id) == summary.status:
            return
        self._last_status[summary.task_id] = summary.status
        self._end_message()
        self.out.write(self.style.dim(f"● task {summary.task_id}: {summary.status}") + "\n")
        self.out.flush()

    def task_log(self, entry: TaskLog) -> None:
        if self._only is not None and entry.task_id != self._only:
            return
        s = self.style
        if entry.kind == "message" and entry.command == "apply_patch":
            self._end_message()
            self.out.write(s.bold("✎ apply_patch") + "\n")
            for line in (entry.text or "").splitlines():
                self.out.write(f"  {line}\n")
        elif entry.kind == "message" and entry.text:
            if not self._in_message:
                self.out.write(s.cyan("› "))
                self._in_message = True
            self.out.write(entry.text)
        elif entry.kind == "commandStarted":
            self._end_message()
            self.out.write(s.bold(f"$ {entry.command}") + s.dim(f"   [{entry.chunk_id}]") + "\n")
        elif entry.kind == "output" and entry.text and self.show_output:
            self._end_message()
            for line in entry.text.splitlines():
                self.out.write(s.dim(f"  │ {line}") + "\n")
        elif entry.kind == "commandFinished":
            self._end_message()
            mark = s.green("✓") if entry.exit_code == 0 else s.red("✗")
            self.out.write(f"  {mark} exit {entry.exit_code} · {entry.duration_ms} ms\n")
        self.out.flush()


def render_task(task: Task, diff: str | None, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    s = Style(out)
    out.write("\n" + s.bold(f"Task {task.task_id} · {task.status}") + f"  {task.title}\n")
    if task.reason:
        out.write(s.red(f"reason: {task.reason}") + "\n")
    for attempt in task.attempts:
        _render_attempt(attempt, len(task.attempts) > 1, out, s)
    if diff:
        out.write("\n" + s.bold("Diff") + "\n")
        for line in diff.splitlines():
            if line.startswith("+") and not line.startswith("+++"):
                out.write(s.green(line) + "\n")
            elif line.startswith("-") and not line.startswith("---"):
                out.write(s.red(line) + "\n")
            else:
                out.write(line + "\n")
    out.flush()


def _render_attempt(attempt: Attempt, numbered: bool, out: TextIO, s: Style) -> None:
    if numbered:
        out.write("\n" + s.bold(f"Attempt {attempt.attempt} · {attempt.status}") + "\n")
    stat = attempt.diff_stat
    out.write(
        f"{stat.files} file(s) changed, "
        + s.green(f"+{stat.added}")
        + " "
        + s.red(f"−{stat.removed}")
        + "\n"
    )
    for f in attempt.files:
        extra = f" (from {f.old_path})" if f.old_path else ""
        kind = "binary" if f.binary else f"+{f.added} −{f.removed}"
        out.write(f"  {f.change:<8} {f.path}{extra}  {kind}\n")
    if attempt.report:
        out.write("\n" + s.bold("Summary") + "\n" + attempt.report.strip() + "\n")
    if attempt.citations:
        good = sum(c.resolved for c in attempt.citations)
        out.write(s.dim(f"\nCitations: {good}/{len(attempt.citations)} resolved") + "\n")
        for c in attempt.citations:
            where = f"{c.path or c.chunk_id}:{c.start_line}-{c.end_line}"
            mark = s.green("✓") if c.resolved else s.red("✗ unresolved")
            out.write(f"  {mark} {where}\n")
    if attempt.checks:
        out.write("\n" + s.bold("Checks (from recorded exit codes)") + "\n")
        for check in attempt.checks:
            mark = s.green("✓ passed") if check.passed else s.red("✗ failed")
            out.write(
                f"  {mark}  {check.command}  exit {check.exit_code} · "
                f"{check.duration_ms} ms · {check.chunk_id}\n"
            )
    else:
        out.write("\n" + s.dim("Checks: none ran") + "\n")
    for warning in attempt.warnings:
        out.write(s.red(f"warning: {warning}") + "\n")
    u = attempt.usage
    cost = f" · ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
    out.write(
        s.dim(
            f"\n{attempt.steps} step(s) · tokens in {u.input_tokens} (cached {u.cached_tokens})"
            f" · out {u.output_tokens}{cost}"
        )
        + "\n"
    )
