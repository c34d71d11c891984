// The palette commands (category "errand") and the task list's context-menu actions:
// one function per command, in a module per family; this table registers them.
import * as vscode from "vscode";
import { errorMessage } from "../errors";
import { applyFiles, applyTask, createBranchFromTask } from "./apply";
import { ask, delegateBestOf, delegateTask, followUpTask } from "./delegate";
import type { Command, CommandDeps } from "./deps";
import { cancelTask, discardTask, resumeTask } from "./lifecycle";
import { openCitation, openTask, previewDiff, showLog, showTasks } from "./review";
import { refreshTasks, restartServer, showServerOutput } from "./server";

export type { CommandDeps } from "./deps";

/** Every command package.json contributes, by id. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  "errand.delegateTask": delegateTask,
  "errand.delegateBestOf": delegateBestOf,
  "errand.ask": ask,
  "errand.showTasks": showTasks,
  "errand.openTask": openTask,
  "errand.previewDiff": previewDiff,
  "errand.applyTask": applyTask,
  "errand.applyFiles": applyFiles,
  "errand.createBranchFromTask": createBranchFromTask,
  "errand.discardTask": discardTask,
  "errand.cancelTask": cancelTask,
  "errand.followUpTask": followUpTask,
  "errand.resumeTask": resumeTask,
  "errand.showLog": showLog,
  "errand.showServerOutput": showServerOutput,
  "errand.restartServer": restartServer,
  "errand.refreshTasks": refreshTasks,
  "errand.openCitation": openCitation,
};

/** Runs a command, turning a failure into a notification (nothing fails silently). */
function guarded(deps: CommandDeps, name: string, command: Command): (arg?: unknown) => Promise<void> {
  return async (arg?: unknown) => {
    try {
      await command(deps, arg);
    } catch (error) {
      deps.output.error(`${name} failed: ${errorMessage(error)}`);
      void vscode.window.showErrorMessage(`errand: ${errorMessage(error)}`);
    }
  };
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  return Object.entries(COMMANDS).map(([name, command]) => vscode.commands.registerCommand(name, guarded(deps, name, command)));
}
