// Pure: what errand says when a task finishes, and the next steps it offers there.
import { itemText, type AlertItem } from "./alerts";
import { stepChoice, type Choice } from "./choices";
import { checksText, diffStatText, isActive, isApplicable, isInterrupted, statusLabel } from "./format";
import type { TaskSummary } from "./protocol";

export interface Notice {
  /** A warning rather than information: the task failed, or it has alerts. */
  warn: boolean;
  message: string;
  choices: Choice[];
}

/** Whether `task` has just finished (it was active before this change). */
export function isFinish(previous: TaskSummary | undefined, task: TaskSummary): boolean {
  return previous !== undefined && isActive(previous.status) && !isActive(task.status);
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}\u2026` : text;
}

/** The notification for a finished task; `alerts` are its alert items (empty when unknown). */
export function finishNotice(task: TaskSummary, alerts: readonly AlertItem[]): Notice {
  if (isInterrupted(task)) {
    // It was running when errand's daemon died; the new daemon re-listed it.
    const target = { taskId: task.taskId };
    return {
      warn: true,
      message: `errand: \u201c${task.title}\u201d was interrupted: errand's daemon stopped while it ran. Resume carries it on where it stopped.`,
      choices: [stepChoice("resume", "Resume", target), stepChoice("open", "Open", target)],
    };
  }
  const stat = diffStatText(task.diffStat);
  const checks = checksText(task.checksPassed ?? 0, task.checksFailed ?? 0);
  const details = [stat, checks && `checks ${checks}`].filter(Boolean).join(" · ");
  let message = `errand: \u201c${task.title}\u201d ${statusLabel(task.status).toLowerCase()}${details ? ` (${details})` : ""}${
    task.reason ? `: ${task.reason}` : "."
  }`;
  const first = alerts[0];
  if (first !== undefined) {
    const many = alerts.length > 1;
    message += ` \u26a0 ${many ? `${alerts.length} warnings` : "Warning"}: ${shorten(itemText(first), 160)}${many ? " (more in the report)" : ""}`;
  }
  const target = { taskId: task.taskId };
  const open = stepChoice("open", "Open", target);
  const choices = task.status === "completed" && isApplicable(task) ? [stepChoice("previewDiff", "Preview Diff", target), open] : [open];
  return { warn: task.status === "failed" || alerts.length > 0, message, choices };
}
