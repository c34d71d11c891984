// Pure: token usage and cost of attempts, tasks and sets of tasks, and how they read.
import type { Attempt, Usage } from "./protocol";

export interface UsageTotals {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** The sum of the known costs; undefined when no counted attempt has one (no prices set). */
  costUsd?: number;
  /** Attempts that used any tokens. */
  attempts: number;
  /** Those among them without a cost. */
  unpriced: number;
}

export function emptyTotals(): UsageTotals {
  return { inputTokens: 0, outputTokens: 0, cachedTokens: 0, attempts: 0, unpriced: 0 };
}

function used(usage: Usage | undefined): usage is Usage {
  return !!usage && (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0) > 0;
}

/** The totals of some attempts' usage; attempts that used no tokens are not counted. */
export function totalUsage(usages: Iterable<Usage | undefined>): UsageTotals {
  const totals = emptyTotals();
  for (const usage of usages) {
    if (!used(usage)) {
      continue;
    }
    totals.inputTokens += usage.inputTokens ?? 0;
    totals.outputTokens += usage.outputTokens ?? 0;
    totals.cachedTokens += usage.cachedTokens ?? 0;
    totals.attempts += 1;
    if (typeof usage.costUsd === "number") {
      totals.costUsd = (totals.costUsd ?? 0) + usage.costUsd;
    } else {
      totals.unpriced += 1;
    }
  }
  return totals;
}

/** A task's usage: all its attempts together. */
export function taskUsage(task: { attempts?: readonly Pick<Attempt, "usage">[] }): UsageTotals {
  return totalUsage((task.attempts ?? []).map((a) => a.usage));
}

export function addTotals(a: UsageTotals, b: UsageTotals): UsageTotals {
  const sum: UsageTotals = {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    attempts: a.attempts + b.attempts,
    unpriced: a.unpriced + b.unpriced,
  };
  if (a.costUsd !== undefined || b.costUsd !== undefined) {
    sum.costUsd = (a.costUsd ?? 0) + (b.costUsd ?? 0);
  }
  return sum;
}

/** `$0.0042` below a cent, `$1.37` below $100, `$1,234` above. */
export function formatCost(usd: number): string {
  if (usd === 0) {
    return "$0.00";
  }
  if (usd < 0.01) {
    return `$${usd.toFixed(4)}`;
  }
  if (usd < 100) {
    return `$${usd.toFixed(2)}`;
  }
  return `$${Math.round(usd).toLocaleString("en-US")}`;
}

export function formatTokens(n: number): string {
  return n.toLocaleString("en-US");
}

/**
 * `12,345 input tokens (1,000 cached) · 678 output tokens · $0.0123`. The cost is
 * left out when unknown; `≥` marks a sum that lacks the cost of some attempts.
 */
export function usageText(totals: UsageTotals): string {
  const parts = [
    `${formatTokens(totals.inputTokens)} input tokens${totals.cachedTokens > 0 ? ` (${formatTokens(totals.cachedTokens)} cached)` : ""}`,
    `${formatTokens(totals.outputTokens)} output tokens`,
  ];
  if (totals.costUsd !== undefined) {
    parts.push(`${totals.unpriced > 0 ? "\u2265 " : ""}${formatCost(totals.costUsd)}`);
  }
  return parts.join(" \u00b7 ");
}

export interface TaskUsage {
  createdAt: string;
  usage: UsageTotals;
}

export interface UsageSummary {
  /** Tasks created today (local time). */
  today: UsageTotals;
  todayTasks: number;
  all: UsageTotals;
  allTasks: number;
}

function sameLocalDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** Usage of today's tasks and of all tasks the server lists. */
export function summarizeUsage(tasks: Iterable<TaskUsage>, now: Date): UsageSummary {
  let today = emptyTotals();
  let all = emptyTotals();
  let todayTasks = 0;
  let allTasks = 0;
  for (const task of tasks) {
    all = addTotals(all, task.usage);
    allTasks += 1;
    const created = new Date(task.createdAt);
    if (!Number.isNaN(created.getTime()) && sameLocalDay(created, now)) {
      today = addTotals(today, task.usage);
      todayTasks += 1;
    }
  }
  return { today, todayTasks, all, allTasks };
}
