// Taking a task's result: Apply, Apply Files… and Create Branch….
import * as vscode from "vscode";
import { conflictChoices } from "../choices";
import { conflictsOf, type Conflict } from "../edits";
import { offer } from "../notify";
import type { ApplyResult, FileStat } from "../protocol";
import { TASKS, withAttempt, type Target } from "../target";
import { titleOf, type CommandDeps } from "./deps";
import { chooseAttempt, resolveTarget } from "./pick";

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

function appliedMessage(title: string, result: ApplyResult, files?: string[]): string {
  const count = result.files?.length ?? files?.length;
  const merged = result.merged ?? [];
  return (
    `errand: applied \u201c${title}\u201d${count ? ` (${plural(count, "file")})` : ""}.` +
    (merged.length > 0 ? ` Merged with your own edits in ${merged.join(", ")}.` : "")
  );
}

/** Nothing was written: says which files conflict and offers the ways on. */
async function offerConflicts(deps: CommandDeps, target: Target, title: string, conflicts: readonly Conflict[], files?: string[]): Promise<void> {
  // Apply Files… helps when other files of the attempt do not conflict.
  const detail = await deps.details.get(target.taskId).catch(() => undefined);
  const chosen = detail?.attempts?.find((a) => (target.attempt !== undefined ? a.attempt === target.attempt : a.status === "completed"));
  const others = (files ?? chosen?.files ?? []).length > conflicts.length;
  const what = conflicts.length === 1 ? "Conflict" : `${conflicts.length} conflicts`;
  await offer(
    "warning",
    `errand: \u201c${title}\u201d was not applied; nothing was written. ${what}: ${conflicts.map((c) => c.message).join("; ")}`,
    conflictChoices(target, others),
  );
}

/** Applies the task (the chosen attempt; only `files`, when given) and says what happened. */
async function apply(deps: CommandDeps, target: Target, files?: string[]): Promise<void> {
  const attempt = await chooseAttempt(deps, target, "Apply");
  if (attempt === null) {
    return;
  }
  const title = titleOf(deps, target.taskId);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: `errand: applying \u201c${title}\u201d` },
    () => deps.api.apply(withAttempt({ taskId: target.taskId, ...(files ? { files } : {}) }, attempt)),
  );
  deps.diffs.forget(target.taskId);
  const conflicts = conflictsOf(result);
  if (result.applied) {
    void vscode.window.showInformationMessage(appliedMessage(title, result, files));
  } else if (conflicts.length > 0) {
    await offerConflicts(deps, withAttempt({ taskId: target.taskId }, attempt), title, conflicts, files);
  } else {
    void vscode.window.showErrorMessage(
      `errand: \u201c${title}\u201d was not applied: ${result.reason ?? "the editor refused the edit"}. Nothing was written.`,
    );
  }
  await deps.refreshTasks();
}

export async function applyTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.applicable, "Apply which task?", "no finished task is waiting to be applied.");
  if (target) {
    await apply(deps, target);
  }
}

/** Apply Files…'s rows: each changed file, ticked unless it conflicts with the workspace. */
function fileRows(files: readonly FileStat[], conflicts: readonly Conflict[], merged: ReadonlySet<string>) {
  return files.map((f) => {
    const conflict = conflicts.find((c) => c.path === f.path || c.path === f.oldPath);
    const notes = [f.change, f.binary ? "binary" : `+${f.added ?? 0} \u2212${f.removed ?? 0}`];
    if (conflict) {
      notes.push("$(warning) conflict");
    } else if (merged.has(f.path)) {
      notes.push("merged with your edits");
    }
    return {
      label: f.path,
      description: notes.join(" \u00b7 "),
      detail: conflict ? conflict.message.slice(conflict.path.length + 2) : undefined,
      picked: !conflict,
      path: f.path,
    };
  });
}

export async function applyFiles(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.applicable, "Apply files of which task?", "no finished task is waiting to be applied.");
  if (!target) {
    return;
  }
  const attempt = await chooseAttempt(deps, target, "Apply files");
  if (attempt === null) {
    return;
  }
  const { result } = await deps.diffs.refresh(target.taskId, attempt);
  const files = result.files ?? [];
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`errand: \u201c${titleOf(deps, target.taskId)}\u201d changes no files.`);
    return;
  }
  const conflicts = conflictsOf(result);
  const picked = await vscode.window.showQuickPick(fileRows(files, conflicts, new Set(result.merged ?? [])), {
    canPickMany: true,
    placeHolder:
      conflicts.length > 0
        ? "Files to apply (files that conflict with the workspace are unticked; Apply writes nothing while a chosen file conflicts)"
        : "Files to apply (the others are left out)",
  });
  if (picked && picked.length > 0) {
    await apply(deps, withAttempt(target, attempt), picked.map((p) => p.path));
  }
}

export async function createBranchFromTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.withDiff, "Commit which task to a new branch?", "no finished task has changes to commit.");
  if (!target) {
    return;
  }
  const attempt = await chooseAttempt(deps, target, "Create branch");
  if (attempt === null) {
    return;
  }
  const title = titleOf(deps, target.taskId);
  const branch = await vscode.window.showInputBox({
    title: `errand: Create Branch from \u201c${title}\u201d`,
    prompt: "Commits the task's changes onto HEAD as a new local branch. Your working tree, index and current branch stay as they are.",
    placeHolder: "branch name (leave empty for errand/<title>-<task id>)",
    ignoreFocusOut: true,
    validateInput: (value) => (/\s/.test(value.trim()) ? "A branch name has no spaces." : undefined),
  });
  if (branch === undefined) {
    return;
  }
  const name = branch.trim();
  const result = await deps.api.createBranch(withAttempt({ taskId: target.taskId, ...(name !== "" ? { branch: name } : {}) }, attempt));
  void vscode.window.showInformationMessage(
    `errand: committed \u201c${title}\u201d to branch ${result.branch} (${result.commit.slice(0, 10)}). Your working tree is unchanged.`,
  );
}
