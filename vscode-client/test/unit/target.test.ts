import { test } from "node:test";
import assert from "node:assert/strict";
import type { Attempt, Task } from "../../src/protocol";
import { attemptItem, attemptsWithChanges, targetOf, TASKS, withAttempt } from "../../src/target";

test("a command's target: a task id, a tree node, a file node or a report link's argument", () => {
  assert.deepEqual(targetOf("t1"), { taskId: "t1" });
  assert.deepEqual(targetOf({ kind: "task", taskId: "t1" }), { taskId: "t1" });
  assert.deepEqual(targetOf({ kind: "file", taskId: "t1", attempt: 2, file: { path: "a.py" } }), { taskId: "t1", attempt: 2, path: "a.py" });
  assert.deepEqual(targetOf({ taskId: "t1", attempt: 1, path: "b.py" }), { taskId: "t1", attempt: 1, path: "b.py" });
  for (const nothing of [undefined, null, "", 3, {}, { taskId: 7 }]) {
    assert.equal(targetOf(nothing), undefined);
  }
});

test("task filters: what each command offers when run from the palette", () => {
  const base = { taskId: "t", title: "t", createdAt: "", updatedAt: "", attemptCount: 1 };
  const done = { ...base, mode: "code" as const, status: "completed" as const, diffStat: { files: 1 } };
  assert.equal(TASKS.applicable(done), true);
  assert.equal(TASKS.applicable({ ...done, applied: true }), false);
  assert.equal(TASKS.withDiff({ ...done, applied: true }), true);
  assert.equal(TASKS.withDiff({ ...done, mode: "ask" }), false);
  assert.equal(TASKS.active({ ...done, status: "preparing" }), true);
  assert.equal(TASKS.finished({ ...done, status: "cancelled" }), true);
  assert.equal(TASKS.finished({ ...done, status: "queued" }), false);
  assert.equal(TASKS.interrupted({ ...done, status: "failed", reason: "interrupted" }), true);
  assert.equal(TASKS.interrupted({ ...done, status: "failed", reason: "step limit reached" }), false);
  // A resumed task runs again (its reason is cleared, but a stale one must not count).
  assert.equal(TASKS.interrupted({ ...done, status: "running", reason: "interrupted" }), false);
});

test("best of N: the attempts to choose between, as quick-pick rows", () => {
  const attempt = (over: Partial<Attempt>): Attempt => ({ attempt: 1, status: "completed", diffStat: { files: 1, added: 2, removed: 0 }, ...over });
  const task = {
    attempts: [
      attempt({ report: "Fixed it.\nDetails follow.", checks: [{ command: "pytest", exitCode: 0, passed: true, durationMs: 1, chunkId: "c1-1" }] }),
      attempt({ attempt: 2, status: "failed" }),
      attempt({ attempt: 3, diffStat: { files: 0 } }),
    ],
  } as Task;
  const choices = attemptsWithChanges(task);
  assert.deepEqual(choices.map((a) => a.attempt), [1]);
  assert.deepEqual(attemptItem(choices[0] as Attempt), {
    label: "Attempt 1",
    description: "+2 \u22120 \u00b7 checks \u27131",
    detail: "Fixed it.",
    attempt: 1,
  });
});

test("an argument names its attempt only when known", () => {
  assert.deepEqual(withAttempt({ taskId: "t" }, undefined), { taskId: "t" });
  assert.deepEqual(withAttempt({ taskId: "t" }, 2), { taskId: "t", attempt: 2 });
});
