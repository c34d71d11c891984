"""What every kind of copy shares: the object folders a copy's ``.git`` borrows."""

from __future__ import annotations

from pathlib import Path

from errand.workspace.copies.base import object_alternates


def test_object_alternates_are_followed_transitively(tmp_path: Path) -> None:
    user = tmp_path / "user" / ".git" / "objects"
    mirror = tmp_path / "mirror" / "objects"
    copy = tmp_path / "copy"
    for objects in (user, mirror, copy / ".git" / "objects"):
        (objects / "info").mkdir(parents=True)
    (mirror / "info" / "alternates").write_text(f"{user}\n")
    (copy / ".git" / "objects" / "info" / "alternates").write_text(f"# c\n{mirror}\n/missing\n")
    assert object_alternates(copy) == [mirror.resolve(), user.resolve()]
    assert object_alternates(tmp_path / "nothing") == []
