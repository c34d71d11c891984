// Opens a task's proposed changes in VS Code's diff editor: one file with vscode.diff,
// several at once with vscode.changes (the multi-file diff editor).
import * as vscode from "vscode";
import type { DiffCache } from "./documents";
import { proposedUri } from "./documents";
import type { FileChange } from "./edits";

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
  const first = shown[0];
  if (shown.length === 1 && first) {
    const [, left, right] = sides(taskId, attemptNumber, first);
    await vscode.commands.executeCommand(
      "vscode.diff",
      left,
      right,
      `${label(first)} \u2194 errand: ${title}`,
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
