"""Task copies of every kind, on real filesystems: overlay (the default as root), reflink
(on a loop-mounted XFS, the kind a btrfs/XFS user gets) and the checkout fallback.

Each test snapshots a repository with every sort of uncommitted change, makes a copy,
checks that the copy shows exactly what the user sees and that ``git`` inside it is
clean, edits the copy the way an agent would, records the diff, and removes the copy
without leaving a mount or a file behind."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errand.config.paths import DataPaths
from errand.workspace.copies.base import TaskCopy, object_alternates
from errand.workspace.copies.bases import NEAR_BASE_MAX_CHANGES, RACY_WAIT_INDEX_BYTES, ensure_base
from errand.workspace.copies.choice import CopyManager, choose_provider
from errand.workspace.copies.gc import GarbageReport, collect_garbage
from errand.workspace.copies.holding import in_use, let_go
from errand.workspace.copies.mounts import filesystem_type, mounts_under
from errand.workspace.copies.overlay import OverlayCopies
from errand.workspace.results import record_result
from errand.workspace.snapshot import take_snapshot
from support.repos import git, make_repo, tree_fingerprint

REPO = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "script.sh": "#!/bin/sh\necho hi\n",
    "gone/only.txt": "this folder disappears\n",
    "thing": "a file that becomes a folder\n",
    "dir2/a.txt": "a folder that becomes a file\n",
    "keep/deep/file.txt": "untouched\n",
    ".gitignore": "*.log\n",
}


@pytest.fixture(autouse=True)
def no_leftover_mounts(tmp_path: Path) -> Iterator[None]:
    """A test that fails half-way must not leave its copies mounted under tmp_path."""
    yield
    for point in mounts_under(tmp_path):
        subprocess.run(["umount", "-l", str(point)], check=False)


def user_repo(tmp_path: Path) -> Path:
    """A repository with staged, unstaged, untracked, deleted, type-changed, mode-changed
    and symlinked paths, an ignored file, an ignored file force-added to the index, and
    an untracked cache no ignore rule covers."""
    repo = make_repo(tmp_path / "repo", REPO)
    for i in range(50):
        (repo / "many").mkdir(exist_ok=True)
        (repo / "many" / f"f{i}.txt").write_text(f"{i}\n")
    git(repo, "add", "many")
    git(repo, "commit", "-qm", "many")
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b  # unstaged\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("untracked\n")
    (repo / "gone" / "only.txt").unlink()
    (repo / "gone").rmdir()
    (repo / "thing").unlink()
    (repo / "thing").mkdir()
    (repo / "thing" / "inner.txt").write_text("now a folder\n")
    (repo / "dir2" / "a.txt").unlink()
    (repo / "dir2").rmdir()
    (repo / "dir2").write_text("now a file\n")
    (repo / "script.sh").chmod(0o755)
    os.symlink("calc.py", repo / "link")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "forced.log").write_text("ignored, but force-added\n")
    git(repo, "add", "-f", "forced.log")
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"\0user cache")
    return repo


def visible(root: Path) -> dict[str, str]:
    """What a person sees in ``root``: every file (not ignored, not .git) with its
    content, symlink target and executable bit; and every folder."""
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/") or rel.endswith(".log"):
            continue
        if rel.startswith("__pycache__"):
            continue  # a cache: outside errand's view (errand.workspace.snapshot.CACHE_PATTERNS)
        if path.is_symlink():
            seen[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            seen[rel] = "dir"
        else:
            mode = "x" if path.stat().st_mode & stat.S_IXUSR else "-"
            seen[rel] = mode + path.read_text()
    return seen


def run_git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def agent_edits(copy: Path) -> None:
    (copy / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (copy / "keep" / "deep" / "file.txt").unlink()
    (copy / "docs").mkdir()
    (copy / "docs" / "usage.md").write_text("# usage\n")
    (copy / "many" / "f3.txt").write_text("three\n")
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"\0cache")


EXPECTED_CHANGES = {
    ("calc.py", "modified"),
    ("keep/deep/file.txt", "deleted"),
    ("docs/usage.md", "added"),
    ("many/f3.txt", "modified"),
}


def mount_lines(data_dir: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if str(data_dir) in line]


def exercise(manager: CopyManager, repo: Path, data_dir: Path, kind: str) -> TaskCopy:
    """The whole life of one copy; returns it after removal for further checks."""
    before = tree_fingerprint(repo)
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = manager.create(snapshot, data_dir / "copies" / "t1-1")
    assert copy.kind == kind, copy.reason
    assert copy.reason
    assert visible(copy.path) == visible(repo)
    assert (copy.path / "forced.log").read_text() == "ignored, but force-added\n"
    assert not (copy.path / "debug.log").exists()
    assert not (copy.path / "__pycache__").exists()
    # git inside the copy: HEAD is the snapshot, nothing is modified yet.
    assert run_git(copy.path, "status", "--porcelain") == ""
    assert run_git(copy.path, "rev-parse", "HEAD").strip() == snapshot.commit
    # An unchanged copy records an empty diff: nothing the user had, force-added
    # ignored files included, goes missing from the result.
    assert record_result(snapshot, copy).files == []

    agent_edits(copy.path)
    status = run_git(copy.path, "status", "--porcelain", "--untracked-files=all")
    assert " M calc.py" in status and " D keep/deep/file.txt" in status
    assert "?? docs/usage.md" in status
    result = record_result(snapshot, copy)
    assert {(f.path, f.change) for f in result.files} == EXPECTED_CHANGES
    assert "+    return a + b" in result.diff
    assert "__pycache__" not in result.diff
    assert manager.disk_usage(copy) > 0

    manager.remove(copy)
    assert not copy.path.exists() and not copy.index.exists()
    assert mounts_under(data_dir) == [] and mount_lines(data_dir) == []
    assert [p.name for p in (data_dir / "copies").iterdir()] == []
    # The user's repository was never written.
    assert tree_fingerprint(repo) == before
    return copy


def test_overlay_is_the_default_as_root(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "these tests run as root, like CI"
    repo = user_repo(tmp_path)
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="auto")
    assert manager.kind == "overlay", manager.reason
    assert "overlay" in manager.reason
    exercise(manager, repo, data_dir, "overlay")
    # The base stays, warm for the next task, and holds the HEAD commit's files only.
    (base,) = [p for p in (data_dir / "bases").glob("*/*") if p.is_dir()]
    assert (base / "thing").is_file() and not (base / "untracked.txt").exists()


def test_overlay_copy_is_mounted_only_while_in_use(tmp_path: Path) -> None:
    repo = user_repo(tmp_path)
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="overlay")
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = manager.create(snapshot, data_dir / "copies" / "t1-1")
    assert os.path.ismount(copy.path)
    (copy.path / "calc.py").write_text("edited\n")
    manager.release(copy)
    assert not os.path.ismount(copy.path) and list(copy.path.iterdir()) == []
    assert mount_lines(data_dir) == []
    manager.reopen(copy)
    manager.reopen(copy)  # idempotent
    assert (copy.path / "calc.py").read_text() == "edited\n"
    assert len(mounts_under(data_dir)) == 1
    result = record_result(snapshot, copy)
    assert [(f.path, f.change) for f in result.files] == [("calc.py", "modified")]
    # A second copy of the same snapshot shares the base and sees none of the first's edits.
    other = manager.create(snapshot, data_dir / "copies" / "t2-1")
    assert (other.path / "calc.py").read_text() == (repo / "calc.py").read_text()
    assert len(list((data_dir / "bases").glob("*/*.index"))) == 1
    manager.remove(copy)
    manager.remove(other)
    assert mount_lines(data_dir) == []


def test_checkout_fallback(tmp_path: Path) -> None:
    repo = user_repo(tmp_path)
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="checkout")
    assert manager.chain == ["checkout"]
    assert "ERRAND_COPIES=checkout" in manager.reason
    exercise(manager, repo, data_dir, "checkout")


def test_reflink_falls_back_to_checkout_on_ext4(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert filesystem_type(tmp_path) == "ext4"
    manager = choose_provider(DataPaths(data_dir), prefer="reflink")
    assert manager.chain == ["checkout"]
    assert "no reflink: ext4 under the data folder has no reflinks" in manager.reason


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A folder any user may enter (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="errand-copies-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for point in mounts_under(path):
            subprocess.run(["umount", "-l", str(point)], check=False)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def xfs(public_dir: Path) -> Iterator[Path]:
    """A small XFS filesystem (reflinks on) mounted from a sparse file."""
    image = public_dir / "xfs.img"
    with image.open("wb") as f:
        f.truncate(320 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    point = public_dir / "xfs"
    point.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
    point.chmod(0o755)
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


NOBODY = 65534

# Where errand.workspace.copies and every non-standard-library module it imports are loaded from.
IMPORTED_FROM = """
import importlib.util, json, sys
before = set(sys.modules)
import errand.workspace.copies.choice
names = {m.split(".")[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)
places = []
for name in sorted(names):
    spec = importlib.util.find_spec(name)
    if spec is None:
        continue
    if spec.submodule_search_locations:
        places.extend(spec.submodule_search_locations)
    elif spec.origin and spec.has_location:
        places.append(spec.origin)
print(json.dumps(places))
"""


@pytest.fixture
def nobody_pythonpath(public_dir: Path) -> Path:
    """errand and the libraries errand.workspace.copies imports, copied where nobody can read them:
    the checkout and its virtualenv may not be readable by others (a clone under /root,
    which is 0700 on Debian)."""
    listing = subprocess.run(
        [sys.executable, "-c", IMPORTED_FROM], check=True, capture_output=True, text=True
    ).stdout
    lib = public_dir / "pylib"
    lib.mkdir()
    for place in map(Path, json.loads(listing)):
        if place.is_dir():
            shutil.copytree(place, lib / place.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(place, lib / place.name)
    subprocess.run(["chmod", "-R", "a+rX", str(lib)], check=True)
    return lib


def choice_as_nobody(data_dir: Path, pythonpath: Path) -> tuple[list[str], str]:
    """What a server running as an ordinary user (nobody) would choose for ``data_dir``,
    importing errand from ``pythonpath`` alone (no site-packages)."""
    data_dir.mkdir(parents=True)
    os.chown(data_dir, NOBODY, NOBODY)
    script = (
        "import json, sys; from pathlib import Path; from errand.config.paths import DataPaths; "
        "from errand.workspace.copies.choice import choose_provider; "
        "m = choose_provider(DataPaths(Path(sys.argv[1])), prefer='auto'); "
        "print(json.dumps([m.chain, m.reason]))"
    )
    python = getattr(sys, "_base_executable", sys.executable)  # the venv's own interpreter
    env = {**os.environ, "HOME": str(data_dir), "PYTHONPATH": str(pythonpath)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         python, "-S", "-c", script, str(data_dir)],
        check=True, capture_output=True, text=True, env=env, cwd="/",
    ).stdout  # fmt: skip
    chain, reason = json.loads(out)
    return chain, reason


def test_not_root_takes_reflink_where_it_can_else_a_checkout(
    public_dir: Path, xfs: Path, nobody_pythonpath: Path
) -> None:
    chain, reason = choice_as_nobody(public_dir / "on-ext4", nobody_pythonpath)
    assert chain == ["checkout"]
    assert "no overlay: the server is not root" in reason
    assert "no reflink: ext4" in reason
    chain, reason = choice_as_nobody(xfs / "on-xfs", nobody_pythonpath)
    assert chain == ["reflink", "checkout"]
    assert reason.startswith("no overlay: the server is not root")
    assert "reflink copy of a cached base checkout (xfs shares blocks)" in reason


def test_reflink_copy_on_xfs(tmp_path: Path, xfs: Path) -> None:
    repo = user_repo(tmp_path)
    data_dir = xfs / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="reflink")
    assert manager.kind == "reflink", manager.reason
    assert "xfs" in manager.reason
    exercise(manager, repo, data_dir, "reflink")


def test_overlay_failure_falls_back_with_the_reason(tmp_path: Path) -> None:
    # Overlay mount options can't carry a comma, so this data folder can't be overlaid,
    # and ext4 has no reflinks: the copy is a checkout and says why.
    repo = user_repo(tmp_path)
    data_dir = tmp_path / "data,odd"
    chosen = choose_provider(DataPaths(data_dir))
    assert chosen.chain == ["checkout"]
    assert "no overlay" in chosen.reason and "no reflink" in chosen.reason
    forced = CopyManager(
        DataPaths(data_dir), ["overlay", "reflink", "checkout"], "forced for the test"
    )
    copy = exercise(forced, repo, data_dir, "checkout")
    assert copy.kind == "checkout"


def test_fallback_reason_is_recorded_on_the_copy(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    data_dir = tmp_path / "data,odd"
    forced = CopyManager(DataPaths(data_dir), ["overlay", "reflink", "checkout"], "forced")
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = forced.create(snapshot, data_dir / "copies" / "t1-1")
    assert copy.kind == "checkout"
    assert copy.reason.startswith("reflink copy failed: ")
    assert copy.reason.endswith("fell back to checkout")
    forced.remove(copy)


def test_changed_files_are_written_the_way_git_checks_them_out(tmp_path: Path) -> None:
    # Attributes apply to the user's changed files as to the base's: eol=crlf here.
    repo = make_repo(
        tmp_path / "repo", {".gitattributes": "*.txt eol=crlf\n", "a.txt": "one\ntwo\n"}
    )
    (repo / "b.txt").write_text("new\nfile\n")
    (repo / "a.txt").write_text("one\nchanged\n")
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="overlay")
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = manager.create(snapshot, data_dir / "copies" / "t-1")
    assert (copy.path / "a.txt").read_bytes() == b"one\r\nchanged\r\n"
    assert (copy.path / "b.txt").read_bytes() == b"new\r\nfile\r\n"
    assert run_git(copy.path, "status", "--porcelain") == ""
    assert record_result(snapshot, copy).files == []
    manager.remove(copy)


def test_concurrent_snapshots_of_one_repository_are_shared(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    repo = user_repo(tmp_path)
    data_dir = tmp_path / "data"
    folders = [repo, repo / "many", repo / "keep" / "deep"] * 4
    with ThreadPoolExecutor(max_workers=len(folders)) as pool:
        snapshots = list(pool.map(lambda f: take_snapshot(f, DataPaths(data_dir)), folders))
    # At most one walk was running when the others asked, and one more served them all.
    assert len({s.commit for s in snapshots}) <= 2
    assert len({s.tree for s in snapshots}) == 1
    assert [s.subdir for s in snapshots[:3]] == ["", "many", "keep/deep"]
    # A snapshot asked for later sees later changes.
    (repo / "calc.py").write_text("changed again\n")
    later = take_snapshot(repo, DataPaths(data_dir))
    assert later.tree != snapshots[0].tree


def test_a_large_base_has_no_racily_clean_entries(tmp_path: Path) -> None:
    # git (without nanosecond timestamps) re-checks every entry not older than its index,
    # to the second, whenever it writes that index: a base's index must be younger.
    files = {f"d{i % 50}/f{i}.txt": f"{i}\n" for i in range(3000)}
    repo = make_repo(tmp_path / "repo", files)
    data_dir = tmp_path / "data"
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    base, changes = ensure_base(DataPaths(data_dir), snapshot)
    assert changes == []
    assert base.index.stat().st_size >= RACY_WAIT_INDEX_BYTES
    newest = max(int(p.lstat().st_mtime) for p in base.path.rglob("*.txt"))
    assert int(base.index.stat().st_mtime) > newest
    # The copy's own index is that same index: git in the copy finds nothing to redo.
    copy = choose_provider(DataPaths(data_dir), prefer="overlay").create(snapshot, tmp_path / "c")
    assert int((copy.path / ".git" / "index").stat().st_mtime) > newest
    OverlayCopies(DataPaths(data_dir)).remove(copy)


def test_unborn_head_and_a_new_head(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "first.txt").write_text("first\n")
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="overlay")
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = manager.create(snapshot, data_dir / "copies" / "a-1")
    assert visible(copy.path) == {"first.txt": "-first\n"}
    manager.remove(copy)
    # After a commit, the nearest cached base is reused: no second base is built.
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    (repo / "second.txt").write_text("second\n")
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = manager.create(snapshot, data_dir / "copies" / "b-1")
    assert visible(copy.path) == visible(repo)
    assert len(list((data_dir / "bases").glob("*/*.index"))) == 1
    manager.remove(copy)


def test_garbage_collection(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="overlay")
    first = take_snapshot(repo, DataPaths(data_dir))
    kept = manager.create(first, data_dir / "copies" / "kept-1")
    orphan = manager.create(first, data_dir / "copies" / "orphan-1")
    # Many commits later the old base is too far away, so a new base is built.
    for i in range(NEAR_BASE_MAX_CHANGES + 1):
        (repo / f"n{i}.txt").write_text(f"{i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "big")
    second = take_snapshot(repo, DataPaths(data_dir))
    newer = manager.create(second, data_dir / "copies" / "newer-1")
    assert len(list((data_dir / "bases").glob("*/*.index"))) == 2

    # Copies in use (held by this or any other errand process) are never touched.
    assert in_use(kept.path) and in_use(orphan.path)
    report = collect_garbage(DataPaths(data_dir), [kept.path, newer.path], grace_s=0)
    assert report == GarbageReport([], [], [])

    # A server that crashed holds nothing: its copies are unmounted, the one it no longer
    # knows goes; the old base stays, since kept still uses it.
    let_go(kept.path)
    let_go(orphan.path)
    report = collect_garbage(
        DataPaths(data_dir), [kept.path, newer.path], mounted=[newer.path], grace_s=0
    )
    assert set(report.unmounted) == {kept.path, orphan.path}
    assert {p.name for p in report.removed_copies} == {
        "orphan-1",
        "orphan-1.layers",
        "orphan-1.index",
    }
    assert not (data_dir / "copies" / "orphan-1.lock").exists()
    assert report.removed_bases == []
    assert mounts_under(data_dir) == [newer.path]

    # Once kept is discarded, its base is stale: the newest base stays warm.
    manager.remove(kept)
    report = collect_garbage(DataPaths(data_dir), [newer.path], grace_s=0)
    assert [p.name for p in report.removed_bases] == [first.head]
    (left,) = [p for p in (data_dir / "bases").glob("*/*") if p.is_dir()]
    assert left.name == second.head
    manager.remove(newer)
    assert mount_lines(data_dir) == []
    assert list((data_dir / "copies").iterdir()) == []


def test_choice_is_logged(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level("INFO", logger="errand.workspace.copies.choice")
    choose_provider(DataPaths(tmp_path / "data"), prefer="auto")
    assert any("task copies: overlayfs" in r.getMessage() for r in caplog.records)


def test_docker_backend_works_on_an_overlay_copy(tmp_path: Path) -> None:
    import asyncio

    from errand.sandbox import Limits, SandboxSpec, open_sandbox
    from support.docker_image import engine_or_skip, ensure_test_image

    client = engine_or_skip()
    tag = ensure_test_image(client)
    repo = make_repo(tmp_path / "repo", {"calc.py": "x = 1\n", "b.txt": "b\n"})
    (repo / "calc.py").write_text("x = 2\n")
    data_dir = tmp_path / "data"
    manager = choose_provider(DataPaths(data_dir), prefer="overlay")
    snapshot = take_snapshot(repo, DataPaths(data_dir))
    copy = manager.create(snapshot, data_dir / "copies" / "d-1")

    async def go() -> str:
        old = os.environ.get("ERRAND_DOCKER_IMAGE")
        os.environ["ERRAND_DOCKER_IMAGE"] = tag
        try:
            binds = tuple(object_alternates(copy.path))
            spec = SandboxSpec(root=copy.path, limits=Limits(timeout_s=60), read_only_binds=binds)
            sb = await open_sandbox("docker", spec)
        finally:
            if old is None:
                os.environ.pop("ERRAND_DOCKER_IMAGE", None)
            else:
                os.environ["ERRAND_DOCKER_IMAGE"] = old
        try:
            r = await sb.run(
                "git status --porcelain && cat calc.py && echo new > n.txt && rm b.txt"
            )
            assert r.exit_code == 0, r.output
            return r.output
        finally:
            await sb.close()

    assert asyncio.run(go()) == "x = 2\n"
    result = record_result(snapshot, copy)
    assert {(f.path, f.change) for f in result.files} == {("n.txt", "added"), ("b.txt", "deleted")}
    manager.remove(copy)
    assert mount_lines(data_dir) == []


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="function")
async def test_server_uses_overlay_and_reports_it(tmp_path: Path, replay: Any) -> None:
    from support.lsp_harness import start_client, stop_client

    repo = user_repo(tmp_path)
    data_dir = tmp_path / "data"
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "shell", "arguments": {"command": "git status --porcelain"}}]},
        {
            "tool_calls": [
                {"name": "shell", "arguments": {"command": "echo fixed > calc.py && rm link"}}
            ]
        },
        {"content": "Done."},
    ]
    server = replay({"name": "edit", "turns": turns})
    env = {
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-test-not-a-secret",
        "ERRAND_MODEL": "edit",
        "ERRAND_API": "chat",
        "ERRAND_SANDBOX": "bwrap",
        "ERRAND_DATA_DIR": str(data_dir),
    }
    client, lsp = await start_client(folder=repo, env=env)
    try:
        result = await client.command("errand.delegate", {"prompt": "edit"})
        task_id = result["taskId"]
        assert await client.wait_status(task_id, {"completed", "failed"}) == "completed"
        task = (await client.command("errand.getTask", {"taskId": task_id}))["task"]
        (attempt,) = task["attempts"]
        assert attempt["workspaceKind"] == "overlay"
        assert attempt["workspaceReason"].startswith("overlayfs over a cached base checkout")
        assert attempt["workspaceBytes"] > 0
        output = "".join(
            e.get("text") or "" for e in client.task_logs if e.get("chunkId") == "c1-1"
        )
        assert output.strip() == ""  # git status inside the sandbox: nothing changed yet
        assert {(f["path"], f["change"]) for f in attempt["files"]} == {
            ("calc.py", "modified"),
            ("link", "deleted"),
        }
        # The attempt ended, so its copy is no longer mounted, but it is kept.
        assert mount_lines(data_dir) == []
        copy_path = data_dir / "copies" / f"{task_id}-1"
        assert (data_dir / "copies" / f"{task_id}-1.layers" / "upper" / "calc.py").exists()

        await client.command("errand.discard", {"taskId": task_id})
        assert not copy_path.exists()
        assert not (data_dir / "copies" / f"{task_id}-1.layers").exists()
        assert mount_lines(data_dir) == []
    finally:
        await stop_client(lsp)
