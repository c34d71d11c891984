import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { alertItems } from "../../src/alerts";
import { conflictChoices, pickedChoice, STEP_COMMANDS, stepChoice } from "../../src/choices";
import { finishNotice, isFinish } from "../../src/finishNotice";
import type { Alert, TaskSummary } from "../../src/protocol";

const manifest = JSON.parse(readFileSync(path.resolve(__dirname, "..", "..", "..", "package.json"), "utf8")) as {
  contributes: { commands: { command: string }[] };
};

function task(over: Partial<TaskSummary> = {}): TaskSummary {
  return {
    taskId: "t1",
    title: "fix the flaky test",
    mode: "code",
    status: "completed",
    createdAt: "2025-01-01T10:00:00Z",
    updatedAt: "2025-01-01T10:01:05Z",
    attemptCount: 1,
    diffStat: { files: 1, added: 3, removed: 1 },
    checksPassed: 1,
    checksFailed: 1,
    ...over,
  };
}

test("every step runs a command the extension contributes", () => {
  const contributed = new Set(manifest.contributes.commands.map((c) => c.command));
  for (const [step, command] of Object.entries(STEP_COMMANDS)) {
    assert.ok(contributed.has(command), `${step} runs ${command}, which package.json does not contribute`);
  }
});

test("a choice runs its step's command on the target; the attempt only when known", () => {
  assert.deepEqual(stepChoice("followUp", "Follow Up\u2026", { taskId: "t1" }), {
    label: "Follow Up\u2026",
    command: "errand.followUpTask",
    args: [{ taskId: "t1" }],
  });
  assert.deepEqual(stepChoice("apply", "Apply", { taskId: "t1", attempt: 2 }).args, [{ taskId: "t1", attempt: 2 }]);
  const choices = conflictChoices({ taskId: "t1" }, true);
  assert.equal(pickedChoice(choices, "Create Branch\u2026")?.command, "errand.createBranchFromTask");
  assert.equal(pickedChoice(choices, undefined), undefined);
  assert.equal(pickedChoice(choices, "Nope"), undefined);
});

test("conflicts offer Apply Files\u2026 only while other files could be applied", () => {
  const labels = (others: boolean) => conflictChoices({ taskId: "t1", attempt: 1 }, others).map((c) => c.label);
  assert.deepEqual(labels(true), ["Apply Files\u2026", "Create Branch\u2026", "Follow Up\u2026"]);
  assert.deepEqual(labels(false), ["Create Branch\u2026", "Follow Up\u2026"]);
});

test("a task finishes when it leaves an active status", () => {
  assert.equal(isFinish(task({ status: "running" }), task()), true);
  assert.equal(isFinish(undefined, task()), false);
  assert.equal(isFinish(task(), task()), false);
  assert.equal(isFinish(task({ status: "queued" }), task({ status: "running" })), false);
});

test("the finish notice: diff and checks, Preview Diff for an applicable task", () => {
  const notice = finishNotice(task(), []);
  assert.equal(notice.message, "errand: \u201cfix the flaky test\u201d completed (+3 \u22121 \u00b7 checks \u27131 \u27171).");
  assert.equal(notice.warn, false);
  assert.deepEqual(
    notice.choices.map((c) => [c.label, c.command]),
    [
      ["Preview Diff", "errand.previewDiff"],
      ["Open", "errand.openTask"],
    ],
  );
  const failed = finishNotice(task({ status: "failed", reason: "step limit reached", diffStat: { files: 0 }, checksFailed: 0, checksPassed: 0 }), []);
  assert.equal(failed.message, "errand: \u201cfix the flaky test\u201d failed: step limit reached");
  assert.equal(failed.warn, true);
  assert.deepEqual(failed.choices.map((c) => c.label), ["Open"]);
});

test("the finish notice of a task errand's daemon was running when it died offers Resume", () => {
  const notice = finishNotice(task({ status: "failed", reason: "interrupted", diffStat: { files: 0 }, checksPassed: 0, checksFailed: 0 }), []);
  assert.equal(notice.warn, true);
  assert.match(notice.message, /^errand: \u201cfix the flaky test\u201d was interrupted: errand's daemon stopped while it ran\. Resume/);
  assert.deepEqual(
    notice.choices.map((c) => [c.label, c.command, c.args]),
    [
      ["Resume", "errand.resumeTask", [{ taskId: "t1" }]],
      ["Open", "errand.openTask", [{ taskId: "t1" }]],
    ],
  );
});

test("the finish notice says the first alert and how many there are", () => {
  const claim: Alert = { kind: "claim", text: "the report says the tests pass, but no test command was run" };
  const citation: Alert = { kind: "citation", text: "【F:a.py†L9】 did not resolve", path: "a.py", startLine: 9, endLine: 9 };
  const one = finishNotice(task(), alertItems([claim]));
  assert.equal(one.warn, true);
  assert.match(one.message, /\u26a0 Warning: the report says the tests pass, but no test command was run$/);
  const two = finishNotice(task(), alertItems([citation, claim]));
  assert.match(two.message, /\u26a0 2 warnings: 1 citation did not resolve: a\.py:L9 \(more in the report\)$/);
  const long = finishNotice(task(), alertItems([{ kind: "verify", text: "x".repeat(300) }]));
  assert.match(long.message, /: x{159}\u2026$/);
});
