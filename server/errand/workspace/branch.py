"""Commit an attempt's result to a new local branch of the user's repository.

The branch holds the user's HEAD plus only the attempt's changes, not the user's
own uncommitted work, which stays where it is: the attempt's binary diff is applied
onto HEAD in a temporary index (``git apply --cached``). The commit is made in
errand's mirror and fetched into the user's repository as ``refs/heads/<name>``.
The user's working tree, index and current branch are not touched; no hook runs.
Blocking.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from errand.workspace import git

_BAD_NAME = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|//|/$|^/|\.lock$|^-|\.$")
MAX_REF_PART = 250
"""Bytes of one part of a branch name: git stores it as a file, plus ``.lock``."""


class BranchError(ValueError):
    """The branch can't be made; the message says why."""


class BadBranchName(BranchError):
    """The name itself is one git would refuse."""


@dataclass(frozen=True, slots=True)
class BranchResult:
    branch: str
    commit: str


def check_branch_name(name: str) -> None:
    if not name or _BAD_NAME.search(name):
        raise BadBranchName(f"{name!r} is not a valid branch name")
    for part in name.split("/"):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_REF_PART:
            shown = part if len(part) <= 40 else part[:39] + "…"
            raise BadBranchName(
                f"branch: the part {shown!r} is {size} bytes long in UTF-8; "
                f"each part between '/' may have at most {MAX_REF_PART} (a file name)"
            )


def create_branch(
    *,
    repo_root: Path,
    mirror: Path,
    snapshot_commit: str,
    result_tree: str,
    head: str | None,
    branch: str,
    message: str,
) -> BranchResult:
    check_branch_name(branch)
    mirror_env = {"GIT_DIR": str(mirror), **git.ISOLATED}
    user_env = {"GIT_DIR": git.run(["rev-parse", "--absolute-git-dir"], cwd=repo_root)}
    try:
        git.run(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], env=user_env)
    except git.GitError:
        pass
    else:
        raise BranchError(f"branch {branch!r} already exists; pick another name")
    if head is None:
        tree = result_tree
        parents: list[str] = []
    else:
        tree = _replay_onto(mirror, snapshot_commit, result_tree, head)
        parents = ["-p", head]
    commit = git.run(["commit-tree", tree, *parents, "-m", message], env=mirror_env)
    ref = f"refs/errand/branches/{commit}"
    git.run(["update-ref", ref, commit], env=mirror_env)
    git.run(
        [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            str(mirror),
            f"{ref}:refs/heads/{branch}",
        ],
        cwd=repo_root,
        env=user_env,
    )
    return BranchResult(branch=branch, commit=commit)


def _replay_onto(mirror: Path, snapshot_commit: str, result_tree: str, head: str) -> str:
    """The tree of ``head`` plus the changes from the snapshot to the result."""
    with tempfile.TemporaryDirectory(prefix="errand-branch-") as tmp:
        env = {"GIT_DIR": str(mirror), "GIT_INDEX_FILE": f"{tmp}/index", **git.ISOLATED}
        patch = git.run_bytes(
            ["diff", "--binary", "--no-color", "--no-ext-diff", "-M", snapshot_commit, result_tree],
            env=env,
        )
        git.run(["read-tree", head], env=env)
        if patch:
            try:
                git.run(["apply", "--cached", "--binary", "-"], env=env, input_bytes=patch)
            except git.GitError as exc:
                raise BranchError(
                    "the task's changes don't apply onto HEAD without your uncommitted work; "
                    f"apply them instead ({exc})"
                ) from None
        return git.run(["write-tree"], env=env)
