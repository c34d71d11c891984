"""The ``apply_patch`` tool: parse Codex's patch format and apply it to a task copy.

The format (see FIELD-NOTES "The apply_patch format")::

    *** Begin Patch
    *** Add File: path          then lines starting with "+"
    *** Delete File: path
    *** Update File: path
    *** Move to: new/path       (optional, right after Update File)
    @@ class Foo                (optional anchors, may be stacked)
     context / -removed / +added lines
    *** End of File             (optional: the chunk must match at the end of the file)
    *** End Patch

Application is all or nothing: every hunk is parsed, every path is checked and every new
file content is computed in memory before anything is written; an OS error while writing
rolls back what was already written.

Rules this package adds to the grammar:

* Paths are relative, use ``/``, contain no ``..`` component, never enter ``.git``, and never
  pass through a symlink that resolves outside the root. ``Add File`` never writes through a
  symlink and never overwrites an existing file; ``Move to`` never overwrites either.
* Chunks are located by their context and removed lines (no line numbers), trying in turn an
  exact match, then ignoring trailing whitespace, then ignoring surrounding whitespace, then
  also treating typographic quotes/dashes/spaces as their ASCII forms. The first of those
  that finds anything decides. ``@@ anchor`` lines are found the same way, each after the
  previous one; the chunk is then the first match from the last anchor on. Without an anchor
  the chunk must match exactly one place after the previous chunk, else it is ambiguous.
* A chunk with only ``+`` lines goes right after its last anchor, at the end of the file with
  ``*** End of File``, or into an empty file; anywhere else it is refused (never appended).
* Context lines keep the file's own text (so whitespace-tolerant matches don't rewrite
  them); added lines take the file's dominant line ending (CRLF if most lines end in CRLF,
  LF when the file has no line break to go by).
* Final newline rule: a file keeps its final-newline status. A file that ended without a
  newline still ends without one, so lines appended after its last line leave the new last
  line unterminated, and adding an empty last line is how a patch gives it a final newline.
  New files, and files that were empty, end with a newline.
* Files must be UTF-8. A leading BOM belongs to the file: patch lines may quote it or not,
  it is kept (never doubled) and only goes when the file becomes empty. Renames and
  deletions work on any file, text or not.
* Updated and moved files keep their permission bits (executable bit included). Existing
  files are replaced by rename, so a hard link shared with another tree is never written
  through. A symlink inside the root is followed, and its target is edited and reported.
* Inside hunk bodies, ``***`` markers must start at column 0: a line starting with a space
  is always context, whatever it contains.
* Tolerated sloppiness: whitespace around ``*** Begin Patch``/``*** End Patch`` and blank lines
  around the patch, a Markdown code fence or an ``apply_patch <<'EOF'`` heredoc around it,
  CRLF patch text, trailing whitespace on marker lines, blank lines between hunks, a
  zero-length line inside a chunk (read as an empty context line), and unified-diff
  ``@@ -1,3 +1,4 @@ heading`` lines (read as ``@@ heading``).

The modules, in the order a patch goes through them (each imports only those above it):

* ``errors``: ``PatchError`` and the wording helpers of its messages.
* ``hunks``: the parsed form (``AddFile``, ``DeleteFile``, ``UpdateFile``, ``Chunk``).
* ``result``: what a successful call reports (``PatchResult``, ``PatchedFile``).
* ``paths``: which paths a patch may name, and where they lead on disk.
* ``parse``: the grammar, text to hunks (``parse_patch``). Pure.
* ``text``: a file as lines; line endings, BOM and final newline. Pure.
* ``match``: where each chunk goes, by context, anchors and tiers. Pure.
* ``plan``: every hunk applied to an in-memory overlay of the tree.
* ``write``: the plan carried out on disk, rolled back on failure.
* ``apply``: ``apply_patch``, the sequence of the above.
"""

from errand.patch.apply import apply_patch
from errand.patch.errors import PatchError
from errand.patch.hunks import AddFile, Chunk, DeleteFile, Hunk, PatchLine, UpdateFile
from errand.patch.parse import parse_patch
from errand.patch.result import PatchedFile, PatchResult

__all__ = [
    "AddFile",
    "Chunk",
    "DeleteFile",
    "Hunk",
    "PatchError",
    "PatchLine",
    "PatchResult",
    "PatchedFile",
    "UpdateFile",
    "apply_patch",
    "parse_patch",
]
