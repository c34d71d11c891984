// The status-bar monitor: `$(sync~spin) errand: 2 running · 3 ready`; click shows the task list.
import * as vscode from "vscode";
import { statusBarView, type ServerState } from "./format";
import type { TaskStore } from "./taskStore";

export class StatusMonitor implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private server: ServerState = "starting";

  constructor(private readonly store: TaskStore) {
    this.item = vscode.window.createStatusBarItem("errand.status", vscode.StatusBarAlignment.Left, 50);
    this.item.name = "errand";
    this.item.command = "errand.showTasks";
    this.update();
    this.item.show();
  }

  setServerState(state: ServerState): void {
    this.server = state;
    this.update();
  }

  update(): void {
    const view = statusBarView(this.store.counts(), this.server);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    this.item.accessibilityInformation = { label: view.text.replace(/\$\([^)]*\)\s*/g, "") };
  }

  dispose(): void {
    this.item.dispose();
  }
}
