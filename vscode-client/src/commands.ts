// The palette commands (category "errand") and the task list's context-menu actions.
import * as path from "node:path";
import * as vscode from "vscode";
import { errorMessage, type ErrandApi } from "./api";
import type { DiffCache, LogLoader } from "./documents";
import { logUri } from "./documents";
import { parseConflicts } from "./edits";
import { previewDiff } from "./diffPreview";
import {
  checksText,
  countChecks,
  diffStatText,
  isActive,
  isApplicable,
  statusIcon,
  statusLabel,
  taskDescription,
  taskWarnings,
} from "./format";
import type { LogBook } from "./logs";
import type { Mode, Task, TaskSummary } from "./protocol";
import type { ReportPanels } from "./reportView";
import type { TaskStore } from "./taskStore";

export interface CommandDeps {
  api: ErrandApi;
  store: TaskStore;
  diffs: DiffCache;
  logs: LogBook;
  logLoader: LogLoader;
  reports: ReportPanels;
  output: vscode.LogOutputChannel;
  refreshTasks(): Promise<void>;
  restartServer(): Promise<void>;
}

/** What a command acts on: from a tree node, a report link, or a task id. */
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

type TaskFilter = (task: TaskSummary) => boolean;

async function pickTask(store: TaskStore, filter: TaskFilter, placeHolder: string, none: string): Promise<Target | undefined> {
  const tasks = store.list().filter(filter);
  if (tasks.length === 0) {
    void vscode.window.showInformationMessage(`errand: ${none}`);
    return undefined;
  }
  const now = Date.now();
  const picked = await vscode.window.showQuickPick(
    tasks.map((t) => ({
      label: `$(${statusIcon(t.status).id}) ${t.title}`,
      description: taskDescription(t, now),
      taskId: t.taskId,
    })),
    { placeHolder, matchOnDescription: true },
  );
  return picked ? { taskId: picked.taskId } : undefined;
}

async function resolve(deps: CommandDeps, arg: unknown, filter: TaskFilter, placeHolder: string, none: string): Promise<Target | undefined> {
  return targetOf(arg) ?? (await pickTask(deps.store, filter, placeHolder, none));
}

function titleOf(deps: CommandDeps, taskId: string): string {
  return deps.store.get(taskId)?.title ?? taskId;
}

async function taskDetail(deps: CommandDeps, taskId: string): Promise<Task> {
  const cached = deps.store.detail(taskId);
  if (cached) {
    return cached;
  }
  const { task } = await deps.api.getTask(taskId);
  deps.store.setDetail(task);
  return task;
}

/** For best-of-N tasks, asks which finished attempt to use when none was named. */
async function chooseAttempt(deps: CommandDeps, target: Target, action: string): Promise<number | undefined | null> {
  if (target.attempt !== undefined) {
    return target.attempt;
  }
  const task = await taskDetail(deps, target.taskId);
  const done = (task.attempts ?? []).filter((a) => a.status === "completed" && (a.diffStat?.files ?? 0) > 0);
  if (done.length <= 1) {
    return done[0]?.attempt;
  }
  const picked = await vscode.window.showQuickPick(
    done.map((a) => {
      const { passed, failed } = countChecks(a.checks);
      return {
        label: `Attempt ${a.attempt}`,
        description: [diffStatText(a.diffStat), checksText(passed, failed) && `checks ${checksText(passed, failed)}`]
          .filter(Boolean)
          .join(" · "),
        detail: a.report?.split(/\r?\n/)[0]?.slice(0, 160),
        attempt: a.attempt,
      };
    }),
    { placeHolder: `${action}: which attempt of \u201c${task.title}\u201d?` },
  );
  return picked ? picked.attempt : null;
}

