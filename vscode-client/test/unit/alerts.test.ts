import { test } from "node:test";
import assert from "node:assert/strict";
import { alertBadge, alertItems, alertTarget, itemText, taskAlerts, targetLabel } from "../../src/alerts";
import type { Alert } from "../../src/protocol";

const claim: Alert = { kind: "claim", text: "the report says the tests pass, but `pytest` exited with 1 (chunk c1-2)", chunkId: "c1-2" };
const sandbox: Alert = { kind: "sandbox", text: "unsandboxed: commands ran directly on this machine" };
const fileCitation: Alert = { kind: "citation", text: "【F:a.py†L3-L5】 did not resolve", path: "a.py", startLine: 3, endLine: 5 };
const chunkCitation: Alert = { kind: "citation", text: "【c9†L2】 did not resolve", chunkId: "c9", startLine: 2, endLine: 2 };

test("unresolved citations are one item where the first stood; other alerts keep their order", () => {
  const items = alertItems([sandbox, fileCitation, claim, chunkCitation]);
  assert.deepEqual(items, [
    { kind: "alert", alert: sandbox },
    { kind: "citations", alerts: [fileCitation, chunkCitation] },
    { kind: "alert", alert: claim },
  ]);
  assert.deepEqual(alertItems([]), []);
});

test("a task's alerts: every attempt's, each once; attempts without alerts count none", () => {
  const alerts = taskAlerts({ attempts: [{ alerts: [sandbox, claim] }, { alerts: [{ ...sandbox }, { ...claim, chunkId: "c2-2" }] }, {}] });
  assert.deepEqual(alerts, [sandbox, claim, { ...claim, chunkId: "c2-2" }]);
  assert.deepEqual(taskAlerts({}), []);
});

test("targets come from the typed fields: a chunk, else a file, with lines when given", () => {
  assert.deepEqual(alertTarget(claim), { kind: "chunk", chunkId: "c1-2", startLine: 1, endLine: 1 });
  assert.deepEqual(alertTarget(fileCitation), { kind: "file", path: "a.py", startLine: 3, endLine: 5 });
  assert.equal(alertTarget(sandbox), undefined);
  // A claim names a whole run: its label is the chunk id; a citation's says its lines.
  assert.equal(targetLabel(claim, { kind: "chunk", chunkId: "c1-2", startLine: 1, endLine: 1 }), "c1-2");
  assert.equal(targetLabel(fileCitation, { kind: "file", path: "a.py", startLine: 3, endLine: 5 }), "a.py:L3-5");
  assert.equal(targetLabel(chunkCitation, { kind: "chunk", chunkId: "c9", startLine: 2, endLine: 2 }), "c9:L2");
});

test("items as plain text (tooltips, notifications) and the \u26a0 badge", () => {
  const [first, second] = alertItems([claim, fileCitation, chunkCitation]);
  assert.equal(first && itemText(first), claim.text);
  assert.equal(second && itemText(second), "2 citations did not resolve: a.py:L3-5, c9:L2");
  assert.equal(itemText({ kind: "citations", alerts: [fileCitation] }), "1 citation did not resolve: a.py:L3-5");
  assert.equal(alertBadge(2), "\u26a0 2");
  assert.equal(alertBadge(0), "");
});
