"""Every type that crosses errand's wire, and nothing else.

All structs encode camelCase on the wire (``rename="camel"``). This module imports
no errand logic so that clients, tests and schema generation can use it freely.
New fields always get defaults so that older clients keep working.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

# --- method names -----------------------------------------------------------------

CMD_DELEGATE: Final = "errand.delegate"
CMD_LIST_TASKS: Final = "errand.listTasks"
CMD_GET_TASK: Final = "errand.getTask"
CMD_GET_DIFF: Final = "errand.getDiff"
CMD_APPLY: Final = "errand.apply"
CMD_CANCEL: Final = "errand.cancel"
CMD_FOLLOW_UP: Final = "errand.followUp"
CMD_DISCARD: Final = "errand.discard"
CMD_CREATE_BRANCH: Final = "errand.createBranch"
CMD_GET_LOG: Final = "errand.getLog"
CMD_RESUME: Final = "errand.resume"

NOTIFY_TASK_CHANGED: Final = "errand/taskChanged"
NOTIFY_TASK_LOG: Final = "errand/taskLog"

COMMANDS: Final = (
    CMD_DELEGATE,
    CMD_LIST_TASKS,
    CMD_GET_TASK,
    CMD_GET_DIFF,
    CMD_APPLY,
    CMD_CANCEL,
    CMD_FOLLOW_UP,
    CMD_DISCARD,
    CMD_CREATE_BRANCH,
    CMD_GET_LOG,
    CMD_RESUME,
)

# --- enumerations ------------------------------------------------------------------

Status = Literal["queued", "preparing", "running", "completed", "failed", "cancelled"]
Mode = Literal["code", "ask"]
LogKind = Literal["commandStarted", "output", "commandFinished", "message", "status"]
CitationKind = Literal["file", "chunk"]
AlertKind = Literal["sandbox", "citation", "claim", "setup", "verify"]
FileChangeKind = Literal["added", "deleted", "modified", "renamed"]

TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"completed", "failed", "cancelled"})


class Wire(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    """Base for every wire struct."""


# --- shared shapes -----------------------------------------------------------------


class DiffStat(Wire):
    files: int = 0
    added: int = 0
    removed: int = 0


class FileStat(Wire):
    """One changed file of an attempt's diff."""

    path: str
    change: FileChangeKind
    added: int = 0
    removed: int = 0
    old_path: str | None = None
    binary: bool = False


class Usage(Wire):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None


class Check(Wire):
    command: str
    exit_code: int
    passed: bool
    duration_ms: int
    chunk_id: str


class Citation(Wire):
    text: str
    kind: CitationKind
    resolved: bool
    start_line: int
    end_line: int
    path: str | None = None
    chunk_id: str | None = None
    uri: str | None = None


class Alert(Wire):
    """Something a reviewer must know about an attempt, typed so that clients never
    parse its text. ``kind`` says what it is about: ``sandbox`` (no sandbox, or a cap
    the sandbox can't enforce here), ``citation`` (a citation that did not resolve; the
    cited chunk or path and lines are given), ``claim`` (the report claims the tests
    pass against the recorded runs; ``chunkId`` is the failing run, if any), ``setup``
    (a setup secret that is not set), ``verify`` (the report could not be checked)."""

    kind: AlertKind
    text: str
    chunk_id: str | None = None
    path: str | None = None
    start_line: int | None = None
    end_line: int | None = None


class Attempt(Wire):
    attempt: int
    status: Status
    report: str | None = None
    reason: str | None = None
    diff_stat: DiffStat = msgspec.field(default_factory=DiffStat)
    files: list[FileStat] = msgspec.field(default_factory=list)
    checks: list[Check] = msgspec.field(default_factory=list)
    citations: list[Citation] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)
    """The text of ``alerts`` (unresolved citations said in one line). Kept for older
    clients; read ``alerts`` instead."""
    alerts: list[Alert] = msgspec.field(default_factory=list)
    usage: Usage = msgspec.field(default_factory=Usage)
    steps: int = 0
    sandbox: str | None = None
    workspace_kind: str | None = None
    """How the task copy was made: ``overlay``, ``reflink`` or ``checkout``."""
    workspace_reason: str | None = None
    """Why that kind was chosen (or what failed before it)."""
    workspace_bytes: int | None = None
    """Disk the attempt's copy uses on its own, measured when the attempt ends (for an
    overlay, its upper layer; the shared base checkout is not counted)."""
    started_at: str | None = None
    finished_at: str | None = None


