// Pure: what a command acts on (from a tree node, a report link, a notification's
// button or a task id), which tasks it may act on, and how the attempts of a best-of-N
// task read when the user picks one.
import { checksText, countChecks, diffStatText, isActive, isApplicable, isInterrupted } from "./format";
import type { Attempt, Task, TaskSummary } from "./protocol";

export interface Target {
  taskId: string;
  attempt?: number;
  path?: string;
}

export function targetOf(arg: unknown): Target | undefined {
  if (typeof arg === "string" && arg !== "") {
    return { taskId: arg };
  }
  if (typeof arg !== "object" || arg === null) {
    return undefined;
  }
  const record = arg as Record<string, unknown>;
  if (typeof record.taskId !== "string") {
    return undefined;
  }
  const target: Target = { taskId: record.taskId };
  if (typeof record.attempt === "number") {
    target.attempt = record.attempt;
  }
  const file = record.file as { path?: unknown } | undefined;
  if (file && typeof file.path === "string") {
    target.path = file.path;
  } else if (typeof record.path === "string") {
    target.path = record.path;
  }
  return target;
}

/** Which tasks a command offers when it was run without one. */
export type TaskFilter = (task: TaskSummary) => boolean;

export const TASKS = {
  any: () => true,
  applicable: isApplicable,
  withDiff: (t) => t.status === "completed" && t.mode === "code" && (t.diffStat?.files ?? 0) > 0,
  active: (t) => isActive(t.status),
  finished: (t) => !isActive(t.status),
  interrupted: isInterrupted,
} as const satisfies Record<string, TaskFilter>;

/** The attempts a user chooses between: completed, with changes. */
export function attemptsWithChanges(task: Task): Attempt[] {
  return (task.attempts ?? []).filter((a) => a.status === "completed" && (a.diffStat?.files ?? 0) > 0);
}

/** A quick-pick row for an attempt: its diff stat, checks and the report's first line. */
export function attemptItem(a: Attempt): { label: string; description: string; detail?: string; attempt: number } {
  const { passed, failed } = countChecks(a.checks);
  const checks = checksText(passed, failed);
  return {
    label: `Attempt ${a.attempt}`,
    description: [diffStatText(a.diffStat), checks && `checks ${checks}`].filter(Boolean).join(" \u00b7 "),
    detail: a.report?.split(/\r?\n/)[0]?.slice(0, 160),
    attempt: a.attempt,
  };
}

/** The `attempt` field of a command argument, present only when known. */
export function withAttempt<T extends object>(value: T, attempt: number | undefined): T & { attempt?: number } {
  return attempt === undefined ? value : { ...value, attempt };
}
