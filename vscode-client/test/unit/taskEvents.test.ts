import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { recorded, resetStub } from "./vscodeStub";
import type { ErrandApi } from "../../src/api";
import type { DiffCache } from "../../src/diffCache";
import type { LogContentProvider } from "../../src/logDocuments";
import { LogBook } from "../../src/logs";
import type { TaskSummary } from "../../src/protocol";
import { TaskDetails } from "../../src/taskDetails";
import { TaskEvents } from "../../src/taskEvents";
import { TaskStore } from "../../src/taskStore";

function summary(over: Partial<TaskSummary> = {}): TaskSummary {
  return {
    taskId: "t1",
    title: "slow one",
    mode: "code",
    status: "running",
    createdAt: "2025-01-01T10:00:00Z",
    updatedAt: "2025-01-01T10:00:05Z",
    attemptCount: 1,
    diffStat: { files: 0, added: 0, removed: 0 },
    ...over,
  };
}

function events() {
  const calls: string[] = [];
  const store = new TaskStore();
  const api = { getTask: async () => ({ task: { ...summary(), prompt: "p", attempts: [] } }) } as unknown as ErrandApi;
  const parts = {
    api,
    store,
    details: new TaskDetails(api, store),
    caches: { forget: (id: string) => calls.push(`forget ${id}`) },
    diffs: { forget: () => undefined } as unknown as DiffCache,
    logs: new LogBook(),
    logLoader: { forget: (id: string) => calls.push(`logLoader.forget ${id}`) },
    logDocuments: { refreshTask: (id: string) => calls.push(`refresh log ${id}`) } as unknown as LogContentProvider,
    output: { error: () => undefined },
  };
  return { events: new TaskEvents(parts), store, calls };
}

beforeEach(resetStub);

test("a task another window delegated joins the list without a notification", () => {
  const { events: e, store } = events();
  e.taskChanged({ task: summary(), removed: false });
  assert.equal(store.get("t1")?.status, "running");
  assert.equal(store.counts().running, 1);
  assert.deepEqual(recorded.shown, []);
});

test("its finish, seen here, is notified here too", async () => {
  const { events: e, store } = events();
  e.taskChanged({ task: summary(), removed: false });
  e.taskChanged({ task: summary({ status: "completed", updatedAt: "2025-01-01T10:00:09Z", diffStat: { files: 1, added: 1, removed: 0 } }), removed: false });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.counts().ready, 1);
  assert.match(recorded.shown[0]?.message ?? "", /\u201cslow one\u201d completed/);
});

test("re-announced after the daemon was replaced: an unchanged task changes nothing", () => {
  const { events: e, store, calls } = events();
  let fired = 0;
  store.onDidChange(() => (fired += 1));
  e.taskChanged({ task: summary({ status: "completed" }), removed: false });
  e.taskChanged({ task: summary({ status: "completed" }), removed: false });
  assert.equal(fired, 1);
  assert.deepEqual(calls, []);
});

test("interrupted by the daemon's death: Resume is offered and the log is loaded again when shown", async () => {
  const { events: e, store, calls } = events();
  e.taskChanged({ task: summary(), removed: false });
  e.taskChanged({ task: summary({ status: "failed", reason: "interrupted", updatedAt: "2025-01-01T10:00:30Z" }), removed: false });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.counts().running, 0);
  assert.deepEqual(calls, ["logLoader.forget t1", "refresh log t1"]);
  assert.equal(recorded.shown[0]?.level, "warning");
  assert.deepEqual(recorded.shown[0]?.items, ["Resume", "Open"]);
});
