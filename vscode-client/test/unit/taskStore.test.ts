import { test } from "node:test";
import assert from "node:assert/strict";
import { TaskStore } from "../../src/taskStore";
import type { TaskSummary } from "../../src/protocol";

function summary(id: string, status: TaskSummary["status"], updatedAt: string, createdAt = "2025-01-01T10:00:00Z"): TaskSummary {
  return { taskId: id, title: id, mode: "code", status, createdAt, updatedAt, attemptCount: 1 };
}

test("a newer notification wins over an older listTasks reply", () => {
  const store = new TaskStore();
  let changes = 0;
  store.onDidChange(() => (changes += 1));
  assert.equal(store.upsert(summary("a", "completed", "2025-01-01T10:05:00Z")), true);
  store.replaceAll([summary("a", "running", "2025-01-01T10:01:00Z")]);
  assert.equal(store.get("a")?.status, "completed");
  assert.equal(store.upsert(summary("a", "running", "2025-01-01T10:02:00Z")), false);
  assert.equal(store.upsert(summary("a", "completed", "2025-01-01T10:05:00Z")), false, "same state is no change");
  assert.equal(changes, 2);
});

test("replaceAll drops tasks the server no longer has; list is newest first", () => {
  const store = new TaskStore();
  store.upsert(summary("old", "completed", "2025-01-01T10:00:00Z", "2025-01-01T09:00:00Z"));
  store.replaceAll([
    summary("x", "running", "2025-01-01T10:00:00Z", "2025-01-01T09:00:00Z"),
    summary("y", "queued", "2025-01-01T10:00:00Z", "2025-01-01T09:30:00Z"),
  ]);
  assert.deepEqual(store.list().map((t) => t.taskId), ["y", "x"]);
  assert.deepEqual(store.counts(), { running: 1, queued: 1, ready: 0, failed: 0 });
});

test("task details are cached until the task changes", () => {
  const store = new TaskStore();
  store.setDetail({ ...summary("a", "running", "2025-01-01T10:01:00Z"), prompt: "p", attempts: [] });
  assert.equal(store.get("a")?.status, "running");
  assert.ok(store.detail("a"));
  store.upsert(summary("a", "completed", "2025-01-01T10:02:00Z"));
  assert.equal(store.detail("a"), undefined);
  store.forget("a");
  assert.equal(store.get("a"), undefined);
});

test("a new detail is announced, the same one again is not, an older one is dropped", () => {
  const store = new TaskStore();
  store.upsert(summary("a", "completed", "2025-01-01T10:02:00Z"));
  let fired = 0;
  store.onDidChange(() => (fired += 1));
  const detail = { ...summary("a", "completed", "2025-01-01T10:02:00Z"), prompt: "p", attempts: [] };
  store.setDetail(detail);
  assert.equal(fired, 1);
  store.setDetail({ ...detail });
  assert.equal(fired, 1);
  store.setDetail({ ...summary("a", "running", "2025-01-01T10:01:00Z"), prompt: "p", attempts: [] });
  assert.equal(fired, 1);
  assert.equal(store.detail("a")?.status, "completed");
});

test("a forgotten task takes its detail along, and is announced once", () => {
  const store = new TaskStore();
  store.setDetail({ ...summary("a", "completed", "2025-01-01T10:02:00Z"), prompt: "p", attempts: [] });
  let fired = 0;
  store.onDidChange(() => (fired += 1));
  store.forget("a");
  store.forget("a");
  assert.equal(fired, 1);
  assert.equal(store.detail("a"), undefined);
  // listTasks no longer listing a task forgets its detail too.
  store.setDetail({ ...summary("b", "completed", "2025-01-01T10:02:00Z"), prompt: "p", attempts: [] });
  store.replaceAll([]);
  assert.equal(store.detail("b"), undefined);
});

test("a newer listTasks reply drops the cached detail; the same state keeps it", () => {
  const store = new TaskStore();
  const detail = { ...summary("a", "running", "2025-01-01T10:01:00Z"), prompt: "p", attempts: [] };
  store.setDetail(detail);
  store.replaceAll([summary("a", "running", "2025-01-01T10:01:00Z")]);
  assert.ok(store.detail("a"));
  store.replaceAll([summary("a", "completed", "2025-01-01T10:03:00Z")]);
  assert.equal(store.detail("a"), undefined);
});

test("notifications are taken in the order they came, whatever a reply said meanwhile", () => {
  const store = new TaskStore();
  assert.equal(store.announce(summary("a", "running", "2025-01-01T10:01:00Z")), true);
  // getTask while it ran: the server stamped its progress, never announced.
  store.setDetail({ ...summary("a", "running", "2025-01-01T10:01:30Z"), prompt: "p", attempts: [] });
  // Its daemon died before saving that stamp; the new one re-announces it interrupted.
  assert.equal(store.announce({ ...summary("a", "failed", "2025-01-01T10:01:00Z"), reason: "interrupted" }), true);
  assert.equal(store.get("a")?.status, "failed");
  assert.equal(store.detail("a"), undefined, "the detail of the running state is dropped");
  // A notification older than one already taken is set aside; the same one is no change.
  assert.equal(store.announce(summary("a", "running", "2025-01-01T10:00:30Z")), false);
  assert.equal(store.announce({ ...summary("a", "failed", "2025-01-01T10:01:00Z"), reason: "interrupted" }), false);
  // Replies still never undo a newer state.
  store.replaceAll([summary("a", "running", "2025-01-01T10:00:50Z")]);
  assert.equal(store.get("a")?.status, "failed");
});
