// What the commands work with, and two look-ups they share.
import * as vscode from "vscode";
import type { ErrandApi } from "../api";
import type { DiffCache } from "../diffCache";
import type { LogLoader } from "../logDocuments";
import type { LogBook } from "../logs";
import type { ReportPanels } from "../reportView";
import type { Forgets } from "../taskCaches";
import type { TaskDetails } from "../taskDetails";
import type { TaskStore } from "../taskStore";

export interface CommandDeps {
  api: ErrandApi;
  store: TaskStore;
  details: TaskDetails;
  /** Forgets everything this window keeps about a task that is gone. */
  caches: Forgets;
  diffs: DiffCache;
  logs: LogBook;
  logLoader: LogLoader;
  reports: ReportPanels;
  output: vscode.LogOutputChannel;
  refreshTasks(): Promise<void>;
  restartServer(): Promise<void>;
}

/** A command's body: its argument is whatever VS Code passes (a tree node, a link's argument, nothing). */
export type Command = (deps: CommandDeps, arg?: unknown) => Promise<unknown>;

export function titleOf(deps: CommandDeps, taskId: string): string {
  return deps.store.get(taskId)?.title ?? taskId;
}

/** The folder tasks run on: the active editor's, else the first. */
export function workspaceFolderPath(): string | undefined {
  const active = vscode.window.activeTextEditor?.document.uri;
  const folder = (active && vscode.workspace.getWorkspaceFolder(active)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder?.uri.fsPath;
}
