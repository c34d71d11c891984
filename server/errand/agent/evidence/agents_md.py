"""The repository's own rules for agents: its AGENTS.md files.

Discovery follows Codex's rules:

* every folder from the repository root down to the working folder is looked at,
  root first;
* in each folder, the first non-empty file of ``AGENTS.override.md`` and
  ``AGENTS.md`` is used (at most one file per folder);
* the files are joined root to leaf, so a deeper file comes later and wins where
  it contradicts a shallower one (the user's own prompt wins over all of them);
* the joined text is capped at 32 KiB.

The cap counts the bytes of the files' contents (UTF-8), not errand's headers.
When the files are over the cap, errand keeps the **deepest** files whole and cuts
the shallower ones: the deepest file is the most specific to the folder being
worked on and is the one that wins, so it is the last that should be lost. A file
that is cut keeps its beginning and ends with a marker saying so; a file with no
room left at all is replaced by a marker.

This module is pure: :func:`candidate_paths` names the files to read, the caller reads
them from the attempt's copy (through its host, which ignores a file leading out of the
repository), and :func:`agents_doc` joins what was found.

Check commands
==============

The commands a repository names as its checks are recognised as checks (see
:func:`errand.agent.evidence.checks.is_check`), and the agent is told to run them. They are
taken from code: inline code spans (`` `make lint` ``) and the lines of fenced
code blocks (a leading ``$`` prompt is dropped; blocks tagged with a language
other than a shell one are skipped). A piece of code counts when

1. errand already knows it as a check (``pytest -q``, ``npm test``,
   ``make check``, ``python -m mypy src`` ...); or
2. it looks like a command line (a first word that is ``./x``, ``../x``, ``/x``
   or a bare program name without ``.`` or ``/``; one line; no brackets), its
   context speaks of checks (one of the words test, tests, check, checks, lint,
   linter, typecheck, verify, ci, in the code itself, its line, or the heading it
   sits under), it does not start with a program that sets things up
   (``git``, ``cd``, ``pip``, ``npm install``, ``npm ci`` ...), and it has at least two words,
   starts with a path, or its line says "run".

So ``Run `just ci` before committing`` and a ``## Testing`` section with
``./scripts/test.sh`` in it both name checks, while ``Put tests in `tests/unit` ``
and ``Use `pytest.fixture` `` do not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from errand.agent.evidence.checks import is_check

log = logging.getLogger(__name__)

AGENTS_FILES = ("AGENTS.override.md", "AGENTS.md")
DEFAULT_LIMIT = 32 * 1024
READ_LIMIT = 1024 * 1024
"""At most this much of one file is used (for the check commands; the cap is far lower)."""


@dataclass(frozen=True, slots=True)
class AgentsDoc:
    text: str = ""
    """The joined files, root first, each under a header naming its path; "" for none."""
    files: list[str] = field(default_factory=list)
    """The files used, relative to the repository root (POSIX), root first."""
    check_commands: list[str] = field(default_factory=list)
    """The commands the files name as checks, in order of appearance, without repeats."""
    truncated: bool = False
    """True when the files were over the cap and some text was left out."""


def folders(subdir: str) -> list[str]:
    """The folders from the repository root ("") down to ``subdir``, root first."""
    parts = PurePosixPath(subdir).parts if subdir and subdir != "." else ()
    if ".." in parts or PurePosixPath(subdir).is_absolute():
        log.warning("%s is not inside the repository; reading only the root's AGENTS.md", subdir)
        parts = ()
    return ["/".join(parts[:depth]) for depth in range(len(parts) + 1)]


def candidate_paths(subdir: str) -> list[str]:
    """Every file that may hold the rules for ``subdir``, in the order they are tried."""
    return [
        f"{folder}/{name}" if folder else name
        for folder in folders(subdir)
        for name in AGENTS_FILES
    ]


def agents_doc(
    subdir: str, contents: Mapping[str, bytes | None], *, limit: int = DEFAULT_LIMIT
) -> AgentsDoc:
    """Join the AGENTS files for ``subdir`` from ``contents`` (the files of
    :func:`candidate_paths` as read; None for a missing one), as the module says."""
    chosen: list[tuple[str, bytes]] = []
    for folder in folders(subdir):
        for name in AGENTS_FILES:
            path = f"{folder}/{name}" if folder else name
            data = (contents.get(path) or b"")[:READ_LIMIT]
            if data.strip():
                chosen.append((path, data.strip(b"\n")))
                break
    if not chosen:
        return AgentsDoc()
    kept, truncated = _fit([data for _, data in chosen], limit)
    sections = [f"--- {path} ---\n{body}" for (path, _), body in zip(chosen, kept, strict=True)]
    commands: list[str] = []
    for _, raw in chosen:
        for command in extract_check_commands(raw.decode("utf-8", "replace")):
            if command not in commands:
                commands.append(command)
    return AgentsDoc(
        text="\n\n".join(sections),
        files=[path for path, _ in chosen],
        check_commands=commands,
        truncated=truncated,
    )


def _fit(contents: list[bytes], limit: int) -> tuple[list[str], bool]:
    """Keep the deepest (last) contents whole; cut shallower ones to fit ``limit`` bytes."""
    budget = max(0, limit)
    kept: list[str] = [""] * len(contents)
    truncated = False
    for index in range(len(contents) - 1, -1, -1):
        data = contents[index]
        if len(data) <= budget:
            kept[index] = data.decode("utf-8", "replace")
            budget -= len(data)
            continue
        truncated = True
        head = data[:budget].decode("utf-8", "ignore")
        budget = 0
        marker = f"[errand: cut here; AGENTS files are capped at {limit} bytes in total]"
        kept[index] = f"{head.rstrip()}\n{marker}" if head.strip() else marker
    return kept, truncated


def user_instructions(doc: AgentsDoc) -> str:
    """The block appended to the first user message ("" when there are no files)."""
    if not doc.files:
        return ""
    lines = [
        "<repository_instructions>",
        "The repository's AGENTS.md files follow, from the root down to the working "
        "folder. Follow them. Where they disagree, the deeper file wins; the request "
        "above wins over all of them.",
        "",
        doc.text,
    ]
    if doc.check_commands:
        listed = ", ".join(f"`{c}`" for c in doc.check_commands)
        lines += [
            "",
            f"Checks these files name (run them before you finish, even for a change "
            f"to documentation only): {listed}",
        ]
    lines.append("</repository_instructions>")
    return "\n".join(lines)


# --------------------------------------------------------------------------- checks

_CHECK_WORDS = re.compile(
    r"\b(?:tests?|testing|checks?|lint|linter|linting|type-?check\w*|verify|ci)\b", re.I
)
_RUN_WORD = re.compile(r"\brun\b", re.I)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_SHELL_LANGS = frozenset({"", "sh", "bash", "shell", "console", "zsh", "shell-session", "text"})
_PROGRAM = re.compile(r"[A-Za-z][\w+-]*")
_SETUP_PROGRAMS = frozenset(
    {
        "git", "cd", "ls", "cat", "echo", "cp", "mv", "rm", "mkdir", "export", "source",
        "pip", "pip3", "apt", "apt-get", "brew", "curl", "wget", "sudo", "chmod", "open",
    }
)  # fmt: skip
_SETUP_WORDS = frozenset({"install", "add", "sync", "build", "init", "clone"})


def extract_check_commands(markdown: str) -> list[str]:
    """The commands a Markdown text names as checks (see the module docstring)."""
    found: list[str] = []
    for code, context, says_run in _code_pieces(markdown):
        if _names_check(code, context, says_run) and code not in found:
            found.append(code)
    return found


def _code_pieces(markdown: str) -> Iterator[tuple[str, str, bool]]:
    """(code, context, the line says "run") for inline spans and fenced block lines."""
    heading = ""
    before = ""
    fence: str | None = None
    fence_ok = False
    fence_context = ""
    for line in markdown.splitlines():
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
                continue
            if fence_ok:
                code = line.strip()
                code = code[2:] if code.startswith("$ ") else code
                if code and not code.startswith("#"):
                    yield code, f"{fence_context} {code}", bool(_RUN_WORD.search(fence_context))
            continue
        opening = _FENCE.match(line)
        if opening:
            fence = opening.group(1)
            fence_ok = opening.group(2).lower() in _SHELL_LANGS
            fence_context = f"{heading} {before}"
            continue
        title = _HEADING.match(line)
        if title:
            heading = title.group(1)
        if line.strip():
            before = line
        for span in _INLINE.finditer(line):
            code = span.group(1).strip()
            yield code, f"{heading} {line}", bool(_RUN_WORD.search(line))


def _names_check(code: str, context: str, says_run: bool) -> bool:
    if not code or len(code) > 200:
        return False
    if is_check(code):
        return True
    if any(c in code for c in "()[]{}<>"):
        return False
    words = code.split()
    first = words[0]
    if first.startswith(("./", "../", "/")):
        by_path = True
    elif _PROGRAM.fullmatch(first):
        by_path = False
    else:
        return False
    if _sets_up(words):
        return False
    if not _CHECK_WORDS.search(context):
        return False
    return len(words) >= 2 or by_path or says_run


def _sets_up(words: list[str]) -> bool:
    """True for commands that prepare or inspect rather than check (``npm ci`` installs)."""
    second = words[1] if len(words) > 1 else ""
    return words[0] in _SETUP_PROGRAMS or second in _SETUP_WORDS or words[:2] == ["npm", "ci"]
