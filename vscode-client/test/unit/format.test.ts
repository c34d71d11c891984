import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checksText,
  countTasks,
  diffStatText,
  formatDuration,
  isApplicable,
  isInterrupted,
  stateIcon,
  stateLabel,
  statusBarView,
  taskDescription,
} from "../../src/format";
import type { TaskSummary } from "../../src/protocol";

function task(over: Partial<TaskSummary>): TaskSummary {
  return {
    taskId: "t1",
    title: "fix the flaky test",
    mode: "code",
    status: "completed",
    createdAt: "2025-01-01T10:00:00Z",
    updatedAt: "2025-01-01T10:01:05Z",
    attemptCount: 1,
    diffStat: { files: 1, added: 3, removed: 1 },
    checksPassed: 2,
    checksFailed: 0,
    applied: false,
    ...over,
  };
}

test("status bar shows running and ready counts", () => {
  const tasks = [
    task({ taskId: "a", status: "running" }),
    task({ taskId: "b", status: "preparing" }),
    task({ taskId: "c" }),
    task({ taskId: "d" }),
    task({ taskId: "e" }),
    task({ taskId: "f", applied: true }),
    task({ taskId: "g", status: "failed" }),
  ];
  const view = statusBarView(countTasks(tasks), "running");
  assert.equal(view.text, "$(sync~spin) errand: 2 running \u00b7 3 ready");
  assert.equal(view.error, false);
  assert.match(view.tooltip, /1 failed/);
});

test("status bar for one running task, idle, and queued work", () => {
  assert.equal(statusBarView(countTasks([task({ status: "running" })]), "running").text, "$(sync~spin) errand: 1 running");
  assert.equal(statusBarView(countTasks([]), "running").text, "$(tasklist) errand");
  assert.equal(
    statusBarView(countTasks([task({ status: "queued" })]), "running").text,
    "$(sync~spin) errand: 1 queued",
  );
  assert.equal(statusBarView(countTasks([task({})]), "running").text, "$(check) errand: 1 ready");
});

test("status bar while the server starts", () => {
  assert.equal(statusBarView(countTasks([]), "starting").text, "$(loading~spin) errand: starting");
});

test("status bar shows an error state when the server is down", () => {
  const view = statusBarView(countTasks([task({ status: "running" })]), "stopped");
  assert.equal(view.error, true);
  assert.equal(view.text, "$(error) errand: server stopped");
});

test("diff stat and checks read as +added −removed and ✓/✗", () => {
  assert.equal(diffStatText({ files: 2, added: 12, removed: 3 }), "+12 \u22123");
  assert.equal(diffStatText({ files: 0, added: 0, removed: 0 }), "");
  assert.equal(diffStatText(undefined), "");
  assert.equal(checksText(2, 1), "\u27132 \u27171");
  assert.equal(checksText(0, 0), "");
});

test("durations", () => {
  assert.equal(formatDuration(999), "0.9s");
  assert.equal(formatDuration(2_340), "2.3s");
  assert.equal(formatDuration(45_000), "45s");
  assert.equal(formatDuration(185_000), "3m 05s");
  assert.equal(formatDuration(3_720_000), "1h 02m");
});

test("task description: diff, checks, elapsed", () => {
  assert.equal(taskDescription(task({}), Date.parse("2030-01-01T00:00:00Z")), "+3 \u22121 \u00b7 \u27132 \u00b7 1m 05s");
  const running = task({ status: "running", diffStat: { files: 0, added: 0, removed: 0 }, checksPassed: 0 });
  assert.equal(taskDescription(running, Date.parse("2025-01-01T10:00:30Z")), "running \u00b7 30s");
  assert.equal(taskDescription(running, Date.parse("2025-01-01T10:00:04.5Z")), "running \u00b7 4.5s");
  assert.equal(
    taskDescription(task({ mode: "ask", diffStat: { files: 0, added: 0, removed: 0 }, checksPassed: 0 }), 0),
    "ask \u00b7 1m 05s",
  );
  assert.match(taskDescription(task({ applied: true }), 0), /applied/);
});

test("only finished, unapplied code tasks with changes are applicable", () => {
  assert.equal(isApplicable(task({})), true);
  assert.equal(isApplicable(task({ applied: true })), false);
  assert.equal(isApplicable(task({ mode: "ask" })), false);
  assert.equal(isApplicable(task({ status: "running" })), false);
  assert.equal(isApplicable(task({ diffStat: { files: 0, added: 0, removed: 0 } })), false);
});

test("a task's alerts show in its description as \u26a0 n", () => {
  assert.equal(taskDescription(task({}), Date.parse("2030-01-01T00:00:00Z"), 2), "+3 \u22121 \u00b7 \u27132 \u00b7 \u26a0 2 \u00b7 1m 05s");
  assert.doesNotMatch(taskDescription(task({}), 0, 0), /\u26a0/);
});

test("a task errand's daemon was running when it died reads as interrupted", () => {
  const stopped = task({ status: "failed", reason: "interrupted", diffStat: { files: 0, added: 0, removed: 0 }, checksPassed: 0 });
  assert.equal(isInterrupted(stopped), true);
  assert.equal(stateLabel(stopped), "Interrupted");
  assert.equal(stateIcon(stopped).id, "debug-pause");
  assert.equal(taskDescription(stopped, 0), "interrupted \u00b7 1m 05s");
  const failed = task({ status: "failed", reason: "step limit reached" });
  assert.equal(isInterrupted(failed), false);
  assert.equal(stateLabel(failed), "Failed");
  assert.equal(stateIcon(failed).id, "error");
  // Resumed, it runs again.
  assert.equal(stateLabel(task({ status: "running", reason: "interrupted" })), "Running");
});
