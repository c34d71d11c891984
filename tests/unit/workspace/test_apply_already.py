"""An apply plan skips files that are already as the attempt leaves them, instead of
calling them conflicts or writing them again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from errand.wire.changes import ApplyPlan, FileChange
from errand.wire.protocol import FileStat
from errand.workspace.apply import CurrentFile, plan_apply, plan_files

CHANGES = [
    FileChange(path="m.txt", change="modified", base_text="a\n", new_text="A\n"),
    FileChange(path="add.txt", change="added", new_text="new\n"),
    FileChange(path="gone.txt", change="deleted", base_text="x\n"),
    FileChange(
        path="to.txt", change="renamed", old_path="from.txt", base_text="r\n", new_text="R\n"
    ),
]
BINARIES = [
    FileStat(path="img.bin", change="modified", binary=True),
    FileStat(path="new.bin", change="added", binary=True),
    FileStat(path="old.bin", change="deleted", binary=True),
]
NEW_BLOBS = {"img.bin": b"\x00new", "new.bin": b"\x01\x02"}
BASE_BLOBS = {"img.bin": b"\x00old", "old.bin": b"\xff"}


def current(files: dict[str, bytes]) -> Callable[[str], CurrentFile]:
    def read(rel: str) -> CurrentFile:
        if rel not in files:
            return CurrentFile(False)
        return CurrentFile(True, files[rel].decode("utf-8", "surrogateescape"))

    return read


def plan(files: dict[str, bytes], tmp_path: Path, only: list[str] | None = None) -> ApplyPlan:
    return plan_apply(
        tmp_path, CHANGES, BINARIES, only, current(files), BASE_BLOBS.get, NEW_BLOBS.get
    )


BEFORE = {
    "m.txt": b"a\n",
    "gone.txt": b"x\n",
    "from.txt": b"r\n",
    "img.bin": b"\x00old",
    "old.bin": b"\xff",
}
AFTER = {"m.txt": b"A\n", "add.txt": b"new\n", "to.txt": b"R\n", **NEW_BLOBS}


def test_everything_applies_from_the_snapshot(tmp_path: Path) -> None:
    result = plan(BEFORE, tmp_path)
    assert result.conflicts == [] and result.already == []
    assert sorted(plan_files(result)) == sorted(
        ["m.txt", "add.txt", "gone.txt", "to.txt", "img.bin", "new.bin", "old.bin"]
    )


def test_a_tree_that_already_has_every_change_needs_nothing(tmp_path: Path) -> None:
    result = plan(AFTER, tmp_path)
    assert result.conflicts == [] and result.changes == [] and result.binary_writes == []
    assert sorted(result.already) == sorted(
        ["m.txt", "add.txt", "gone.txt", "to.txt", "img.bin", "new.bin", "old.bin"]
    )


def test_only_what_is_missing_is_planned(tmp_path: Path) -> None:
    half = {**BEFORE, "m.txt": b"A\n", "img.bin": NEW_BLOBS["img.bin"]}
    result = plan(half, tmp_path)
    assert result.conflicts == []
    assert sorted(result.already) == ["img.bin", "m.txt"]
    assert sorted(plan_files(result)) == sorted(
        ["add.txt", "gone.txt", "to.txt", "new.bin", "old.bin"]
    )


def test_a_different_file_is_still_a_conflict(tmp_path: Path) -> None:
    result = plan(
        {**BEFORE, "add.txt": b"other\n", "m.txt": b"b\n"}, tmp_path, ["add.txt", "m.txt"]
    )
    assert result.already == []
    assert [c.path for c in result.conflicts] == ["m.txt", "add.txt"]
