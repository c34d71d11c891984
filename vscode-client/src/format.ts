// Pure: how tasks read in the task list, tooltips and the status bar.
import { alertBadge } from "./alerts";
import type { Check, DiffStat, Status, TaskSummary } from "./protocol";
import { formatCost, usageText, type UsageSummary } from "./usage";

export const ACTIVE_STATUSES: ReadonlySet<Status> = new Set(["queued", "preparing", "running"]);

export function isActive(status: Status): boolean {
  return ACTIVE_STATUSES.has(status);
}

/** A finished code task with changes that has not been applied yet. */
export function isApplicable(task: Pick<TaskSummary, "status" | "mode" | "diffStat" | "applied">): boolean {
  return (
    task.status === "completed" &&
    task.mode === "code" &&
    !task.applied &&
    (task.diffStat?.files ?? 0) > 0
  );
}

/** The reason of a task or attempt whose engine (errand's daemon) died while it ran. */
export const INTERRUPTED = "interrupted";

/**
 * Whether a task (or attempt) ended because errand's daemon died while it ran:
 * errand.resume carries it on where it stopped.
 */
export function isInterrupted(item: { status: Status; reason?: string | null }): boolean {
  return !isActive(item.status) && item.reason === INTERRUPTED;
}

/** Codicon id and theme color id for a status. */
export function statusIcon(status: Status): { id: string; color?: string } {
  switch (status) {
    case "queued":
      return { id: "clock", color: "descriptionForeground" };
    case "preparing":
      return { id: "loading~spin" };
    case "running":
      return { id: "sync~spin", color: "charts.blue" };
    case "completed":
      return { id: "pass-filled", color: "testing.iconPassed" };
    case "failed":
      return { id: "error", color: "testing.iconFailed" };
    case "cancelled":
      return { id: "circle-slash", color: "disabledForeground" };
  }
}

export function statusLabel(status: Status): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}

type Stated = { status: Status; reason?: string | null };

/** How a task's or attempt's state reads: its status, or Interrupted (it can be resumed). */
export function stateLabel(item: Stated): string {
  return isInterrupted(item) ? "Interrupted" : statusLabel(item.status);
}

/** A task's or attempt's icon: its status's, or a pause for an interrupted one. */
export function stateIcon(item: Stated): { id: string; color?: string } {
  return isInterrupted(item) ? { id: "debug-pause", color: "list.warningForeground" } : statusIcon(item.status);
}

/** What the report says about why a task or attempt ended (its reason), when it did not complete. */
export function reasonText(item: Stated): string | undefined {
  if (isInterrupted(item)) {
    return "errand's daemon stopped while it ran. Resume carries it on where it stopped.";
  }
  return item.reason ?? undefined;
}

/** `+12 −3`, with a real minus sign; empty when nothing changed. */
export function diffStatText(stat: DiffStat | undefined): string {
  const added = stat?.added ?? 0;
  const removed = stat?.removed ?? 0;
  if (added === 0 && removed === 0 && (stat?.files ?? 0) === 0) {
    return "";
  }
  return `+${added} \u2212${removed}`;
}

/** `✓2 ✗1`; empty when no check ran. */
export function checksText(passed: number, failed: number): string {
  const parts: string[] = [];
  if (passed > 0) {
    parts.push(`\u2713${passed}`);
  }
  if (failed > 0) {
    parts.push(`\u2717${failed}`);
  }
  return parts.join(" ");
}

export function countChecks(checks: readonly Check[] | undefined): { passed: number; failed: number } {
  let passed = 0;
  let failed = 0;
  for (const check of checks ?? []) {
    if (check.passed) {
      passed += 1;
    } else {
      failed += 1;
    }
  }
  return { passed, failed };
}

/** `0.4s`, `45s`, `3m 05s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (ms < 10_000) {
    return `${(Math.max(0, Math.floor(ms / 100)) / 10).toFixed(1)}s`;
  }
  const totalSeconds = Math.floor(ms / 1000);
  if (totalSeconds < 60) {
    return `${totalSeconds}s`;
  }
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  if (minutes < 60) {
    return `${minutes}m ${String(seconds).padStart(2, "0")}s`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/** How long a task has been running (active) or ran (finished). */
export function elapsedMs(task: Pick<TaskSummary, "status" | "createdAt" | "updatedAt">, now: number): number {
  const start = Date.parse(task.createdAt);
  const end = isActive(task.status) ? now : Date.parse(task.updatedAt);
  if (Number.isNaN(start) || Number.isNaN(end)) {
    return 0;
  }
  return Math.max(0, end - start);
}

