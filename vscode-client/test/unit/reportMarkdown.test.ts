import { test } from "node:test";
import assert from "node:assert/strict";
import { renderReport } from "../../src/report";
import { renderMarkdown, REPORT_COMMANDS, reportLinks } from "../../src/reportMarkdown";
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
      alerts: [
        {
          kind: "claim",
          text: 'the report says the tests pass ("Done; all tests pass."), but the last test run failed: `pytest` exited with 1 (chunk c1-2)',
          chunkId: "c1-2",
        },
      ],
    },
  ],
};

test("the rendered report: alerts stand out, citations and an alert's chunk are errand links", () => {
  const html = renderMarkdown(renderReport(task, reportLinks("t1"), 0));
  assert.match(html, /<blockquote class="warnings">\s*<p>\u26a0 <strong>Warning:<\/strong> the report says the tests pass/);
  assert.match(html, /<code>pytest<\/code> exited with 1 \(chunk <a href="command:errand\.openCitation\?[^"]+">c1-2<\/a>\)/);
  assert.match(html, /<a href="command:errand\.openCitation\?[^"]+">c1-2:L1-3<\/a>/);
  // The model's own command link is neither a link nor a command URI.
  assert.doesNotMatch(html, /href="command:workbench/);
  // The prompt is a blockquote too, but not a warning.
  assert.match(html, /<blockquote>\s*<p>fix it<\/p>/);
});

test("report links carry what openCitation and the step commands need", () => {
  const links = reportLinks("t1");
  const decode = (href: string) => {
    const [command, query] = href.split("?");
    return { command, arg: (JSON.parse(decodeURIComponent(query ?? "")) as unknown[])[0] };
  };
  assert.deepEqual(decode(links.file("src/a.py", 3, 5)), {
    command: "command:errand.openCitation",
    arg: { kind: "file", taskId: "t1", path: "src/a.py", startLine: 3, endLine: 5 },
  });
  assert.deepEqual(decode(links.chunk(2, "c2-1", 1, 4)), {
    command: "command:errand.openCitation",
    arg: { kind: "chunk", taskId: "t1", attempt: 2, chunkId: "c2-1", startLine: 1, endLine: 4 },
  });
  assert.deepEqual(decode(links.action?.("createBranch", 2) ?? ""), {
    command: "command:errand.createBranchFromTask",
    arg: { taskId: "t1", attempt: 2 },
  });
  // Every command a report links to is one the webview allows.
  for (const href of [links.file("a", 1, 1), links.action?.("previewDiff", 1) ?? "", links.action?.("showLog", 1) ?? ""]) {
    assert.ok(REPORT_COMMANDS.some((c) => href.startsWith(`command:${c}?`)), href);
  }
});
