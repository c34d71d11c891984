import { test } from "node:test";
import assert from "node:assert/strict";
import { renderReport } from "../../src/report";
import { renderMarkdown, reportLinks } from "../../src/reportMarkdown";
import type { Task } from "../../src/protocol";

const task: Task = {
  taskId: "t1",
  title: "fix it",
  mode: "code",
  status: "completed",
  createdAt: "2025-01-01T10:00:00Z",
  updatedAt: "2025-01-01T10:02:00Z",
  attemptCount: 1,
  prompt: "fix it",
  attempts: [
    {
      attempt: 1,
      status: "completed",
      report: "Done; all tests pass [x](command:workbench.action.terminal.sendSequence?%5B%5D) 【c1-2†L1-L3】.",
      checks: [{ command: "pytest", exitCode: 1, passed: false, durationMs: 10, chunkId: "c1-2" }],
      citations: [{ text: "【c1-2†L1-L3】", kind: "chunk", resolved: true, chunkId: "c1-2", startLine: 1, endLine: 3 }],
      warnings: ['the report says the tests pass ("Done; all tests pass."), but the last test run failed: `pytest` exited with 1 (chunk c1-2)'],
    },
  ],
};

test("the rendered report: warnings stand out, citations and chunk references are errand links", () => {
  const html = renderMarkdown(renderReport(task, reportLinks("t1"), 0));
  assert.match(html, /<blockquote class="warnings">\s*<p>\u26a0 <strong>Warning:<\/strong> the report says the tests pass/);
  assert.match(html, /<code>pytest<\/code> exited with 1 \(chunk <a href="command:errand\.openCitation\?[^"]+">c1-2<\/a>\)/);
  assert.match(html, /<a href="command:errand\.openCitation\?[^"]+">c1-2:L1-3<\/a>/);
  // The model's own command link is neither a link nor a command URI.
  assert.doesNotMatch(html, /href="command:workbench/);
  // The prompt is a blockquote too, but not a warning.
  assert.match(html, /<blockquote>\s*<p>fix it<\/p>/);
});
