// The status-bar monitor: `$(sync~spin) errand: 2 running · 3 ready · $0.42`; the
// tooltip has today's and all tasks' token usage and cost; click shows the task list.
import * as vscode from "vscode";
import { statusBarView, type ServerState } from "./format";
import type { TaskStore } from "./taskStore";
import type { UsageSummary } from "./usage";

export class StatusMonitor implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private server: ServerState = "starting";
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: TaskStore,
    private readonly usage: () => UsageSummary | undefined,
  ) {
    this.unsubscribe = store.onDidChange(() => this.update());
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
    const showCost = vscode.workspace.getConfiguration("errand").get<boolean>("statusBar.showCost", true);
    const view = statusBarView(this.store.counts(), this.server, this.usage(), showCost);
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip, true);
    this.item.tooltip = tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    this.item.accessibilityInformation = { label: view.text.replace(/\$\([^)]*\)\s*/g, "") };
  }

  dispose(): void {
    this.unsubscribe();
    this.item.dispose();
  }
}