class TaskSummary(Wire):
    task_id: str
    title: str
    mode: Mode
    status: Status
    created_at: str
    updated_at: str
    attempt_count: int
    diff_stat: DiffStat = msgspec.field(default_factory=DiffStat)
    reason: str | None = None
    repository: str | None = None
    checks_passed: int = 0
    checks_failed: int = 0
    applied: bool = False


class Task(TaskSummary):
    prompt: str = ""
    attempts: list[Attempt] = msgspec.field(default_factory=list)


# --- command arguments -------------------------------------------------------------

# Constraints on arguments are declared here and checked by msgspec when a command's
# arguments are converted; a value outside them is InvalidParams. ``extra["invalid"]``
# is what the error says about a value that does not match a pattern.

MAX_ATTEMPTS: Final = 4

AttemptCount = Annotated[int, Meta(ge=1, le=MAX_ATTEMPTS)]
AttemptNumber = Annotated[int, Meta(ge=1, le=MAX_ATTEMPTS)]
"""1-based; which of a task's attempts."""
Prompt = Annotated[
    str, Meta(pattern=r"\S", extra={"invalid": "is blank; say what the task should do"})
]
TaskId = Annotated[str, Meta(min_length=1, max_length=64)]
FolderPath = Annotated[
    str,
    Meta(
        max_length=4096,
        pattern=r"^[^\x00]*$",
        extra={"invalid": "contains a NUL character, which no path can hold"},
    ),
]
RelativePath = Annotated[
    str,
    Meta(
        max_length=4096,
        pattern=r"^[^\x00]*$",
        extra={"invalid": "contains a NUL character, which no path can hold"},
    ),
]
BranchName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        # At most what git accepts for a branch (git check-ref-format --branch).
        pattern=(
            r"^(?![/.-])(?!@$)(?!HEAD$)"
            r"(?![\s\S]*(?:[\s\x00-\x1f\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock/))"
            r"(?![\s\S]*(?:/|\.lock|\.)$)[\s\S]+$"
        ),
        extra={
            "invalid": "is not a valid branch name: no spaces or control characters, "
            "none of ~ ^ : ? * [ \\, no '..', '@{' or '//', no part starting with '.' "
            "or ending with '.lock', not starting with '-' or '/', not ending with '/' "
            "or '.', not HEAD or @"
        },
    ),
]


class DelegateParams(Wire, forbid_unknown_fields=True):
    prompt: Prompt
    mode: Mode = "code"
    attempts: AttemptCount = 1
    workspace: FolderPath | None = None
    """Folder (path or file URI) inside the git repository to work on. Defaults to
    the client's first workspace folder."""


class ListTasksParams(Wire, forbid_unknown_fields=True):
    pass


class TaskRef(Wire, forbid_unknown_fields=True):
    task_id: TaskId


class GetDiffParams(Wire, forbid_unknown_fields=True):
    task_id: TaskId
    attempt: AttemptNumber | None = None


class ApplyParams(Wire, forbid_unknown_fields=True):
    task_id: TaskId
    attempt: AttemptNumber | None = None
    files: list[RelativePath] | None = None


class FollowUpParams(Wire, forbid_unknown_fields=True):
    task_id: TaskId
    prompt: Prompt


class GetLogParams(Wire, forbid_unknown_fields=True):
    task_id: TaskId
    attempt: AttemptNumber | None = None
    """Only this attempt's entries; all attempts when absent."""


class CreateBranchParams(Wire, forbid_unknown_fields=True):
    task_id: TaskId
    attempt: AttemptNumber | None = None
    branch: BranchName | None = None
    """Defaults to ``errand/<title-slug>-<taskId>``."""


# --- command results ---------------------------------------------------------------


class DelegateResult(Wire):
    task_id: str


class ListTasksResult(Wire):
    tasks: list[TaskSummary]


class GetTaskResult(Wire):
    task: Task


class Conflict(Wire):
    """A file whose current content conflicts with an attempt's change to it."""

    path: str
    reason: str


