import { test } from "node:test";
import assert from "node:assert/strict";
import { LogBook } from "../../src/logs";

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