/** The grey text after a task's title in the task list (`alerts`: how many items, from getTask, when known). */
export function taskDescription(task: TaskSummary, now: number, alerts = 0): string {
  const parts: string[] = [];
  if (task.mode === "ask") {
    parts.push("ask");
  }
  const diff = diffStatText(task.diffStat);
  if (diff) {
    parts.push(diff);
  }
  const checks = checksText(task.checksPassed ?? 0, task.checksFailed ?? 0);
  if (checks) {
    parts.push(checks);
  }
  if (alerts > 0) {
    parts.push(alertBadge(alerts));
  }
  if (task.attemptCount > 1) {
    parts.push(`${task.attemptCount} attempts`);
  }
  if (task.applied) {
    parts.push("applied");
  } else if (task.status !== "completed") {
    parts.push(isInterrupted(task) ? INTERRUPTED : task.status);
  }
  parts.push(formatDuration(elapsedMs(task, now)));
  return parts.join(" · ");
}

export interface TaskCounts {
  running: number;
  queued: number;
  ready: number;
  failed: number;
}

export function countTasks(tasks: Iterable<TaskSummary>): TaskCounts {
  const counts: TaskCounts = { running: 0, queued: 0, ready: 0, failed: 0 };
  for (const task of tasks) {
    if (task.status === "running" || task.status === "preparing") {
      counts.running += 1;
    } else if (task.status === "queued") {
      counts.queued += 1;
    } else if (task.status === "completed" && !task.applied) {
      counts.ready += 1;
    } else if (task.status === "failed") {
      counts.failed += 1;
    }
  }
  return counts;
}

export type ServerState = "starting" | "running" | "stopped";

export interface StatusBarView {
  text: string;
  /** Markdown (the item's tooltip is a MarkdownString). */
  tooltip: string;
  error: boolean;
}

function usageLines(usage: UsageSummary | undefined): string[] {
  if (!usage || usage.all.attempts === 0) {
    return [];
  }
  const lines = [
    `**Today** (${usage.todayTasks} task${usage.todayTasks === 1 ? "" : "s"}): ${usage.today.attempts > 0 ? usageText(usage.today) : "nothing yet"}`,
    `**All ${usage.allTasks} task${usage.allTasks === 1 ? "" : "s"}**: ${usageText(usage.all)}`,
  ];
  if (usage.all.costUsd === undefined) {
    lines.push("Cost: set `errand.prices.*` (USD per million tokens) to see it.");
  }
  return lines;
}

/**
 * The status bar item, e.g. `$(sync~spin) errand: 2 running · 3 ready · $0.42`: the
 * cost is today's, shown when prices are known and `showCost` is on. The tooltip
 * has the counts and today's and all tasks' token usage and cost.
 */
export function statusBarView(
  counts: TaskCounts,
  server: ServerState,
  usage?: UsageSummary,
  showCost = true,
): StatusBarView {
  if (server === "stopped") {
    return {
      text: "$(error) errand: server stopped",
      tooltip: "The errand server is not running. Click to see the task list; see Output › errand for why.",
      error: true,
    };
  }
  if (server === "starting") {
    return { text: "$(loading~spin) errand: starting", tooltip: "Starting the errand server…", error: false };
  }
  const parts: string[] = [];
  if (counts.running > 0) {
    parts.push(`${counts.running} running`);
  }
  if (counts.queued > 0) {
    parts.push(`${counts.queued} queued`);
  }
  if (counts.ready > 0) {
    parts.push(`${counts.ready} ready`);
  }
  const todayCost = usage?.today.costUsd;
  if (showCost && todayCost !== undefined && todayCost > 0) {
    parts.push(formatCost(todayCost));
  }
  const icon = counts.running + counts.queued > 0 ? "$(sync~spin)" : counts.ready > 0 ? "$(check)" : "$(tasklist)";
  const text = parts.length > 0 ? `${icon} errand: ${parts.join(" \u00b7 ")}` : `${icon} errand`;
  const tooltipParts = [
    `${counts.running} running`,
    `${counts.queued} queued`,
    `${counts.ready} ready to review`,
  ];
  if (counts.failed > 0) {
    tooltipParts.push(`${counts.failed} failed`);
  }
  const tooltip = [`errand: ${tooltipParts.join(", ")}.`, ...usageLines(usage), "Click to show the task list."].join("\n\n");
  return { text, tooltip, error: false };
}
