import { test } from "node:test";
import assert from "node:assert/strict";
import { linkCitations, neutraliseCommandLinks, renderReport, warningMarkdown, type LinkBuilder } from "../../src/report";
import type { Attempt, Task } from "../../src/protocol";

const links: LinkBuilder = {
  file: (path, s, e) => `file:${path}#${s}-${e}`,
  chunk: (attempt, id, s, e) => `chunk:${attempt}/${id}#${s}-${e}`,
  action: (name, attempt) => `action:${name}/${attempt}`,
};

function attempt(over: Partial<Attempt> = {}): Attempt {
  return {
    attempt: 1,
    status: "completed",
    report: "Fixed the off-by-one in the reader 【F:src/io.py†L10-L12】; tests pass 【c2†L3】.",
    diffStat: { files: 1, added: 2, removed: 1 },
    files: [{ path: "src/io.py", change: "modified", added: 2, removed: 1 }],
    checks: [
      { command: "pytest -q", exitCode: 0, passed: true, durationMs: 1500, chunkId: "c2" },
      { command: "ruff check .", exitCode: 1, passed: false, durationMs: 200, chunkId: "c3" },
    ],
    citations: [
      { text: "【F:src/io.py†L10-L12】", kind: "file", resolved: true, path: "src/io.py", startLine: 10, endLine: 12 },
      { text: "【c2†L3】", kind: "chunk", resolved: true, chunkId: "c2", startLine: 3, endLine: 3 },
    ],
    warnings: [],
    usage: { inputTokens: 12345, outputTokens: 678, cachedTokens: 1000 },
    steps: 4,
    ...over,
  };
}

function task(over: Partial<Task> = {}): Task {
  return {
    taskId: "t1",
    title: "fix the flaky test",
    mode: "code",
    status: "completed",
    createdAt: "2025-01-01T10:00:00Z",
    updatedAt: "2025-01-01T10:02:00Z",
    attemptCount: 1,
    diffStat: { files: 1, added: 2, removed: 1 },
    prompt: "fix the flaky test in tests/test_io.py",
    attempts: [attempt()],
    ...over,
  };
}

test("citations become links to the file range and the log lines", () => {
  const out = linkCitations(attempt().report ?? "", attempt(), links);
  assert.equal(
    out,
    "Fixed the off-by-one in the reader [src/io.py:L10-12](file:src/io.py#10-12); tests pass [c2:L3](chunk:1/c2#3-3).",
  );
});

test("a citation glued to a word gets a space before its link", () => {
  const a = attempt({ report: "done【c2†L3】" });
  assert.equal(linkCitations(a.report ?? "", a, links), "done [c2:L3](chunk:1/c2#3-3)");
});

test("an unresolved citation is flagged, not linked", () => {
  const a = attempt({
    report: "See 【F:src/nope.py†L1-L2】.",
    citations: [{ text: "【F:src/nope.py†L1-L2】", kind: "file", resolved: false, path: "src/nope.py", startLine: 1, endLine: 2 }],
  });
  const out = linkCitations(a.report ?? "", a, links);
  assert.match(out, /~~src\/nope\.py:L1-2~~/);
  assert.doesNotMatch(out, /file:src\/nope/);
});

test("command links written by the model are neutralised", () => {
  assert.equal(
    neutraliseCommandLinks("[run](command:workbench.action.terminal.sendSequence?x) <command:foo>"),
    "[run](#command-link-removed:workbench.action.terminal.sendSequence?x) &lt;command:foo>",
  );
});

