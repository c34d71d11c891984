"""The ``errand`` command line: ``serve`` (LSP on stdio), ``run``, ``demo``, ``tasks``,
``show``, ``diff``, ``apply`` and ``schema``."""

from __future__ import annotations

import argparse
import sys

from errand import __version__
from errand.frontends.cli.daemon_cmd import cmd_daemon
from errand.frontends.cli.history import (
    cmd_apply,
    cmd_cancel,
    cmd_diff,
    cmd_discard,
    cmd_resume,
    cmd_schema,
    cmd_show,
    cmd_tasks,
)
from errand.frontends.cli.options import MODEL_FLAGS, add_common, add_settings
from errand.frontends.cli.running import cmd_demo, cmd_run, cmd_serve


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errand", description="Delegate coding tasks to sandboxed background agents."
    )
    parser.add_argument("--version", action="version", version=f"errand {__version__}")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("serve", help="speak LSP on stdio (for editors)")
    add_common(p)
    add_settings(p, MODEL_FLAGS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="run a task in the current repository and stream it")
    p.add_argument("prompt", help="what the agent should do")
    p.add_argument("--repo", default=".", help="folder inside the git repository (default: .)")
    p.add_argument("--mode", choices=["code", "ask"], default="code")
    p.add_argument("--attempts", type=int, default=1, help="parallel attempts (1-4)")
    p.add_argument("--quiet-output", action="store_true", help="don't stream command output")
    add_common(p)
    add_settings(p, MODEL_FLAGS)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("daemon", help="run errand's daemon, or show or stop it")
    p.add_argument("action", nargs="?", default="run", choices=["run", "status", "stop"])
    p.add_argument("--force", action="store_true", help="stop even while attempts run")
    add_common(p)
    add_settings(p, MODEL_FLAGS)
    p.set_defaults(func=cmd_daemon)

    p = sub.add_parser("demo", help="run a recorded session on a sample repository")
    add_common(p)
    add_settings(p, ("sandbox",))
    p.set_defaults(func=cmd_demo)

    _history_commands(sub)
    return parser


def _history_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tasks", help="list tasks")
    add_common(p)
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("show", help="show a task: summary, checks and diff")
    p.add_argument("task_id")
    add_common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="print a task's diff")
    p.add_argument("task_id")
    p.add_argument("--attempt", type=int)
    add_common(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("apply", help="apply a task's diff to the working tree")
    p.add_argument("task_id")
    p.add_argument("--attempt", type=int)
    p.add_argument("files", nargs="*", help="only these files")
    add_common(p)
    p.set_defaults(func=cmd_apply)

    for name, func, what in (
        ("cancel", cmd_cancel, "cancel a task's running attempts"),
        ("discard", cmd_discard, "discard a task: its copies and its history"),
        ("resume", cmd_resume, "resume a task's interrupted attempts (in the daemon)"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("task_id")
        add_common(p)
        p.set_defaults(func=func)

    p = sub.add_parser("schema", help="print or write the wire protocol's JSON Schema")
    p.add_argument("--write", action="store_true", help="write the checked-in copy")
    p.set_defaults(func=cmd_schema)


if __name__ == "__main__":
    sys.exit(main())
