// Wires errand's parts together; the logic lives in the modules it imports.
import * as vscode from "vscode";
import { ErrandApi, errorMessage } from "./api";
import { ServerController } from "./client";
import { notifyFinished, registerCommands } from "./commands";
import { DiffCache, LogContentProvider, LogLoader, ProposedContentProvider } from "./documents";
import { LogBook } from "./logs";
import { ReportPanels } from "./reportView";
import { SERVER_SETTINGS } from "./settings";
import { StatusMonitor } from "./status";
import { TaskStore } from "./taskStore";
import { TaskTreeProvider } from "./taskTree";
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
  const diffs = new DiffCache(api);
  // Each calls the other only later, from events.
  const usage = new UsageTracker(store, api, output, () => status.update());
  const status = new StatusMonitor(store, () => usage.summary());
  const tree = new TaskTreeProvider(store, api);
  const view = vscode.window.createTreeView("errand.tasks", { treeDataProvider: tree, showCollapseAll: true });
  const reports = new ReportPanels(api, store);
  const logLoader = new LogLoader(api, logs, (taskId) => logDocuments.refreshTask(taskId));
  const logDocuments = new LogContentProvider(logs, logLoader);
  const proposedDocuments = new ProposedContentProvider(diffs);

  const refreshTasks = async (): Promise<void> => {
    if (!api.running) {
      return;
    }
    try {
      store.replaceAll((await api.listTasks()).tasks);
    } catch (error) {
      output.error(`listTasks failed: ${errorMessage(error)}`);
    }
  };

  controller = new ServerController(output, {
    onTaskChanged: ({ task, removed }) => {
      if (removed) {
        store.remove(task.taskId);
        diffs.forget(task.taskId);
        logs.forget(task.taskId);
        logLoader.forget(task.taskId);
        return;
      }
      const previous = store.get(task.taskId);
      if (store.upsert(task)) {
        diffs.forget(task.taskId);
        void notifyFinished(previous, task, async () => {
          const { task: detail } = await api.getTask(task.taskId);
          store.setDetail(detail);
          return detail;
        });
      }
    },
    onTaskLog: (event) => {
      logs.push(event);
      logDocuments.refreshTask(event.taskId);
    },
    onStateChanged: (state) => status.setServerState(state),
    onStarted: () => {
      // A restarted server may have logged what this window did not hear.
      logLoader.reset();
      void refreshTasks();
    },
  });
  const server = controller;

  const unsubscribe = store.onDidChange(() => {
    status.update();
    const { ready } = store.counts();
    view.badge = ready > 0 ? { value: ready, tooltip: `${ready} task${ready === 1 ? "" : "s"} ready to review` } : undefined;
  });

  context.subscriptions.push(
    output,
    status,
    usage,
    diffs,
    tree,
    view,
    reports,
    logDocuments,
    proposedDocuments,
    server,
    { dispose: unsubscribe },
    vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, logDocuments),
    vscode.workspace.registerTextDocumentContentProvider(PROPOSED_SCHEME, proposedDocuments),
    ...registerCommands({
      api,
      store,
      diffs,
      logs,
      logLoader,
      reports,
      output,
      refreshTasks,
      restartServer: () => server.restart(),
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("errand.statusBar")) {
        status.update();
      }
      if (SERVER_SETTINGS.some((key) => event.affectsConfiguration(key))) {
        const choice = await vscode.window.showInformationMessage(
          "errand: restart the server to use the new settings? Running tasks keep their state.",
          "Restart",
        );
        if (choice === "Restart") {
          await server.restart();
        }
      }
    }),
  );

  void server.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
