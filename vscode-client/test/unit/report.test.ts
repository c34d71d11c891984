import { test } from "node:test";
import assert from "node:assert/strict";
import { neutraliseCommandLinks, type LinkBuilder } from "../../src/markdownText";
import type { Alert, Attempt, Task } from "../../src/protocol";
import { renderReport } from "../../src/report";
import { alertMarkdown, itemMarkdown } from "../../src/reportAlerts";
import { citationSpans, linkCitations } from "../../src/reportCitations";

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
    alerts: [],
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

test("citations are found by the server's text for them, whatever their markup", () => {
  // The server accepts ASCII brackets and `#`; the client only looks for the text it was given.
  const a = attempt({
    report: "See [F:src/io.py#L3-5] and 【c9†L1】, which the server did not list.",
    citations: [{ text: "[F:src/io.py#L3-5]", kind: "file", resolved: true, path: "src/io.py", startLine: 3, endLine: 5 }],
  });
  assert.equal(linkCitations(a.report ?? "", a, links), "See [src/io.py:L3-5](file:src/io.py#3-5) and 【c9†L1】, which the server did not list.");
});

test("a citation's path is the server's (normalised) one; every occurrence is linked", () => {
  const a = attempt({
    report: "【F:./src/io.py†L2】 twice: 【F:./src/io.py†L2】",
    citations: [{ text: "【F:./src/io.py†L2】", kind: "file", resolved: true, path: "src/io.py", startLine: 2, endLine: 2 }],
  });
  assert.equal(linkCitations(a.report ?? "", a, links), "[src/io.py:L2](file:src/io.py#2-2) twice: [src/io.py:L2](file:src/io.py#2-2)");
});

test("overlapping citation texts: the longer one at a place wins", () => {
  const spans = citationSpans("x 【c1†L1-L2】", [
    { text: "【c1†L1", kind: "chunk", resolved: true, chunkId: "c1", startLine: 1, endLine: 1 },
    { text: "【c1†L1-L2】", kind: "chunk", resolved: true, chunkId: "c1", startLine: 1, endLine: 2 },
  ]);
  assert.deepEqual(
    spans.map((s) => [s.start, s.end, s.citation.endLine]),
    [[2, 12, 2]],
  );
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

test("an interrupted attempt offers Resume and its log, and says why it stopped", () => {
  const stopped = attempt({ status: "failed", reason: "interrupted", report: null, diffStat: { files: 0 }, files: [], checks: [] });
  const md = renderReport(task({ status: "failed", reason: "interrupted", attempts: [stopped] }), links, 0);
  assert.match(md, /^\[Resume\]\(action:resume\/1\) \u00b7 \[Log\]\(action:showLog\/1\)$/m);
  assert.match(md, /\*\*Interrupted \u00b7 code task/);
  // Said once (the task's reason is its one attempt's), in words.
  assert.equal(md.match(/> \*\*Interrupted:\*\* errand's daemon stopped while it ran\. Resume carries it on/g)?.length, 1, md);
  assert.doesNotMatch(md, /previewDiff|followUp/);
  // Another failure is not resumed.
  const failed = attempt({ status: "failed", reason: "step limit reached", files: [], checks: [] });
  assert.doesNotMatch(renderReport(task({ status: "failed", attempts: [failed] }), links, 0), /action:resume/);
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

const CLAIM: Alert = {
  kind: "claim",
  text: 'the report says the tests pass ("All tests pass."), but the last test run failed: `pytest -q` exited with 1 (chunk c3)',
  chunkId: "c3",
};
const UNSANDBOXED: Alert = { kind: "sandbox", text: "unsandboxed: commands ran directly on this machine (sandbox 'none')" };

test("alerts come right after the summary; a claim's failing run is linked where the text names it", () => {
  const md = renderReport(task({ attempts: [attempt({ alerts: [CLAIM, UNSANDBOXED] })] }), links, 0);
  const summary = md.indexOf("## Summary");
  const warning = md.indexOf("> \u26a0 **2 warnings**");
  const files = md.indexOf("## Files changed");
  assert.ok(summary > 0 && summary < warning && warning < files, md);
  assert.match(md, /^> - the report says the tests pass .*`pytest -q` exited with 1 \\\(chunk \[c3\]\(chunk:1\/c3#1-1\)\\\)$/m);
  assert.match(md, /^> - unsandboxed: /m);
});

test("the report reads alerts, not the legacy warnings", () => {
  const md = renderReport(task({ attempts: [attempt({ warnings: ["a legacy warning"], alerts: [] })] }), links, 0);
  assert.doesNotMatch(md, /\u26a0|legacy/);
  const one = renderReport(task({ attempts: [attempt({ warnings: ["a legacy warning"], alerts: [UNSANDBOXED] })] }), links, 0);
  assert.match(one, /^> \u26a0 \*\*Warning:\*\* unsandboxed: commands ran directly on this machine \\\(sandbox 'none'\\\)$/m);
  assert.doesNotMatch(one, /legacy/);
});

test("a link whose target the text does not name goes after it", () => {
  const out = alertMarkdown({ kind: "claim", text: "the tests failed", chunkId: "c1-4" }, 2, links);
  assert.equal(out, "the tests failed ([c1-4](chunk:2/c1-4#1-1))");
});

test("the target is linked as a whole word outside code, not inside a longer id or a command", () => {
  const out = alertMarkdown({ kind: "claim", text: "`run c1` failed, not c1-10 but c1", chunkId: "c1" }, 1, links);
  assert.equal(out, "`run c1` failed, not c1-10 but [c1](chunk:1/c1#1-1)");
  const inCode = alertMarkdown({ kind: "claim", text: "`pytest c1`", chunkId: "c1" }, 1, links);
  assert.equal(inCode, "`pytest c1` ([c1](chunk:1/c1#1-1))");
});

test("unresolved citations are one item, each linked to the file or log lines it cited", () => {
  const citations: Alert[] = [
    { kind: "citation", text: "【F:src/nope.py†L1-L2】 did not resolve", path: "src/nope.py", startLine: 1, endLine: 2 },
    { kind: "citation", text: "【c9†L4】 did not resolve", chunkId: "c9", startLine: 4, endLine: 4 },
  ];
  const a = attempt({ alerts: [UNSANDBOXED, citations[0] as Alert, CLAIM, citations[1] as Alert] });
  const md = renderReport(task({ attempts: [a] }), links, 0);
  assert.match(md, /^> \u26a0 \*\*3 warnings\*\*$/m);
  const items = md.split("\n").filter((line) => line.startsWith("> - "));
  assert.equal(items.length, 3, md);
  assert.match(items[0] ?? "", /^> - unsandboxed/);
  assert.equal(items[1], "> - 2 citations did not resolve: [src/nope.py:L1-2](file:src/nope.py#1-2), [c9:L4](chunk:1/c9#4-4)");
  assert.match(items[2] ?? "", /^> - the report says the tests pass/);
  // An alert with no target keeps its text.
  const one = itemMarkdown({ kind: "citations", alerts: [{ kind: "citation", text: "【x】 did not resolve" }] }, 1, links);
  assert.equal(one, "1 citation did not resolve: 【x】 did not resolve");
});

test("alert text from the model cannot inject links; code spans stay code", () => {
  const out = alertMarkdown(
    { kind: "claim", text: 'the report says the tests pass ("[x](command:errand.applyTask?1) `a`"), but no test command was run' },
    1,
    links,
  );
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
