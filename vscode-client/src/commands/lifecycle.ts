// Ending a task, or not: Cancel stops its run, Discard throws it away, Resume carries on
// what errand's daemon was running when it died.
import * as vscode from "vscode";
import { TASKS } from "../target";
import { titleOf, type CommandDeps } from "./deps";
import { resolveTarget } from "./pick";

export async function cancelTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.active, "Cancel which task?", "no task is running.");
  if (target) {
    await deps.api.cancel(target.taskId);
    vscode.window.setStatusBarMessage(`$(debug-stop) errand: cancelling \u201c${titleOf(deps, target.taskId)}\u201d`, 4000);
  }
}

export async function discardTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.any, "Discard which task?", "no tasks to discard.");
  if (!target) {
    return;
  }
  const title = titleOf(deps, target.taskId);
  const choice = await vscode.window.showWarningMessage(
    `Discard \u201c${title}\u201d? Its copy, diff and report are thrown away; your workspace is not touched.`,
    { modal: true },
    "Discard",
  );
  if (choice !== "Discard") {
    return;
  }
  await deps.api.discard(target.taskId);
  deps.caches.forget(target.taskId);
  vscode.window.setStatusBarMessage(`$(trash) errand: discarded \u201c${title}\u201d`, 4000);
  await deps.refreshTasks();
}

export async function resumeTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(
    deps,
    arg,
    TASKS.interrupted,
    "Resume which interrupted task?",
    "no task was interrupted (a task is interrupted when errand's daemon stops while it runs).",
  );
  if (!target) {
    return;
  }
  await deps.api.resume(target.taskId);
  deps.output.info(`resumed ${target.taskId}`);
  vscode.window.setStatusBarMessage(`$(debug-continue) errand: resuming \u201c${titleOf(deps, target.taskId)}\u201d`, 4000);
  await deps.refreshTasks();
}
