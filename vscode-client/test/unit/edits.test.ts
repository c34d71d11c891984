import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTextEdits, conflictsOf, fileChanges, proposedContent, touchedUris } from "../../src/edits";

const at = (line: number, character: number) => ({ line, character });
const edit = (sl: number, sc: number, el: number, ec: number, newText: string) => ({
  range: { start: at(sl, sc), end: at(el, ec) },
  newText,
});

test("applies several edits regardless of their order", () => {
  const text = "def f():\n    return 1\n\nprint(f())\n";
  const out = applyTextEdits(text, [edit(3, 0, 3, 10, "print(f() + 1)"), edit(1, 11, 1, 12, "2")]);
  assert.equal(out, "def f():\n    return 2\n\nprint(f() + 1)\n");
});

test("inserts at the same position keep their order", () => {
  assert.equal(applyTextEdits("ab", [edit(0, 1, 0, 1, "1"), edit(0, 1, 0, 1, "2")]), "a12b");
});

test("keeps CRLF line endings and counts lines across them", () => {
  assert.equal(applyTextEdits("one\r\ntwo\r\nthree\r\n", [edit(1, 0, 1, 3, "TWO")]), "one\r\nTWO\r\nthree\r\n");
});

test("a character past the end of a line stays before the line break", () => {
  assert.equal(applyTextEdits("abc\ndef\n", [edit(0, 99, 0, 99, "!")]), "abc!\ndef\n");
});

test("a whole-file replacement past the last line", () => {
  assert.equal(applyTextEdits("old\n", [edit(0, 0, 5, 0, "new\ncontent\n")]), "new\ncontent\n");
});

test("works on UTF-16 code units, as LSP positions do", () => {
  assert.equal(applyTextEdits("\u{1F600}x\n", [edit(0, 2, 0, 3, "y")]), "\u{1F600}y\n");
});

test("overlapping edits are refused", () => {
  assert.throws(() => applyTextEdits("abcdef", [edit(0, 0, 0, 3, "x"), edit(0, 2, 0, 4, "y")]), /overlapping/);
});

test("fileChanges reads the `changes` map", () => {
  const changes = fileChanges({ changes: { "file:///r/a.py": [edit(0, 0, 0, 0, "# hi\n")] } });
  assert.deepEqual(changes, [{ uri: "file:///r/a.py", kind: "modified", edits: [edit(0, 0, 0, 0, "# hi\n")] }]);
});

test("fileChanges reads documentChanges: create, edit, rename, delete", () => {
  const changes = fileChanges({
    documentChanges: [
      { kind: "create", uri: "file:///r/new.py" },
      { textDocument: { uri: "file:///r/new.py", version: null }, edits: [edit(0, 0, 0, 0, "x = 1\n")] },
      { textDocument: { uri: "file:///r/old.py", version: 3 }, edits: [edit(0, 0, 0, 1, "Y")] },
      { kind: "rename", oldUri: "file:///r/old.py", newUri: "file:///r/moved.py" },
      { kind: "delete", uri: "file:///r/gone.py" },
    ],
  });
  assert.deepEqual(
    changes.map((c) => [c.uri, c.kind, c.oldUri, c.edits.length]),
    [
      ["file:///r/new.py", "added", undefined, 1],
      ["file:///r/moved.py", "renamed", "file:///r/old.py", 1],
      ["file:///r/gone.py", "deleted", undefined, 0],
    ],
  );
  const added = changes[0];
  assert.ok(added);
  assert.equal(proposedContent(added, ""), "x = 1\n");
  const deleted = changes[2];
  assert.ok(deleted);
  assert.equal(proposedContent(deleted, "whatever\n"), "");
  assert.deepEqual(touchedUris({ documentChanges: [{ kind: "delete", uri: "file:///r/gone.py" }] }), []);
});

test("fileChanges keeps the buffer version each file's edits were made against", () => {
  const changes = fileChanges({
    documentChanges: [
      { textDocument: { uri: "file:///r/open.py", version: 7 }, edits: [edit(0, 0, 0, 0, "a")] },
      { textDocument: { uri: "file:///r/disk.py", version: null }, edits: [edit(0, 0, 0, 0, "b")] },
      { textDocument: { uri: "file:///r/old.py", version: 2 }, edits: [edit(0, 0, 0, 0, "c")] },
      { kind: "rename", oldUri: "file:///r/old.py", newUri: "file:///r/new.py" },
    ],
  });
  assert.deepEqual(
    changes.map((c) => [c.uri, c.version]),
    [
      ["file:///r/open.py", 7],
      ["file:///r/disk.py", null],
      ["file:///r/new.py", 2],
    ],
  );
});

test("conflicts come from their typed form, even a path with a colon in it", () => {
  const conflicts = conflictsOf({
    conflictDetails: [
      { path: "README.md", reason: "changed in the workspace since the task started, and the changes overlap (three-way merge conflict)" },
      { path: "notes: v2.txt", reason: "deleted in the workspace since the task started" },
    ],
  });
  assert.deepEqual(
    conflicts.map((c) => c.path),
    ["README.md", "notes: v2.txt"],
  );
  assert.equal(conflicts[1]?.message, "notes: v2.txt: deleted in the workspace since the task started");
  assert.deepEqual(conflictsOf({}), []);
});
