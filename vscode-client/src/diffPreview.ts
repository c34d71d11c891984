// Opens a task's proposed changes in VS Code's diff editor: one file with vscode.diff,
// several at once with vscode.changes (the multi-file diff editor). What it shows is
// errand.getDiff's edit, which is what Apply would write now: files the user changed
// meanwhile are merged (and say so), conflicting files are left out and listed.
import * as vscode from "vscode";
import { conflictChoices } from "./choices";
import type { DiffCache } from "./diffCache";
import { conflictsOf, type Conflict, type FileChange } from "./edits";
import { offer } from "./notify";
import { proposedUri } from "./proposedDocuments";

function label(change: FileChange): string {
  return vscode.workspace.asRelativePath(vscode.Uri.parse(change.uri), false);
}

function sides(taskId: string, attempt: number, change: FileChange): [vscode.Uri, vscode.Uri, vscode.Uri] {
  const resource = vscode.Uri.parse(change.uri);
  const left =
    change.kind === "added"
      ? proposedUri(taskId, attempt, change, "empty")
      : change.oldUri
        ? vscode.Uri.parse(change.oldUri)
        : resource;
  const right =
    change.kind === "deleted" ? proposedUri(taskId, attempt, change, "empty") : proposedUri(taskId, attempt, change, "proposed");
  return [resource, left, right];
}

/** Whether a change's file (new or old URI) is the repository-relative `path`. */
function isFile(change: FileChange, path: string): boolean {
  const wanted = `/${path.replace(/\\/g, "/")}`;
  return [change.uri, change.oldUri].some((u) => u !== undefined && (u === path || vscode.Uri.parse(u).path.endsWith(wanted)));
}

async function reportConflicts(taskId: string, title: string, conflicts: readonly Conflict[], shown: number): Promise<void> {
  const one = conflicts.length === 1;
  await offer(
    "warning",
    `errand: ${one ? "1 file" : `${conflicts.length} files`} of \u201c${title}\u201d ${one ? "conflicts" : "conflict"} with the workspace and ${
      one ? "is" : "are"
    } left out of the preview: ${conflicts.map((c) => c.message).join("; ")}. Apply writes nothing while a conflict remains` +
      (shown > 0 ? "; Apply Files\u2026 can apply the other files." : "."),
    conflictChoices({ taskId }, shown > 0),
  );
}

/**
 * Shows the diff of a task attempt as Apply would write it now. With `path`, only that
 * file (a path relative to the repository, or a file URI). Returns how many files
 * were shown.
 */
export async function previewDiff(
  diffs: DiffCache,
  taskId: string,
  title: string,
  attempt?: number,
  path?: string,
): Promise<number> {
  // Always ask again: the user's files may have changed since the last preview.
  const { result, changes } = await diffs.refresh(taskId, attempt);
  const attemptNumber = result.attempt ?? attempt ?? 1;
  const files = result.files ?? [];
  let conflicts = conflictsOf(result);
  let shown = changes;
  let binaries = files.filter((f) => f.binary && !conflicts.some((c) => c.path === f.path || c.path === f.oldPath));
  if (path) {
    const wanted = path.replace(/\\/g, "/");
    shown = changes.filter((c) => isFile(c, wanted));
    conflicts = conflicts.filter((c) => c.path === wanted || wanted.endsWith(`/${c.path}`));
    binaries = binaries.filter((f) => f.path === wanted || wanted.endsWith(`/${f.path}`));
  }
  if (conflicts.length > 0) {
    void reportConflicts(taskId, title, conflicts, shown.length);
  }
  if (shown.length === 0) {
    if (conflicts.length === 0) {
      void vscode.window.showInformationMessage(
        binaries.length > 0
          ? `errand: \u201c${title}\u201d changes only binary files (${binaries.map((f) => f.path).join(", ")}), which Apply writes but the diff editor cannot show.`
          : `errand: \u201c${title}\u201d proposes no changes to preview.`,
      );
    }
    return 0;
  }
  const merged = (result.merged ?? []).filter((m) => shown.some((c) => isFile(c, m)));
  if (merged.length > 0) {
    void vscode.window.showInformationMessage(
      `errand: you changed ${merged.join(", ")} since \u201c${title}\u201d started. The preview shows the task's changes merged with yours, as Apply will write them.`,
    );
  }
  const first = shown[0];
  if (shown.length === 1 && first) {
    const [, left, right] = sides(taskId, attemptNumber, first);
    await vscode.commands.executeCommand(
      "vscode.diff",
      left,
      right,
      `${label(first)} \u2194 errand: ${title}${merged.length > 0 ? " (merged with your edits)" : ""}`,
      { preview: true } satisfies vscode.TextDocumentShowOptions,
    );
    return 1;
  }
  await vscode.commands.executeCommand(
    "vscode.changes",
    `errand: ${title}${merged.length > 0 ? ` (merged with your edits in ${merged.join(", ")})` : ""}`,
    shown.map((c) => sides(taskId, attemptNumber, c)),
  );
  return shown.length;
}
