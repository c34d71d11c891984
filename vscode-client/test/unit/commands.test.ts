import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { recorded, resetStub, user } from "./vscodeStub";
import { COMMANDS, registerCommands, type CommandDeps } from "../../src/commands/index"; // not "…/commands": a stale out/src/commands.js from before the split would win
import { offer } from "../../src/notify";
import type { ApplyResult, Task } from "../../src/protocol";
import { TaskStore } from "../../src/taskStore";
import { TaskDetails } from "../../src/taskDetails";

const manifest = JSON.parse(readFileSync(path.resolve(__dirname, "..", "..", "..", "package.json"), "utf8")) as {
  contributes: { commands: { command: string }[] };
};

const TASK: Task = {
  taskId: "t1",
  title: "fix it",
  mode: "code",
  status: "completed",
  createdAt: "2025-01-01T10:00:00Z",
  updatedAt: "2025-01-01T10:01:00Z",
  attemptCount: 1,
  diffStat: { files: 2, added: 2, removed: 0 },
  prompt: "fix it",
  attempts: [
    {
      attempt: 1,
      status: "completed",
      diffStat: { files: 2, added: 2, removed: 0 },
      files: [
        { path: "a.py", change: "modified" },
        { path: "b.py", change: "modified" },
      ],
    },
  ],
};

/** Deps whose server answers apply with `applyResult`; `calls` lists what reached it and the caches. */
function fakeDeps(applyResult: ApplyResult = { applied: true, files: ["a.py"] }) {
  const calls: string[] = [];
  const store = new TaskStore();
  const api = {
    getTask: async () => ({ task: TASK }),
    apply: async (params: unknown) => (calls.push(`apply ${JSON.stringify(params)}`), applyResult),
    discard: async (taskId: string) => (calls.push(`discard ${taskId}`), {}),
    resume: async (taskId: string) => (calls.push(`resume ${taskId}`), { taskId }),
  };
  const details = new TaskDetails(api, store);
  store.setDetail(TASK);
  const deps = {
    api,
    store,
    details,
    caches: { forget: (taskId: string) => calls.push(`forget ${taskId}`) },
    diffs: { forget: (taskId: string) => calls.push(`diffs.forget ${taskId}`) },
    reports: {
      show: async () => {
        throw new Error("the server is not running");
      },
    },
    output: { error: (m: string) => calls.push(`log ${m}`), info() {}, warn() {} },
    refreshTasks: async () => void calls.push("refresh"),
    restartServer: async () => {},
  } as unknown as CommandDeps;
  return { deps, calls };
}

beforeEach(resetStub);

test("every contributed command is registered, each with its disposable", () => {
  const { deps } = fakeDeps();
  const disposables = registerCommands(deps);
  const contributed = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual([...recorded.registered.keys()].sort(), contributed);
  assert.deepEqual(Object.keys(COMMANDS).sort(), contributed);
  assert.equal(disposables.length, contributed.length);
  for (const d of disposables) {
    d.dispose();
  }
  assert.equal(recorded.registered.size, 0);
});

test("a failing command says why instead of failing silently", async () => {
  const { deps, calls } = fakeDeps();
  registerCommands(deps);
  await recorded.registered.get("errand.openTask")?.({ taskId: "t1" });
  assert.deepEqual(recorded.shown, [{ level: "error", message: "errand: the server is not running", items: [] }]);
  assert.deepEqual(calls, ["log errand.openTask failed: the server is not running"]);
});

test("Discard asks first, then forgets everything this window kept about the task", async () => {
  const { deps, calls } = fakeDeps();
  registerCommands(deps);
  await recorded.registered.get("errand.discardTask")?.({ taskId: "t1" });
  assert.deepEqual(calls, [], "not confirmed: nothing discarded");
  user.answer = (shown) => shown.items.find((i) => i === "Discard");
  await recorded.registered.get("errand.discardTask")?.({ taskId: "t1" });
  assert.deepEqual(calls, ["discard t1", "forget t1", "refresh"]);
});

test("Apply refused for conflicts: the choices run their commands on the task and attempt", async () => {
  const { deps, calls } = fakeDeps({
    applied: false,
    conflicts: ["a.py: changed in the workspace since the task started"],
    conflictDetails: [{ path: "a.py", reason: "changed in the workspace since the task started" }],
  });
  registerCommands(deps);
  user.answer = () => "Apply Files\u2026";
  await recorded.registered.get("errand.applyTask")?.({ taskId: "t1" });
  assert.deepEqual(calls, ['apply {"taskId":"t1","attempt":1}', "diffs.forget t1", "refresh"]);
  const [shown] = recorded.shown;
  assert.equal(shown?.level, "warning");
  assert.match(shown?.message ?? "", /not applied; nothing was written\. Conflict: a\.py: changed/);
  // b.py could still be applied, so Apply Files… is offered.
  assert.deepEqual(shown?.items, ["Apply Files\u2026", "Create Branch\u2026", "Follow Up\u2026"]);
  assert.deepEqual(recorded.executed, [{ command: "errand.applyFiles", args: [{ taskId: "t1", attempt: 1 }] }]);
});

test("Apply succeeded: says how many files and where it merged", async () => {
  const { deps } = fakeDeps({ applied: true, files: ["a.py", "b.py"], merged: ["b.py"] });
  registerCommands(deps);
  await recorded.registered.get("errand.applyTask")?.({ taskId: "t1", attempt: 1 });
  assert.deepEqual(recorded.shown.map((s) => s.message), [
    "errand: applied \u201cfix it\u201d (2 files). Merged with your own edits in b.py.",
  ]);
});

test("offer: a dismissed notification runs nothing", async () => {
  await offer("info", "hello", [{ label: "Restart", command: "errand.restartServer" }]);
  assert.deepEqual(recorded.executed, []);
  user.answer = () => "Restart";
  await offer("info", "hello", [{ label: "Restart", command: "errand.restartServer" }]);
  assert.deepEqual(recorded.executed, [{ command: "errand.restartServer", args: [] }]);
});

test("Resume Task\u2026 offers the interrupted tasks only, resumes the one picked and lists again", async () => {
  const { deps, calls } = fakeDeps();
  registerCommands(deps);
  await recorded.registered.get("errand.resumeTask")?.();
  assert.deepEqual(calls, []);
  assert.match(recorded.shown[0]?.message ?? "", /^errand: no task was interrupted/);
  const stopped = { ...TASK, taskId: "t2", title: "slow one", status: "failed" as const, reason: "interrupted", updatedAt: "2025-01-01T10:03:00Z" };
  deps.store.upsert(stopped);
  let offered: unknown[] = [];
  user.pick = (items) => ((offered = [...items]), items[0]);
  await recorded.registered.get("errand.resumeTask")?.();
  assert.deepEqual(offered.map((i) => (i as { taskId: string }).taskId), ["t2"]);
  assert.deepEqual(calls, ["resume t2", "refresh"]);
  // From the task list or a notification, the task is given.
  await recorded.registered.get("errand.resumeTask")?.({ kind: "task", taskId: "t2" });
  assert.deepEqual(calls.slice(2), ["resume t2", "refresh"]);
});