function workspaceFolderPath(): string | undefined {
  const active = vscode.window.activeTextEditor?.document.uri;
  const folder = (active && vscode.workspace.getWorkspaceFolder(active)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder?.uri.fsPath;
}

async function delegate(deps: CommandDeps, mode: Mode, attempts: number): Promise<void> {
  const workspace = workspaceFolderPath();
  if (!workspace) {
    void vscode.window.showWarningMessage("errand: open a folder inside a git repository first; tasks run on a copy of it.");
    return;
  }
  const prompt = await vscode.window.showInputBox({
    title: mode === "ask" ? "errand: Ask" : attempts > 1 ? `errand: Delegate Task (${attempts} attempts)` : "errand: Delegate Task",
    prompt:
      mode === "ask"
        ? "A question about this codebase. The agent reads and runs code in a sandboxed copy and answers with citations; it changes nothing."
        : "What should a background agent do? It works in a sandboxed copy of this workspace; nothing changes here until you apply it.",
    placeHolder: mode === "ask" ? "how does the retry logic in the HTTP client work?" : "fix the flaky test in tests/test_io.py",
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === "" ? "Describe the task in a sentence or two." : undefined),
  });
  if (!prompt || prompt.trim() === "") {
    return;
  }
  const { taskId } = await deps.api.delegate({ prompt: prompt.trim(), mode, attempts, workspace });
  deps.output.info(`delegated ${mode} task ${taskId}: ${prompt.trim()}`);
  vscode.window.setStatusBarMessage(`$(rocket) errand: ${mode === "ask" ? "question" : "task"} sent`, 4000);
  await deps.refreshTasks();
}

async function apply(deps: CommandDeps, target: Target, files?: string[]): Promise<void> {
  const attempt = await chooseAttempt(deps, target, "Apply");
  if (attempt === null) {
    return;
  }
  const title = titleOf(deps, target.taskId);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: `errand: applying \u201c${title}\u201d` },
    () =>
      deps.api.apply({
        taskId: target.taskId,
        ...(attempt !== undefined ? { attempt } : {}),
        ...(files ? { files } : {}),
      }),
  );
  deps.diffs.forget(target.taskId);
  if (result.applied) {
    const count = result.files?.length ?? files?.length;
    const merged = result.merged ?? [];
    void vscode.window.showInformationMessage(
      `errand: applied \u201c${title}\u201d${count ? ` (${count} file${count === 1 ? "" : "s"})` : ""}.` +
        (merged.length > 0 ? ` Merged with your own edits in ${merged.join(", ")}.` : ""),
    );
  } else if ((result.conflicts ?? []).length > 0) {
    const conflicts = result.conflicts ?? [];
    // Apply Files… helps when other files of the attempt do not conflict.
    const detail = await taskDetail(deps, target.taskId).catch(() => undefined);
    const chosen = detail?.attempts?.find((a) => (attempt !== undefined ? a.attempt === attempt : a.status === "completed"));
    const others = (files ?? chosen?.files ?? []).length > conflicts.length;
    const choice = await vscode.window.showWarningMessage(
      `errand: \u201c${title}\u201d was not applied; nothing was written. ${conflicts.length === 1 ? "Conflict" : `${conflicts.length} conflicts`}: ${conflicts.join("; ")}`,
      ...(others ? ["Apply Files\u2026"] : []),
      "Create Branch\u2026",
      "Follow Up\u2026",
    );
    const next =
      choice === "Apply Files\u2026"
        ? "errand.applyFiles"
        : choice === "Create Branch\u2026"
          ? "errand.createBranchFromTask"
          : choice === "Follow Up\u2026"
            ? "errand.followUpTask"
            : undefined;
    if (next) {
      await vscode.commands.executeCommand(next, { taskId: target.taskId, ...(attempt !== undefined ? { attempt } : {}) });
    }
  } else {
    void vscode.window.showErrorMessage(
      `errand: \u201c${title}\u201d was not applied: ${result.reason ?? "the editor refused the edit"}. Nothing was written.`,
    );
  }
  await deps.refreshTasks();
}

