import { test } from "node:test";
import assert from "node:assert/strict";
import { LogBook } from "../../src/logs";
import type { Task, TaskSummary } from "../../src/protocol";
import { TaskCaches } from "../../src/taskCaches";
import { TaskDetails } from "../../src/taskDetails";
import { TaskStore } from "../../src/taskStore";

function detail(id: string, updatedAt: string, status: TaskSummary["status"] = "completed"): Task {
  return { taskId: id, title: id, mode: "code", status, createdAt: "2025-01-01T10:00:00Z", updatedAt, attemptCount: 1, prompt: "p", attempts: [] };
}

test("forgetting a task forgets it in every cache, and only that task", () => {
  const store = new TaskStore();
  const logs = new LogBook();
  const forgotten: string[] = [];
  store.setDetail(detail("a", "2025-01-01T10:01:00Z"));
  store.setDetail(detail("b", "2025-01-01T10:01:00Z"));
  logs.push({ taskId: "a", attempt: 1, kind: "output", text: "hello\n" });
  logs.push({ taskId: "b", attempt: 1, kind: "output", text: "hello\n" });
  const caches = new TaskCaches([store, logs, { forget: (taskId) => forgotten.push(taskId) }]);
  caches.forget("a");
  assert.equal(store.get("a"), undefined);
  assert.equal(logs.has("a"), false);
  assert.deepEqual(forgotten, ["a"]);
  assert.ok(store.get("b") && store.detail("b") && logs.has("b"));
});

test("details: the cached one while the task has not moved, else the server's (cached again)", async () => {
  const store = new TaskStore();
  const asked: string[] = [];
  let answer = detail("a", "2025-01-01T10:01:00Z", "running");
  const details = new TaskDetails({ getTask: async (taskId: string) => (asked.push(taskId), { task: answer }) }, store);
  assert.equal((await details.get("a")).status, "running");
  assert.equal((await details.get("a")).status, "running");
  assert.deepEqual(asked, ["a"]);
  assert.equal(store.get("a")?.status, "running", "getTask's summary fields reach the task list");
  store.upsert({ ...answer, status: "completed", updatedAt: "2025-01-01T10:02:00Z" });
  answer = detail("a", "2025-01-01T10:02:00Z");
  assert.equal((await details.get("a")).status, "completed");
  assert.deepEqual(asked, ["a", "a"]);
  // fetch always asks.
  await details.fetch("a");
  assert.deepEqual(asked, ["a", "a", "a"]);
});