class GetDiffResult(Wire):
    diff: str
    edit: dict[str, Any]
    """An LSP ``WorkspaceEdit`` as JSON."""
    attempt: int = 1
    files: list[FileStat] = msgspec.field(default_factory=list)
    conflicts: list[str] = msgspec.field(default_factory=list)
    """Files whose current content conflicts with the attempt's changes, left out of
    ``edit``: ``conflictDetails`` as ``path: reason`` lines."""
    conflict_details: list[Conflict] = msgspec.field(default_factory=list)
    merged: list[str] = msgspec.field(default_factory=list)
    """Files changed in the workspace since the task started; their edits in ``edit``
    are the three-way merge that Apply would write."""


class GetLogResult(Wire):
    entries: list[TaskLog]


class ApplyResult(Wire):
    applied: bool
    conflicts: list[str] = msgspec.field(default_factory=list)
    """``conflictDetails`` as ``path: reason`` lines."""
    conflict_details: list[Conflict] = msgspec.field(default_factory=list)
    reason: str | None = None
    files: list[str] = msgspec.field(default_factory=list)
    merged: list[str] = msgspec.field(default_factory=list)
    """Files the user had changed since the task started, merged three-way."""


class CreateBranchResult(Wire):
    branch: str
    commit: str


class Empty(Wire):
    pass


# --- notifications -----------------------------------------------------------------


class TaskChanged(Wire):
    task: TaskSummary
    removed: bool = False
    """True when the task was discarded and is gone."""


class TaskLog(Wire):
    task_id: str
    attempt: int
    kind: LogKind
    chunk_id: str | None = None
    command: str | None = None
    text: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    status: Status | None = None


# --- initialization options --------------------------------------------------------


class Prices(Wire):
    """USD per million tokens. Cost is shown when ``input`` and ``output`` are set."""

    input: float | None = None
    cached_input: float | None = None
    output: float | None = None


class InitOptions(Wire):
    """``initializationOptions`` sent by the client. Every field is optional; a bad
    value is reported to the user and the default is used instead."""

    model: str | None = None
    api: Literal["responses", "chat"] | None = None
    sandbox: Literal["bwrap", "docker", "none"] | None = None
    max_parallel: int | None = None
    max_steps: int | None = None
    max_wall_seconds: int | None = None
    max_tokens: int | None = None
    context_tokens: int | None = None
    command_timeout_seconds: int | None = None
    max_disk_bytes: int | None = None
    data_dir: str | None = None
    show_all_tasks: bool | None = None
    """List every task in this window, not only those of its workspace folders."""
    prices: Prices | None = None


COMMAND_PARAMS: Final[dict[str, type[Wire]]] = {
    CMD_DELEGATE: DelegateParams,
    CMD_LIST_TASKS: ListTasksParams,
    CMD_GET_TASK: TaskRef,
    CMD_GET_DIFF: GetDiffParams,
    CMD_APPLY: ApplyParams,
    CMD_CANCEL: TaskRef,
    CMD_FOLLOW_UP: FollowUpParams,
    CMD_DISCARD: TaskRef,
    CMD_CREATE_BRANCH: CreateBranchParams,
    CMD_GET_LOG: GetLogParams,
    CMD_RESUME: TaskRef,
}

COMMAND_RESULTS: Final[dict[str, type[Wire]]] = {
    CMD_DELEGATE: DelegateResult,
    CMD_LIST_TASKS: ListTasksResult,
    CMD_GET_TASK: GetTaskResult,
    CMD_GET_DIFF: GetDiffResult,
    CMD_APPLY: ApplyResult,
    CMD_CANCEL: Empty,
    CMD_FOLLOW_UP: DelegateResult,
    CMD_DISCARD: Empty,
    CMD_CREATE_BRANCH: CreateBranchResult,
    CMD_GET_LOG: GetLogResult,
    CMD_RESUME: DelegateResult,
}

NOTIFICATION_PARAMS: Final[dict[str, type[Wire]]] = {
    NOTIFY_TASK_CHANGED: TaskChanged,
    NOTIFY_TASK_LOG: TaskLog,
}


def to_wire(value: msgspec.Struct) -> Any:
    """Convert a struct to JSON-ready builtins, camelCase keys."""
    return msgspec.to_builtins(value)