async function applyFiles(deps: CommandDeps, target: Target): Promise<void> {
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
  const conflicts = parseConflicts(result.conflicts ?? [], files.flatMap((f) => (f.oldPath ? [f.path, f.oldPath] : [f.path])));
  const merged = new Set(result.merged ?? []);
  const picked = await vscode.window.showQuickPick(
    files.map((f) => {
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
    }),
    {
      canPickMany: true,
      placeHolder:
        conflicts.length > 0
          ? "Files to apply (files that conflict with the workspace are unticked; Apply writes nothing while a chosen file conflicts)"
          : "Files to apply (the others are left out)",
    },
  );
  if (!picked || picked.length === 0) {
    return;
  }
  await apply(deps, { ...target, ...(attempt !== undefined ? { attempt } : {}) }, picked.map((p) => p.path));
}

interface CitationArg {
  kind: "file" | "chunk";
  taskId: string;
  path?: string;
  attempt?: number;
  chunkId?: string;
  startLine: number;
  endLine: number;
}

async function openCitation(deps: CommandDeps, arg: CitationArg): Promise<void> {
  const start = Math.max(0, (arg.startLine ?? 1) - 1);
  const end = Math.max(start, (arg.endLine ?? arg.startLine ?? 1) - 1);
  if (arg.kind === "file" && arg.path) {
    const summary = deps.store.get(arg.taskId);
    const root = summary?.repository ?? workspaceFolderPath() ?? "";
    const uri = path.isAbsolute(arg.path) ? vscode.Uri.file(arg.path) : vscode.Uri.file(path.join(root, arg.path));
    try {
      const document = await vscode.workspace.openTextDocument(uri);
      const range = new vscode.Range(start, 0, end, document.lineAt(Math.min(end, document.lineCount - 1)).text.length);
      await vscode.window.showTextDocument(document, { selection: range, preview: true, viewColumn: vscode.ViewColumn.One });
    } catch {
      void vscode.window.showWarningMessage(`errand: ${arg.path} does not exist in the workspace (the task may have created it; preview its diff).`);
    }
    return;
  }
  if (arg.kind === "chunk" && arg.chunkId) {
    const attempt = arg.attempt ?? 1;
    // The stored log, for tasks this window did not watch (or before a restart).
    await deps.logLoader.ensure(arg.taskId).catch((error: unknown) => deps.output.warn(`getLog ${arg.taskId}: ${errorMessage(error)}`));
    const uri = logUri(arg.taskId, attempt, titleOf(deps, arg.taskId));
    const document = await vscode.workspace.openTextDocument(uri);
    const lines = deps.logs.chunkRange(arg.taskId, attempt, arg.chunkId, arg.startLine, arg.endLine);
    const editor = await vscode.window.showTextDocument(document, { preview: true, viewColumn: vscode.ViewColumn.One });
    if (lines) {
      const last = Math.min(lines.end, document.lineCount - 1);
      const range = new vscode.Range(lines.start, 0, last, document.lineAt(last).text.length);
      editor.selection = new vscode.Selection(range.start, range.end);
      editor.revealRange(range, vscode.TextEditorRevealType.InCenter);
    } else {
      void vscode.window.showWarningMessage(
        `errand: command ${arg.chunkId} is not in the log of attempt ${attempt}; the log shows what was recorded.`,
      );
    }
  }
}

