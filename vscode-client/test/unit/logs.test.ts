import { test } from "node:test";
import assert from "node:assert/strict";
import { LogBook, newerThan } from "../../src/logs";

test("commands, output and exit codes make a readable log", () => {
  const book = new LogBook();
  book.push({ taskId: "t", attempt: 1, kind: "commandStarted", command: "pytest -q", chunkId: "c1" });
  book.push({ taskId: "t", attempt: 1, kind: "output", chunkId: "c1", text: "..F\nFAILED test_a" });
  book.push({ taskId: "t", attempt: 1, kind: "output", chunkId: "c1", text: "\n1 failed\n" });
  book.push({ taskId: "t", attempt: 1, kind: "commandFinished", chunkId: "c1", exitCode: 1, durationMs: 2300 });
  assert.equal(book.text("t", 1), "$ pytest -q  [c1]\n..F\nFAILED test_a\n1 failed\n\u2192 exit 1 in 2.3s\n");
  assert.deepEqual(book.attempts("t"), [1]);
});

test("a terminal citation maps to the document lines of that command's output", () => {
  const book = new LogBook();
  book.push({ taskId: "t", attempt: 2, kind: "message", text: "looking around" });
  book.push({ taskId: "t", attempt: 2, kind: "commandStarted", command: "ls", chunkId: "c1" });
  book.push({ taskId: "t", attempt: 2, kind: "output", text: "a\nb\nc\n" });
  book.push({ taskId: "t", attempt: 2, kind: "commandFinished", exitCode: 0 });
  const lines = book.text("t", 2).split("\n");
  const range = book.chunkRange("t", 2, "c1", 2, 3);
  assert.ok(range);
  assert.deepEqual(lines.slice(range.start, range.end + 1), ["b", "c"]);
  assert.equal(book.chunkRange("t", 2, "c9", 1, 1), undefined);
});

test("logs are kept per task and attempt, and can be forgotten", () => {
  const book = new LogBook();
  book.push({ taskId: "a", attempt: 1, kind: "status", status: "running" });
  book.push({ taskId: "b", attempt: 3, kind: "status", status: "queued" });
  assert.equal(book.text("a", 1), "-- running --");
  assert.equal(book.text("a", 3), "");
  book.forget("a");
  assert.equal(book.has("a"), false);
  assert.equal(book.has("b"), true);
});

test("the stored log replaces what was seen; notifications during the fetch are not doubled", () => {
  const book = new LogBook();
  const started = { taskId: "t", attempt: 1, kind: "commandStarted", command: "ls", chunkId: "c1" } as const;
  const out1 = { taskId: "t", attempt: 1, kind: "output", chunkId: "c1", text: "a\n" } as const;
  const out2 = { taskId: "t", attempt: 1, kind: "output", chunkId: "c1", text: "b\n" } as const;
  const done = { taskId: "t", attempt: 1, kind: "commandFinished", chunkId: "c1", exitCode: 0 } as const;
  // Seen live before the fetch: only the tail (this window opened late).
  book.push(out1);
  book.beginLoad("t");
  // Arrived while fetching: out1 and out2 were flushed before the store was read, done after.
  book.push(out2);
  book.push(done);
  assert.equal(book.text("t", 1), "a");
  book.finishLoad("t", [started, out1, out2]);
  assert.equal(book.text("t", 1), "$ ls  [c1]\na\nb\n\u2192 exit 0\n");
  const range = book.chunkRange("t", 1, "c1", 1, 2);
  assert.deepEqual(range, { start: 1, end: 2 });
  // Later notifications append as usual.
  book.push({ taskId: "t", attempt: 1, kind: "status", status: "completed" });
  assert.match(book.text("t", 1), /-- completed --$/);
});

test("a stored log of a task this window never saw, for several attempts", () => {
  const book = new LogBook();
  book.beginLoad("old");
  book.finishLoad("old", [
    { taskId: "old", attempt: 1, kind: "message", text: "first" },
    { taskId: "old", attempt: 2, kind: "message", text: "second" },
  ]);
  assert.deepEqual(book.attempts("old"), [1, 2]);
  assert.equal(book.text("old", 2), "# second");
});

test("a failed fetch keeps the notifications that arrived meanwhile", () => {
  const book = new LogBook();
  book.beginLoad("t");
  book.push({ taskId: "t", attempt: 1, kind: "status", status: "running" });
  book.abortLoad("t");
  assert.equal(book.text("t", 1), "-- running --");
});

test("newerThan keeps entries after the overlap, and all of them without one", () => {
  const e = (text: string) => ({ taskId: "t", attempt: 1, kind: "message" as const, text });
  assert.deepEqual(newerThan([e("a"), e("b")], [e("b"), e("c")]).map((x) => x.text), ["c"]);
  assert.deepEqual(newerThan([e("a")], [e("x"), e("y")]).map((x) => x.text), ["x", "y"]);
  assert.deepEqual(newerThan([e("a"), e("b")], [e("a"), e("b")]), []);
  assert.deepEqual(newerThan([], [e("a")]).map((x) => x.text), ["a"]);
});

test("the model's streamed text reads as one message; a tool summary as its own block", () => {
  const book = new LogBook();
  for (const text of ["Let", " me", " run the", " tests.\nThen", " fix it."]) {
    book.push({ taskId: "t", attempt: 1, kind: "message", text });
  }
  book.push({ taskId: "t", attempt: 1, kind: "message", command: "apply_patch", text: "M shop/cart.py\n" });
  book.push({ taskId: "t", attempt: 1, kind: "message", text: "Done.\n" });
  book.push({ taskId: "t", attempt: 1, kind: "status", status: "completed" });
  assert.equal(
    book.text("t", 1),
    "# Let me run the tests.\n# Then fix it.\n\n\u270e apply_patch\n  M shop/cart.py\n\n# Done.\n\n-- completed --",
  );
});