test("the report: summary first, then files, checks table and usage", () => {
  const md = renderReport(task(), links, Date.parse("2030-01-01T00:00:00Z"));
  const summary = md.indexOf("## Summary");
  const files = md.indexOf("## Files changed");
  const checks = md.indexOf("## Checks");
  const usage = md.indexOf("## Usage");
  assert.ok(summary > 0 && summary < files && files < checks && checks < usage, md);
  assert.match(md, /^# fix the flaky test$/m);
  assert.match(md, /> fix the flaky test in tests\/test_io\.py/);
  assert.match(md, /1 passed, 1 failed\./);
  assert.match(md, /\| \u2713 passed \| `pytest -q` \| 0 \| 1\.5s \| \[c2\]\(chunk:1\/c2#1-1\) \|/);
  assert.match(md, /\| \u2717 \*\*failed\*\* \| `ruff check \.` \| 1 \| 0\.2s \|/);
  assert.match(md, /12,345 input tokens \(1,000 cached\) \u00b7 678 output tokens \u00b7 4 steps/);
  assert.match(md, /\[Preview diff\]\(action:previewDiff\/1\)/);
  assert.match(md, /\[Create branch\u2026\]\(action:createBranch\/1\)/);
});

test("an ask task has no diff actions and says when no checks ran", () => {
  const md = renderReport(
    task({
      mode: "ask",
      diffStat: { files: 0, added: 0, removed: 0 },
      attempts: [attempt({ diffStat: { files: 0, added: 0, removed: 0 }, files: [], checks: [] })],
    }),
    links,
    0,
  );
  assert.doesNotMatch(md, /previewDiff|Files changed/);
  assert.match(md, /_No checks ran\._/);
});

test("best of N: one section per attempt", () => {
  const md = renderReport(
    task({ attemptCount: 2, attempts: [attempt(), attempt({ attempt: 2, status: "failed", reason: "step limit reached", report: null })] }),
    links,
    0,
  );
  assert.match(md, /^## Attempt 1 \u2014 Completed \u00b7 \+2 \u22121$/m);
  assert.match(md, /^## Attempt 2 \u2014 Failed/m);
  assert.match(md, /step limit reached/);
  assert.match(md, /^### Checks$/m);
});

test("warnings come right after the summary, with chunk references linked", () => {
  const md = renderReport(
    task({
      attempts: [
        attempt({
          warnings: [
            'the report says the tests pass ("All tests pass."), but the last test run failed: `pytest -q` exited with 1 (chunk c3)',
            "unsandboxed: commands ran directly on this machine (sandbox 'none')",
          ],
        }),
      ],
    }),
    links,
    0,
  );
  const summary = md.indexOf("## Summary");
  const warning = md.indexOf("> \u26a0 **2 warnings**");
  const files = md.indexOf("## Files changed");
  assert.ok(summary > 0 && summary < warning && warning < files, md);
  assert.match(md, /^> - the report says the tests pass .*`pytest -q` exited with 1 \\\(chunk \[c3\]\(chunk:1\/c3#1-1\)\\\)$/m);
  assert.match(md, /^> - unsandboxed: /m);
});

test("one warning reads as a single line; unresolved citations are not said twice", () => {
  const a = attempt({
    report: "See 【F:src/nope.py†L1-L2】.",
    citations: [{ text: "【F:src/nope.py†L1-L2】", kind: "file", resolved: false, path: "src/nope.py", startLine: 1, endLine: 2 }],
    warnings: ["1 citation(s) did not resolve: 【F:src/nope.py†L1-L2】"],
  });
  const md = renderReport(task({ attempts: [a] }), links, 0);
  assert.match(md, /^> \u26a0 \*\*Warning:\*\* 1 citation\\\(s\\\) did not resolve: 【F:src\/nope\.py†L1-L2】$/m);
  assert.equal(md.split("did not").length, 2, md);
  // Without the server's warning (an older server), the client says it itself.
  const older = renderReport(task({ attempts: [{ ...a, warnings: [] }] }), links, 0);
  assert.match(older, /^> \u26a0 \*\*Warning:\*\* 1 citation did not match the recorded files or logs: `【F:src\/nope\.py†L1-L2】`$/m);
});

test("warning text from the model cannot inject links; code spans stay code", () => {
  const out = warningMarkdown('the report says the tests pass ("[x](command:errand.applyTask?1) `a`"), but no test command was run', 1, links);
  assert.doesNotMatch(out, /\]\(command:/);
  assert.match(out, /`a`/);
});

test("usage shows the cost when the server knows it, and where the attempt ran", () => {
  const md = renderReport(
    task({
      attempts: [
        attempt({
          usage: { inputTokens: 1_000_000, outputTokens: 2000, cachedTokens: 0, costUsd: 1.234 },
          sandbox: "bwrap",
          workspaceKind: "overlay",
          workspaceReason: "overlayfs over a cached base checkout",
          workspaceBytes: 2_500_000,
        }),
      ],
    }),
    links,
    0,
  );
  assert.match(md, /1,000,000 input tokens \u00b7 2,000 output tokens \u00b7 \$1\.23 \u00b7 4 steps/);
  assert.match(md, /_Ran in the bwrap sandbox, on an overlay copy using 2\.4 MB of its own: overlayfs over a cached base checkout\._/);
});