/** Runs a command body, turning failures into a notification (nothing fails silently). */
function guarded(deps: CommandDeps, name: string, body: (...args: unknown[]) => Promise<unknown>) {
  return async (...args: unknown[]) => {
    try {
      await body(...args);
    } catch (error) {
      deps.output.error(`${name} failed: ${errorMessage(error)}`);
      void vscode.window.showErrorMessage(`errand: ${errorMessage(error)}`);
    }
  };
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const any: TaskFilter = () => true;
  const applicable: TaskFilter = (t) => isApplicable(t);
  const withDiff: TaskFilter = (t) => t.status === "completed" && t.mode === "code" && (t.diffStat?.files ?? 0) > 0;
  const active: TaskFilter = (t) => isActive(t.status);
  const finished: TaskFilter = (t) => !isActive(t.status);

  const table: Record<string, (...args: unknown[]) => Promise<unknown>> = {
    "errand.delegateTask": () => delegate(deps, "code", 1),
    "errand.delegateBestOf": async () => {
      const picked = await vscode.window.showQuickPick(
        ["2", "3", "4"].map((n) => ({ label: `${n} attempts`, n: Number(n) })),
        { placeHolder: "How many independent attempts? You compare them and apply one." },
      );
      if (picked) {
        await delegate(deps, "code", picked.n);
      }
    },
    "errand.ask": () => delegate(deps, "ask", 1),
    "errand.showTasks": async () => {
      await vscode.commands.executeCommand("errand.tasks.focus");
    },
    "errand.refreshTasks": () => deps.refreshTasks(),
    "errand.openTask": async (arg) => {
      const target = await resolve(deps, arg, any, "Open which task?", "no tasks yet.");
      if (target) {
        await deps.reports.show(target.taskId, target.attempt);
      }
    },
    "errand.previewDiff": async (arg) => {
      const target = await resolve(deps, arg, withDiff, "Preview the diff of which task?", "no finished task has changes to preview.");
      if (!target) {
        return;
      }
      const attempt = target.path ? target.attempt : await chooseAttempt(deps, target, "Preview");
      if (attempt === null) {
        return;
      }
      await previewDiff(deps.diffs, target.taskId, titleOf(deps, target.taskId), attempt, target.path);
    },
    "errand.applyTask": async (arg) => {
      const target = await resolve(deps, arg, applicable, "Apply which task?", "no finished task is waiting to be applied.");
      if (target) {
        await apply(deps, target);
      }
    },
    "errand.applyFiles": async (arg) => {
      const target = await resolve(deps, arg, applicable, "Apply files of which task?", "no finished task is waiting to be applied.");
      if (target) {
        await applyFiles(deps, target);
      }
    },
    "errand.createBranchFromTask": async (arg) => {
      const target = await resolve(deps, arg, withDiff, "Commit which task to a new branch?", "no finished task has changes to commit.");
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
      const result = await deps.api.createBranch({
        taskId: target.taskId,
        ...(attempt !== undefined ? { attempt } : {}),
        ...(branch.trim() !== "" ? { branch: branch.trim() } : {}),
      });
      void vscode.window.showInformationMessage(
        `errand: committed \u201c${title}\u201d to branch ${result.branch} (${result.commit.slice(0, 10)}). Your working tree is unchanged.`,
      );
    },
    "errand.discardTask": async (arg) => {
      const target = await resolve(deps, arg, any, "Discard which task?", "no tasks to discard.");
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
      deps.store.remove(target.taskId);
      deps.diffs.forget(target.taskId);
      deps.logs.forget(target.taskId);
      deps.logLoader.forget(target.taskId);
      vscode.window.setStatusBarMessage(`$(trash) errand: discarded \u201c${title}\u201d`, 4000);
      await deps.refreshTasks();
    },
    "errand.cancelTask": async (arg) => {
      const target = await resolve(deps, arg, active, "Cancel which task?", "no task is running.");
      if (target) {
        await deps.api.cancel(target.taskId);
        vscode.window.setStatusBarMessage(`$(debug-stop) errand: cancelling \u201c${titleOf(deps, target.taskId)}\u201d`, 4000);
      }
    },
    "errand.followUpTask": async (arg) => {
      const target = await resolve(deps, arg, finished, "Follow up on which task?", "no finished task to follow up on.");
      if (!target) {
        return;
      }
      const prompt = await vscode.window.showInputBox({
        title: `errand: Follow up on \u201c${titleOf(deps, target.taskId)}\u201d`,
        prompt: "What next? The agent continues from this task's result, in its own copy.",
        placeHolder: "also add a test",
        ignoreFocusOut: true,
        validateInput: (value) => (value.trim() === "" ? "Say what to do next." : undefined),
      });
      if (!prompt || prompt.trim() === "") {
        return;
      }
      const { taskId } = await deps.api.followUp(target.taskId, prompt.trim());
      deps.output.info(`follow-up ${taskId} of ${target.taskId}: ${prompt.trim()}`);
      vscode.window.setStatusBarMessage("$(reply) errand: follow-up sent", 4000);
      await deps.refreshTasks();
    },
    "errand.showLog": async (arg) => {
      const target = await resolve(deps, arg, any, "Show the log of which task?", "no tasks yet.");
      if (!target) {
        return;
      }
      await deps.logLoader.ensure(target.taskId).catch((error: unknown) => deps.output.warn(`getLog ${target.taskId}: ${errorMessage(error)}`));
      const attempts = deps.logs.attempts(target.taskId);
      const attempt = target.attempt ?? attempts[attempts.length - 1] ?? 1;
      const document = await vscode.workspace.openTextDocument(logUri(target.taskId, attempt, titleOf(deps, target.taskId)));
      const editor = await vscode.window.showTextDocument(document, { preview: true });
      const last = document.lineCount - 1;
      editor.revealRange(new vscode.Range(last, 0, last, 0), vscode.TextEditorRevealType.Default);
    },
    "errand.openCitation": (arg) => openCitation(deps, arg as CitationArg),
    "errand.showServerOutput": async () => deps.output.show(true),
    "errand.restartServer": () => deps.restartServer(),
  };
  return Object.entries(table).map(([name, body]) => vscode.commands.registerCommand(name, guarded(deps, name, body)));
}

