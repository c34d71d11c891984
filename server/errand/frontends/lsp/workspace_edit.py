"""An LSP ``WorkspaceEdit`` from a task's file changes: deletions, renames, creations and
edits in an order that is safe to run one after another. Pure: the caller reads the
files and hands over their text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from lsprotocol import types
from lsprotocol.converters import get_converter

from errand.frontends.lsp.text_edits import text_edits
from errand.wire.changes import FileChange

DocumentChange = types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile


def path_to_uri(root: Path, rel: str) -> str:
    """``file:`` URI of ``rel`` (a relative posix path) under the absolute directory ``root``."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise ValueError(f"not a relative path inside the workspace: {rel!r}")
    return (root / pure).as_uri()


def _validate(changes: Sequence[FileChange]) -> None:
    seen: set[str] = set()
    for ch in changes:
        if ch.path in seen:
            raise ValueError(f"more than one change for {ch.path!r}")
        seen.add(ch.path)
        if ch.change == "added" and ch.new_text is None:
            raise ValueError(f"added file {ch.path!r} has no new_text")
        if ch.change == "deleted" and ch.base_text is None:
            raise ValueError(f"deleted file {ch.path!r} has no base_text")
        if ch.change in ("modified", "renamed") and (ch.base_text is None or ch.new_text is None):
            raise ValueError(f"{ch.change} file {ch.path!r} needs base_text and new_text")
        if ch.change == "renamed":
            if ch.old_path is None or ch.old_path == ch.path:
                raise ValueError(f"renamed file {ch.path!r} needs a different old_path")
        elif ch.old_path is not None:
            raise ValueError(f"old_path is only for renames ({ch.path!r})")
    sources = [ch.old_path for ch in changes if ch.change == "renamed"]
    if len(set(sources)) != len(sources):
        raise ValueError("two renames share a source path")


def _order_renames(
    renames: list[FileChange],
) -> tuple[list[FileChange], list[FileChange]]:
    """Split renames into a safe sequence and those caught in cycles.

    A rename must run after any rename that moves its destination away. Renames caught in a
    cycle (``a -> b``, ``b -> a``) cannot run as plain renames; they are returned apart.
    """
    by_source = {ch.old_path: ch for ch in renames}
    pending = sorted(renames, key=lambda ch: ch.path)
    done: set[str] = set()  # sources already moved
    ordered: list[FileChange] = []
    progress = True
    while pending and progress:
        progress = False
        still: list[FileChange] = []
        for ch in pending:
            # A rename waits for the one that moves its destination away.
            blocker = by_source.get(ch.path)
            if blocker is None or blocker.old_path in done:
                ordered.append(ch)
                assert ch.old_path is not None
                done.add(ch.old_path)
                progress = True
            else:
                still.append(ch)
        pending = still
    return ordered, pending


def _text_document_edit(
    uri: str, version: int | None, edits: list[types.TextEdit]
) -> types.TextDocumentEdit:
    return types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=list(edits),
    )


def build_workspace_edit(
    root: Path,
    changes: Sequence[FileChange],
    versions: Mapping[str, int | None] | None = None,
) -> types.WorkspaceEdit:
    """The ``documentChanges`` WorkspaceEdit that turns the base files into the new ones.

    Operations come in an order that is safe to run one after another and is the same for the
    same input: deletions, then renames (each followed by the edit of its new content, if any;
    a rename waits for the rename that frees its destination), then creations (each followed by
    an edit inserting the content), then edits of modified files; paths sorted within each group.

    ``versions`` maps a file's path to the version of its open document, or ``None``; edits to a
    modified file carry that version so the client refuses them when the document moved on.
    Edits following a create or a rename carry no version. Renames that form a cycle
    (``a -> b``, ``b -> a``) are expressed as edits of the files in place.
    """
    _validate(changes)
    by_kind: dict[str, list[FileChange]] = {"added": [], "deleted": [], "modified": []}
    renames: list[FileChange] = []
    for ch in changes:
        (renames if ch.change == "renamed" else by_kind[ch.change]).append(ch)
    for group in by_kind.values():
        group.sort(key=lambda ch: ch.path)
    ordered_renames, cyclic = _order_renames(renames)
    ops: list[DocumentChange] = [_delete(root, ch) for ch in by_kind["deleted"]]
    for ch in ordered_renames:
        ops.extend(_rename(root, ch))
    for ch in by_kind["added"]:
        ops.extend(_create(root, ch))
    ops.extend(_edits_in_place(root, by_kind["modified"], cyclic, versions or {}))
    return types.WorkspaceEdit(document_changes=ops)


def _delete(root: Path, ch: FileChange) -> types.DeleteFile:
    options = types.DeleteFileOptions(recursive=False, ignore_if_not_exists=False)
    return types.DeleteFile(uri=path_to_uri(root, ch.path), options=options)


def _rename(root: Path, ch: FileChange) -> list[DocumentChange]:
    """The rename, then the edit of its new content when it has one."""
    assert ch.old_path is not None and ch.base_text is not None and ch.new_text is not None
    new_uri = path_to_uri(root, ch.path)
    options = types.RenameFileOptions(overwrite=False, ignore_if_exists=False)
    ops: list[DocumentChange] = [
        types.RenameFile(old_uri=path_to_uri(root, ch.old_path), new_uri=new_uri, options=options)
    ]
    if ch.new_text != ch.base_text:
        ops.append(_text_document_edit(new_uri, None, text_edits(ch.base_text, ch.new_text)))
    return ops


def _create(root: Path, ch: FileChange) -> list[DocumentChange]:
    """The creation, then an edit inserting the content."""
    assert ch.new_text is not None
    uri = path_to_uri(root, ch.path)
    options = types.CreateFileOptions(overwrite=False, ignore_if_exists=False)
    ops: list[DocumentChange] = [types.CreateFile(uri=uri, options=options)]
    if ch.new_text:
        ops.append(_text_document_edit(uri, None, text_edits("", ch.new_text)))
    return ops


def _edits_in_place(
    root: Path,
    modified: list[FileChange],
    cyclic: list[FileChange],
    versions: Mapping[str, int | None],
) -> list[DocumentChange]:
    """Edits of modified files, plus cyclic renames rewritten as in-place edits: the file
    now at X held the base text of the rename *from* X and must end with the new text of
    the rename *to* X."""
    in_place: list[tuple[str, str, str]] = []
    for ch in modified:
        assert ch.base_text is not None and ch.new_text is not None
        in_place.append((ch.path, ch.base_text, ch.new_text))
    cyclic_by_source = {ch.old_path: ch for ch in cyclic}
    for ch in cyclic:
        assert ch.new_text is not None
        base_text = cyclic_by_source[ch.path].base_text
        assert base_text is not None
        in_place.append((ch.path, base_text, ch.new_text))
    ops: list[DocumentChange] = []
    for path, base_text, new_text in sorted(in_place, key=lambda item: item[0]):
        edits = text_edits(base_text, new_text)
        if edits:
            ops.append(_text_document_edit(path_to_uri(root, path), versions.get(path), edits))
    return ops


def workspace_edit_to_json(edit: types.WorkspaceEdit) -> dict[str, Any]:
    """The JSON (camelCase, as on the wire) form of ``edit``."""
    data = get_converter().unstructure(edit, unstructure_as=types.WorkspaceEdit)
    assert isinstance(data, dict)
    return data
