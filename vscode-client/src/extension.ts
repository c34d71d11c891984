// Wires errand's parts together; the logic lives in the modules it imports.
import * as vscode from "vscode";
import { ErrandApi } from "./api";
import { ServerController } from "./client";
import { registerCommands } from "./commands";
import { DiffCache } from "./diffCache";
import { LogContentProvider, LogLoader } from "./logDocuments";
import { LogBook } from "./logs";
import { ProposedContentProvider } from "./proposedDocuments";
import { ReportPanels } from "./reportView";
import { watchSettings } from "./settingsWatch";
import { StatusMonitor } from "./status";
import { TaskCaches } from "./taskCaches";
import { TaskDetails } from "./taskDetails";
import { TaskEvents } from "./taskEvents";
import { TaskStore } from "./taskStore";
import { showReadyBadge, TaskTreeProvider } from "./taskTree";
import { UsageTracker } from "./usageTracker";
import { LOG_SCHEME, PROPOSED_SCHEME } from "./uris";

let controller: ServerController | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("errand", { log: true });
  const store = new TaskStore();
  const logs = new LogBook();
  const api = new ErrandApi(
    () => controller?.current,
    () => controller?.whenStarted() ?? Promise.resolve(),
  );
  const details = new TaskDetails(api, store);
  const diffs = new DiffCache(api);
  // Each calls the other only later, from events.
  const usage = new UsageTracker(store, api, details, output, () => status.update());
  const status = new StatusMonitor(store, () => usage.summary());
  const tree = new TaskTreeProvider(store, details);
  const view = vscode.window.createTreeView("errand.tasks", { treeDataProvider: tree, showCollapseAll: true });
  const reports = new ReportPanels(details, store);
  const logLoader = new LogLoader(api, logs, (taskId) => logDocuments.refreshTask(taskId));
  const logDocuments = new LogContentProvider(logs, logLoader);
  const proposedDocuments = new ProposedContentProvider(diffs);
  const caches = new TaskCaches([store, diffs, logs, logLoader]);
  const events = new TaskEvents({ api, store, details, caches, diffs, logs, logLoader, logDocuments, output });

  controller = new ServerController(output, {
    onTaskChanged: (params) => events.taskChanged(params),
    onTaskLog: (event) => events.taskLog(event),
    onStateChanged: (state) => status.setServerState(state),
    onStarted: () => {
      // A restarted server may have logged what this window did not hear.
      logLoader.reset();
      void events.refresh();
    },
  });
  const server = controller;

  const commandDeps = { api, store, details, caches, diffs, logs, logLoader, reports, output };
  context.subscriptions.push(
    output, status, usage, diffs, tree, view, reports, logDocuments, proposedDocuments, server,
    { dispose: showReadyBadge(view, store) },
    vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, logDocuments),
    vscode.workspace.registerTextDocumentContentProvider(PROPOSED_SCHEME, proposedDocuments),
    ...registerCommands({ ...commandDeps, refreshTasks: () => events.refresh(), restartServer: () => server.restart() }),
    watchSettings(status),
  );

  void server.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
