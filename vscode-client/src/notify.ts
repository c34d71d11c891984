// Notifications whose buttons run commands (the choices of choices.ts), and the one
// errand shows when a task finishes.
import * as vscode from "vscode";
import { alertItems, taskAlerts, type AlertItem } from "./alerts";
import { pickedChoice, type Choice } from "./choices";
import { finishNotice, isFinish } from "./finishNotice";
import type { Task, TaskSummary } from "./protocol";

export type Level = "info" | "warning" | "error";

function show(level: Level, message: string, labels: string[]): Thenable<string | undefined> {
  switch (level) {
    case "info":
      return vscode.window.showInformationMessage(message, ...labels);
    case "warning":
      return vscode.window.showWarningMessage(message, ...labels);
    case "error":
      return vscode.window.showErrorMessage(message, ...labels);
  }
}

/** Shows `message` with a button per choice, and runs the command of the one picked. */
export async function offer(level: Level, message: string, choices: readonly Choice[]): Promise<void> {
  const choice = pickedChoice(choices, await show(level, message, choices.map((c) => c.label)));
  if (choice) {
    await vscode.commands.executeCommand(choice.command, ...(choice.args ?? []));
  }
}

/**
 * Tells the user when a task finishes, with the next step one click away. `detail`
 * fetches the task (getTask) so that its alerts are said at once; without it, or
 * when it fails, the summary is enough.
 */
export async function notifyFinished(previous: TaskSummary | undefined, task: TaskSummary, detail?: () => Promise<Task>): Promise<void> {
  if (!isFinish(previous, task) || !vscode.workspace.getConfiguration("errand").get<boolean>("notifyOnFinish", true)) {
    return;
  }
  let alerts: AlertItem[] = [];
  if (detail && task.status === "completed") {
    try {
      alerts = alertItems(taskAlerts(await detail()));
    } catch {
      // the summary is enough
    }
  }
  const notice = finishNotice(task, alerts);
  await offer(notice.warn ? "warning" : "info", notice.message, notice.choices);
}
