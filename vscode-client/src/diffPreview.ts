// Opens a task's proposed changes in VS Code's diff editor: one file with vscode.diff,
// several at once with vscode.changes (the multi-file diff editor).
import * as vscode from "vscode";
import type { DiffCache } from "./documents";
import { currentText, proposedUri } from "./documents";
import { matchesBase, type FileChange } from "./edits";
import type { FileStat } from "./protocol";

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

/**
 * Shows the diff of a task attempt. With `path`, only that file (a path relative to the
 * repository, or a file URI). Returns how many files were shown.
 */
export async function previewDiff(
  diffs: DiffCache,
  taskId: string,
  title: string,
  attempt?: number,
  path?: string,
): Promise<number> {
  const { result, changes } = await diffs.get(taskId, attempt);
  const attemptNumber = result.attempt ?? attempt ?? 1;
  let shown = changes;
  if (path) {
    const wanted = path.replace(/\\/g, "/");
    shown = changes.filter((c) => c.uri === path || vscode.Uri.parse(c.uri).path.endsWith(`/${wanted}`));
  }
  if (shown.length === 0) {
    void vscode.window.showInformationMessage(`errand: \u201c${title}\u201d proposes no changes to preview.`);
    return 0;
  }
  const stale = await changedSinceSnapshot(result.diff, result.files ?? [], shown);
  if (stale.length > 0) {
    void vscode.window.showWarningMessage(
      `errand: ${stale.join(", ")} changed since \u201c${title}\u201d started. The preview applies the task's edit to ` +
        "the file as it is now and may be off; Apply merges both changes and reports any conflict.",
    );
  }
  const first = shown[0];
  if (shown.length === 1 && first) {
    const [, left, right] = sides(taskId, attemptNumber, first);
    await vscode.commands.executeCommand(
      "vscode.diff",
      left,
      right,
      `${label(first)} \u2194 errand: ${title}${stale.length > 0 ? " (file changed since)" : ""}`,
      { preview: true } satisfies vscode.TextDocumentShowOptions,
    );
    return 1;
  }
  await vscode.commands.executeCommand(
    "vscode.changes",
    `errand: ${title}`,
    shown.map((c) => sides(taskId, attemptNumber, c)),
  );
  return shown.length;
}

/** The files (relative paths) whose current text no longer has the lines the diff was made against. */
async function changedSinceSnapshot(diff: string, files: readonly FileStat[], changes: readonly FileChange[]): Promise<string[]> {
  const stale: string[] = [];
  for (const change of changes) {
    if (change.kind === "added") {
      continue;
    }
    const source = vscode.Uri.parse(change.oldUri ?? change.uri);
    const stat = files.find((f) => source.path.endsWith(`/${f.oldPath ?? f.path}`));
    if (!stat || stat.binary) {
      continue;
    }
    const basePath = stat.oldPath ?? stat.path;
    if (!matchesBase(diff, basePath, await currentText(source))) {
      stale.push(basePath);
    }
  }
  return stale;
}
