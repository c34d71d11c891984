// The task list: tasks, their attempts as children, and each attempt's changed files.
import * as path from "node:path";
import * as vscode from "vscode";
import { alertBadge, alertItems, attemptAlerts, itemText, taskAlerts, type AlertItem } from "./alerts";
import { errorMessage } from "./errors";
import {
  checksText,
  countChecks,
  diffStatText,
  elapsedMs,
  formatDuration,
  isActive,
  isInterrupted,
  stateIcon,
  stateLabel,
  taskDescription,
} from "./format";
import type { Attempt, FileStat, Task, TaskSummary } from "./protocol";
import type { TaskDetails } from "./taskDetails";
import type { TaskStore } from "./taskStore";
import { taskUsage, totalUsage, usageText, type UsageTotals } from "./usage";

export type TaskNode = { kind: "task"; taskId: string };
export type AttemptNode = { kind: "attempt"; taskId: string; attempt: number };
export type FileNode = { kind: "file"; taskId: string; attempt: number; file: FileStat };
export type MessageNode = { kind: "message"; taskId: string; text: string };
export type Node = TaskNode | AttemptNode | FileNode | MessageNode;

function themeIcon(item: Pick<TaskSummary, "status" | "reason">): vscode.ThemeIcon {
  const icon = stateIcon(item);
  return new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
}

/** Space-separated tokens the package.json menus match with `viewItem =~ /\bword\b/`. */
function contextTokens(kind: "task" | "attempt", summary: TaskSummary, attempt?: Attempt): string {
  const status = attempt?.status ?? summary.status;
  const tokens: string[] = [kind, `status-${status}`];
  const files = attempt ? (attempt.diffStat?.files ?? 0) : (summary.diffStat?.files ?? 0);
  if (status === "completed" && summary.mode === "code" && files > 0) {
    tokens.push("diff");
    if (!summary.applied) {
      tokens.push("applicable");
    }
  }
  if (isActive(status)) {
    tokens.push("active");
  } else if (kind === "task") {
    tokens.push("finished");
  }
  // errand's daemon died while it ran: Resume carries it on.
  if (isInterrupted(attempt ?? summary)) {
    tokens.push("interrupted");
  }
  return tokens.join(" ");
}

/** Alerts (plain text: they quote the model) and token usage, for tooltips. */
function appendDetails(md: vscode.MarkdownString, alerts: readonly AlertItem[], usage: UsageTotals | undefined): void {
  for (const item of alerts) {
    md.appendMarkdown("\n\n$(warning) ");
    md.appendText(itemText(item));
  }
  if (usage && usage.attempts > 0) {
    md.appendMarkdown("\n\n");
    md.appendText(usageText(usage));
  }
}

