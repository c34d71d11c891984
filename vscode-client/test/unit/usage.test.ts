import { test } from "node:test";
import assert from "node:assert/strict";
import { countTasks, statusBarView } from "../../src/format";
import { formatCost, summarizeUsage, taskUsage, totalUsage, usageText } from "../../src/usage";

test("a task's usage sums its attempts; attempts that used nothing do not count", () => {
  const totals = taskUsage({
    attempts: [
      { usage: { inputTokens: 1000, outputTokens: 100, cachedTokens: 400, costUsd: 0.25 } },
      { usage: { inputTokens: 500, outputTokens: 50, cachedTokens: 0, costUsd: 0.5 } },
      { usage: { inputTokens: 0, outputTokens: 0, cachedTokens: 0 } },
    ],
  });
  assert.deepEqual(totals, { inputTokens: 1500, outputTokens: 150, cachedTokens: 400, costUsd: 0.75, attempts: 2, unpriced: 0 });
  assert.equal(usageText(totals), "1,500 input tokens (400 cached) \u00b7 150 output tokens \u00b7 $0.75");
});

test("without prices there is no cost; with some attempts unpriced the sum is a lower bound", () => {
  const none = totalUsage([{ inputTokens: 10, outputTokens: 5 }]);
  assert.equal(none.costUsd, undefined);
  assert.equal(usageText(none), "10 input tokens \u00b7 5 output tokens");
  const some = totalUsage([{ inputTokens: 10, outputTokens: 5, costUsd: 0.5 }, { inputTokens: 10, outputTokens: 5 }]);
  assert.equal(usageText(some), "20 input tokens \u00b7 10 output tokens \u00b7 \u2265 $0.50");
});

test("costs read as dollars: fractions of a cent, cents, large sums", () => {
  assert.equal(formatCost(0), "$0.00");
  assert.equal(formatCost(0.00423), "$0.0042");
  assert.equal(formatCost(1.375), "$1.38");
  assert.equal(formatCost(1234.4), "$1,234");
});

test("today's usage counts the tasks created today (local time)", () => {
  const now = new Date(2030, 4, 17, 15, 0, 0);
  const today = new Date(2030, 4, 17, 0, 30, 0).toISOString();
  const yesterday = new Date(2030, 4, 16, 23, 30, 0).toISOString();
  const summary = summarizeUsage(
    [
      { createdAt: today, usage: totalUsage([{ inputTokens: 100, outputTokens: 10, costUsd: 0.25 }]) },
      { createdAt: yesterday, usage: totalUsage([{ inputTokens: 900, outputTokens: 90, costUsd: 1 }]) },
    ],
    now,
  );
  assert.equal(summary.todayTasks, 1);
  assert.equal(summary.allTasks, 2);
  assert.equal(summary.today.costUsd, 0.25);
  assert.equal(summary.all.inputTokens, 1000);
});

test("the status bar shows today's cost when known, and usage in its tooltip", () => {
  const now = new Date();
  const usage = summarizeUsage(
    [{ createdAt: now.toISOString(), usage: totalUsage([{ inputTokens: 12345, outputTokens: 678, cachedTokens: 1000, costUsd: 0.42 }]) }],
    now,
  );
  const counts = countTasks([]);
  counts.running = 1;
  const view = statusBarView(counts, "running", usage);
  assert.equal(view.text, "$(sync~spin) errand: 1 running \u00b7 $0.42");
  assert.match(view.tooltip, /\*\*Today\*\* \(1 task\): 12,345 input tokens \(1,000 cached\) \u00b7 678 output tokens \u00b7 \$0\.42/);
  assert.match(view.tooltip, /\*\*All 1 task\*\*: /);
  assert.equal(statusBarView(counts, "running", usage, false).text, "$(sync~spin) errand: 1 running");
});

test("without prices the status bar shows no cost and the tooltip says how to get it", () => {
  const now = new Date();
  const usage = summarizeUsage([{ createdAt: now.toISOString(), usage: totalUsage([{ inputTokens: 10, outputTokens: 5 }]) }], now);
  const view = statusBarView(countTasks([]), "running", usage);
  assert.equal(view.text, "$(tasklist) errand");
  assert.match(view.tooltip, /10 input tokens \u00b7 5 output tokens/);
  assert.match(view.tooltip, /errand\.prices/);
});
