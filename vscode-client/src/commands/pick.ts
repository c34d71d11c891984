// The quick picks commands use when they were run without a task or attempt.
import * as vscode from "vscode";
import { stateIcon, taskDescription } from "../format";
import { attemptItem, attemptsWithChanges, targetOf, type Target, type TaskFilter } from "../target";
import type { CommandDeps } from "./deps";

/** What the command acts on: its argument, else the task the user picks (undefined: none). */
export async function resolveTarget(
  deps: CommandDeps,
  arg: unknown,
  filter: TaskFilter,
  placeHolder: string,
  none: string,
): Promise<Target | undefined> {
  const given = targetOf(arg);
  if (given) {
    return given;
  }
  const tasks = deps.store.list().filter(filter);
  if (tasks.length === 0) {
    void vscode.window.showInformationMessage(`errand: ${none}`);
    return undefined;
  }
  const now = Date.now();
  const picked = await vscode.window.showQuickPick(
    tasks.map((t) => ({ label: `$(${stateIcon(t).id}) ${t.title}`, description: taskDescription(t, now), taskId: t.taskId })),
    { placeHolder, matchOnDescription: true },
  );
  return picked ? { taskId: picked.taskId } : undefined;
}

/**
 * The attempt to act on: the one named, else, for best-of-N tasks, the one the user
 * picks among those with changes. undefined: the server's choice (one or none);
 * null: the user cancelled.
 */
export async function chooseAttempt(deps: CommandDeps, target: Target, action: string): Promise<number | undefined | null> {
  if (target.attempt !== undefined) {
    return target.attempt;
  }
  const task = await deps.details.get(target.taskId);
  const done = attemptsWithChanges(task);
  if (done.length <= 1) {
    return done[0]?.attempt;
  }
  const picked = await vscode.window.showQuickPick(done.map(attemptItem), {
    placeHolder: `${action}: which attempt of \u201c${task.title}\u201d?`,
  });
  return picked ? picked.attempt : null;
}
