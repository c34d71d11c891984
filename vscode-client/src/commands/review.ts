// Looking at a task: Show Tasks, Open Task, Preview Diff, Show Log, and the report's
// citation links (Open Citation).
import * as path from "node:path";
import * as vscode from "vscode";
import { errorMessage } from "../errors";
import { previewDiff as showDiff } from "../diffPreview";
import { logUri } from "../logDocuments";
import { TASKS } from "../target";
import { titleOf, workspaceFolderPath, type CommandDeps } from "./deps";
import { chooseAttempt, resolveTarget } from "./pick";

export async function showTasks(): Promise<void> {
  await vscode.commands.executeCommand("errand.tasks.focus");
}

export async function openTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.any, "Open which task?", "no tasks yet.");
  if (target) {
    await deps.reports.show(target.taskId, target.attempt);
  }
}

export async function previewDiff(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.withDiff, "Preview the diff of which task?", "no finished task has changes to preview.");
  if (!target) {
    return;
  }
  // A file node names its attempt; without one the server's choice is that file's.
  const attempt = target.path ? target.attempt : await chooseAttempt(deps, target, "Preview");
  if (attempt !== null) {
    await showDiff(deps.diffs, target.taskId, titleOf(deps, target.taskId), attempt, target.path);
  }
}

/**
 * Opens an attempt's log (the last attempt's when none is named), loading the stored
 * log first; in `viewColumn`, else the active editor group.
 */
async function openLog(
  deps: CommandDeps,
  taskId: string,
  attempt?: number,
  viewColumn?: vscode.ViewColumn,
): Promise<{ editor: vscode.TextEditor; attempt: number }> {
  // The stored log, for tasks this window did not watch (or before a restart).
  await deps.logLoader.ensure(taskId).catch((error: unknown) => deps.output.warn(`getLog ${taskId}: ${errorMessage(error)}`));
  const shown = attempt ?? deps.logs.attempts(taskId).at(-1) ?? 1;
  const document = await vscode.workspace.openTextDocument(logUri(taskId, shown, titleOf(deps, taskId)));
  const editor = await vscode.window.showTextDocument(document, { preview: true, viewColumn });
  return { editor, attempt: shown };
}

/** Selects and reveals document lines [start, end] (0-based; clamped to the document). */
function selectLines(editor: vscode.TextEditor, start: number, end: number): void {
  const document = editor.document;
  const last = Math.max(0, Math.min(end, document.lineCount - 1));
  const range = new vscode.Range(Math.min(start, last), 0, last, document.lineAt(last).text.length);
  editor.selection = new vscode.Selection(range.start, range.end);
  editor.revealRange(range, vscode.TextEditorRevealType.InCenter);
}

export async function showLog(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.any, "Show the log of which task?", "no tasks yet.");
  if (!target) {
    return;
  }
  const { editor } = await openLog(deps, target.taskId, target.attempt);
  const last = editor.document.lineCount - 1;
  editor.revealRange(new vscode.Range(last, 0, last, 0), vscode.TextEditorRevealType.Default);
}

/** The argument of a report's citation link (reportMarkdown.ts builds it). */
interface CitationArg {
  kind: "file" | "chunk";
  taskId: string;
  path?: string;
  attempt?: number;
  chunkId?: string;
  startLine?: number;
  endLine?: number;
}

async function openFileLines(deps: CommandDeps, arg: CitationArg & { path: string }, start: number, end: number): Promise<void> {
  const root = deps.store.get(arg.taskId)?.repository ?? workspaceFolderPath() ?? "";
  const uri = vscode.Uri.file(path.isAbsolute(arg.path) ? arg.path : path.join(root, arg.path));
  let document: vscode.TextDocument;
  try {
    document = await vscode.workspace.openTextDocument(uri);
  } catch {
    void vscode.window.showWarningMessage(`errand: ${arg.path} does not exist in the workspace (the task may have created it; preview its diff).`);
    return;
  }
  const editor = await vscode.window.showTextDocument(document, { preview: true, viewColumn: vscode.ViewColumn.One });
  selectLines(editor, start, end);
}

async function openLogLines(deps: CommandDeps, arg: CitationArg & { chunkId: string }): Promise<void> {
  const { editor, attempt } = await openLog(deps, arg.taskId, arg.attempt ?? 1, vscode.ViewColumn.One);
  const startLine = arg.startLine ?? 1;
  const lines = deps.logs.chunkRange(arg.taskId, attempt, arg.chunkId, startLine, arg.endLine ?? startLine);
  if (lines) {
    selectLines(editor, lines.start, lines.end);
  } else {
    void vscode.window.showWarningMessage(`errand: command ${arg.chunkId} is not in the log of attempt ${attempt}; the log shows what was recorded.`);
  }
}

/** Opens what a report link cites: lines of a file, or lines of a command's output in the log. */
export async function openCitation(deps: CommandDeps, arg: unknown): Promise<void> {
  const citation = arg as CitationArg;
  const start = Math.max(0, (citation.startLine ?? 1) - 1);
  const end = Math.max(start, (citation.endLine ?? citation.startLine ?? 1) - 1);
  if (citation.kind === "file" && citation.path) {
    await openFileLines(deps, { ...citation, path: citation.path }, start, end);
  } else if (citation.kind === "chunk" && citation.chunkId) {
    await openLogLines(deps, { ...citation, chunkId: citation.chunkId });
  }
}