function taskTooltip(task: TaskSummary, detail: Task | undefined): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${task.title.replace(/[*_`[\]]/g, "\\$&")}**\n\n`);
  const stat = diffStatText(task.diffStat);
  const checks = checksText(task.checksPassed ?? 0, task.checksFailed ?? 0);
  md.appendMarkdown(
    `$(${stateIcon(task).id.replace("~spin", "")}) ${stateLabel(task)} · ${task.mode === "ask" ? "question" : "code"} · ${formatDuration(elapsedMs(task, Date.now()))}`,
  );
  if (stat) {
    md.appendMarkdown(` · ${task.diffStat?.files ?? 0} file(s) ${stat}`);
  }
  if (checks) {
    md.appendMarkdown(` · checks ${checks}`);
  }
  if (task.applied) {
    md.appendMarkdown(" · applied");
  }
  if (task.reason) {
    md.appendMarkdown(`\n\n${task.reason.replace(/[*_`[\]]/g, "\\$&")}`);
  }
  if (detail) {
    appendDetails(md, alertItems(taskAlerts(detail)), taskUsage(detail));
  }
  return md;
}

export class TaskTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly unsubscribe: () => void;
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(
    private readonly store: TaskStore,
    private readonly details: TaskDetails,
  ) {
    this.unsubscribe = store.onDidChange(() => this.changed.fire(undefined));
    // Elapsed times of running tasks tick.
    this.ticker = setInterval(() => {
      if (store.counts().running + store.counts().queued > 0) {
        this.changed.fire(undefined);
      }
    }, 2000);
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  getParent(node: Node): Node | undefined {
    switch (node.kind) {
      case "task":
        return undefined;
      case "attempt":
      case "message":
        return { kind: "task", taskId: node.taskId };
      case "file":
        return { kind: "attempt", taskId: node.taskId, attempt: node.attempt };
    }
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (!node) {
      return this.store.list().map((t) => ({ kind: "task", taskId: t.taskId }));
    }
    try {
      if (node.kind === "task") {
        const task = await this.details.get(node.taskId);
        const attempts = task.attempts ?? [];
        if (attempts.length === 0) {
          return [{ kind: "message", taskId: node.taskId, text: isActive(task.status) ? "Waiting for a sandbox\u2026" : "No attempts" }];
        }
        return attempts.map((a) => ({ kind: "attempt", taskId: node.taskId, attempt: a.attempt }));
      }
      if (node.kind === "attempt") {
        const task = await this.details.get(node.taskId);
        const attempt = task.attempts?.find((a) => a.attempt === node.attempt);
        return (attempt?.files ?? []).map((file) => ({ kind: "file", taskId: node.taskId, attempt: node.attempt, file }));
      }
    } catch (error) {
      return [{ kind: "message", taskId: node.taskId, text: `Could not load: ${errorMessage(error)}` }];
    }
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.kind) {
      case "task":
        return this.taskItem(node);
      case "attempt":
        return this.attemptItem(node);
      case "file":
        return this.fileItem(node);
      case "message": {
        const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
        item.iconPath = new vscode.ThemeIcon("info");
        return item;
      }
    }
  }

  private taskItem(node: TaskNode): vscode.TreeItem {
    const task = this.store.get(node.taskId);
    if (!task) {
      return new vscode.TreeItem("(gone)");
    }
    const item = new vscode.TreeItem(task.title, vscode.TreeItemCollapsibleState.Collapsed);
    item.id = `task:${task.taskId}`;
    const detail = this.store.detail(task.taskId);
    item.description = taskDescription(task, Date.now(), detail ? alertItems(taskAlerts(detail)).length : 0);
    item.iconPath = themeIcon(task);
    item.tooltip = taskTooltip(task, detail);
    item.contextValue = contextTokens("task", task);
    item.accessibilityInformation = { label: `${task.title}, ${stateLabel(task)}, ${item.description}` };
    item.command = { command: "errand.openTask", title: "Open Task", arguments: [node] };
    return item;
  }

  private attemptItem(node: AttemptNode): vscode.TreeItem {
    const task = this.store.detail(node.taskId);
    const summary = this.store.get(node.taskId);
    const attempt = task?.attempts?.find((a) => a.attempt === node.attempt);
    const files = attempt?.files?.length ?? 0;
    const item = new vscode.TreeItem(
      `Attempt ${node.attempt}`,
      files > 0
        ? (task?.attempts?.length ?? 0) > 1
          ? vscode.TreeItemCollapsibleState.Collapsed
          : vscode.TreeItemCollapsibleState.Expanded
        : vscode.TreeItemCollapsibleState.None,
    );
    item.id = `attempt:${node.taskId}:${node.attempt}`;
    if (attempt && summary) {
      const { passed, failed } = countChecks(attempt.checks);
      const parts = [stateLabel(attempt)];
      const stat = diffStatText(attempt.diffStat);
      if (stat) {
        parts.push(stat);
      }
      const checks = checksText(passed, failed);
      if (checks) {
        parts.push(`checks ${checks}`);
      }
      const alerts = alertItems(attemptAlerts(attempt));
      const badge = alertBadge(alerts.length);
      if (badge) {
        parts.push(badge);
      }
      item.description = parts.join(" · ");
      item.iconPath = themeIcon(attempt);
      item.contextValue = contextTokens("attempt", summary, attempt);
      const tooltip = new vscode.MarkdownString(undefined, true);
      tooltip.appendMarkdown(`**Attempt ${node.attempt}** \u2014 ${stateLabel(attempt)}`);
      if (attempt.reason) {
        tooltip.appendMarkdown("\n\n");
        tooltip.appendText(attempt.reason);
      }
      appendDetails(tooltip, alerts, totalUsage([attempt.usage]));
      item.tooltip = tooltip;
    }
    item.command = { command: "errand.openTask", title: "Open Task", arguments: [node] };
    return item;
  }

  private fileItem(node: FileNode): vscode.TreeItem {
    const file = node.file;
    const item = new vscode.TreeItem(path.posix.basename(file.path), vscode.TreeItemCollapsibleState.None);
    item.id = `file:${node.taskId}:${node.attempt}:${file.path}`;
    const dir = path.posix.dirname(file.path);
    const stat = file.binary ? "binary" : `+${file.added ?? 0} \u2212${file.removed ?? 0}`;
    item.description = `${dir === "." ? "" : `${dir} · `}${file.change === "modified" ? "" : `${file.change} · `}${stat}`;
    item.resourceUri = vscode.Uri.file(`/${file.path}`);
    item.tooltip = `${file.path} — ${file.change}, ${stat}`;
    item.accessibilityInformation = { label: `${file.path}, ${file.change}, ${stat}` };
    item.contextValue = "file diff";
    item.command = {
      command: "errand.previewDiff",
      title: "Preview Diff",
      arguments: [node],
    };
    return item;
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.unsubscribe();
    this.changed.dispose();
  }
}

/** The view's badge: how many tasks are ready to review. Returns the unsubscribe function. */
export function showReadyBadge(view: vscode.TreeView<Node>, store: TaskStore): () => void {
  return store.onDidChange(() => {
    const { ready } = store.counts();
    view.badge = ready > 0 ? { value: ready, tooltip: `${ready} task${ready === 1 ? "" : "s"} ready to review` } : undefined;
  });
}