/**
 * Tells the user when a task finishes, with the next step one click away. `detail`
 * fetches the task (getTask) so that its warnings are said at once; without it, or
 * when it fails, the summary is enough.
 */
export async function notifyFinished(
  previous: TaskSummary | undefined,
  task: TaskSummary,
  detail?: () => Promise<Task>,
): Promise<void> {
  if (!previous || !isActive(previous.status) || isActive(task.status)) {
    return;
  }
  if (!vscode.workspace.getConfiguration("errand").get<boolean>("notifyOnFinish", true)) {
    return;
  }
  let warnings: string[] = [];
  if (detail && task.status === "completed") {
    try {
      warnings = taskWarnings(await detail());
    } catch {
      // the summary is enough
    }
  }
  const stat = diffStatText(task.diffStat);
  const checks = checksText(task.checksPassed ?? 0, task.checksFailed ?? 0);
  const details = [stat, checks && `checks ${checks}`].filter(Boolean).join(" · ");
  let message = `errand: \u201c${task.title}\u201d ${statusLabel(task.status).toLowerCase()}${details ? ` (${details})` : ""}${
    task.reason ? `: ${task.reason}` : "."
  }`;
  const first = warnings[0];
  if (first !== undefined) {
    const text = first.length > 160 ? `${first.slice(0, 159)}\u2026` : first;
    message += ` \u26a0 ${warnings.length === 1 ? "Warning" : `${warnings.length} warnings`}: ${text}${warnings.length > 1 ? " (more in the report)" : ""}`;
  }
  const actions = task.status === "completed" && isApplicable(task) ? ["Preview Diff", "Open"] : ["Open"];
  const show =
    task.status === "failed" || warnings.length > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  const choice = await show(message, ...actions);
  if (choice === "Preview Diff") {
    await vscode.commands.executeCommand("errand.previewDiff", { taskId: task.taskId });
  } else if (choice === "Open") {
    await vscode.commands.executeCommand("errand.openTask", { taskId: task.taskId });
  }
}
