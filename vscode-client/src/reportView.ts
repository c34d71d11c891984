// The task report: Markdown from report.ts, rendered in a webview so that citations can
// be command links that open the cited file range or log lines.
import * as vscode from "vscode";
import { errorMessage } from "./errors";
import type { Task } from "./protocol";
import { renderReport } from "./report";
import { renderMarkdown, reportLinks, REPORT_COMMANDS } from "./reportMarkdown";
import type { TaskDetails } from "./taskDetails";
import type { TaskStore } from "./taskStore";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function html(webview: vscode.Webview, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src ${webview.cspSource} https: data:;">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground);
         padding: 0 26px 26px; line-height: 1.55; max-width: 960px; }
  h1 { font-size: 1.6em; border-bottom: 1px solid var(--vscode-panel-border); padding-bottom: .3em; }
  h2 { font-size: 1.25em; margin-top: 1.4em; } h3 { font-size: 1.1em; margin-top: 1.2em; }
  a { color: var(--vscode-textLink-foreground); text-decoration: none; } a:hover { text-decoration: underline; }
  code { font-family: var(--vscode-editor-font-family); background: var(--vscode-textCodeBlock-background); padding: 1px 4px; border-radius: 3px; }
  pre { background: var(--vscode-textCodeBlock-background); padding: 8px 12px; overflow-x: auto; border-radius: 4px; }
  pre code { padding: 0; background: none; }
  blockquote { margin: 0; padding: 2px 14px; border-left: 3px solid var(--vscode-textBlockQuote-border); background: var(--vscode-textBlockQuote-background); }
  table { border-collapse: collapse; margin: 6px 0; } th, td { border: 1px solid var(--vscode-panel-border); padding: 3px 10px; text-align: left; }
  del { color: var(--vscode-errorForeground); }
  blockquote.warnings { border-left: 4px solid var(--vscode-editorWarning-foreground, #cca700);
                        background: var(--vscode-inputValidation-warningBackground, rgba(204,167,0,.12)); padding: 6px 14px; }
  blockquote.warnings ul { margin: 4px 0; padding-left: 20px; }
</style></head>
<body>${body}</body></html>`;
}

/** One webview panel per task, refreshed when the task changes. */
export class ReportPanels implements vscode.Disposable {
  private readonly panels = new Map<string, { panel: vscode.WebviewPanel; attempt: number | undefined; updatedAt: string }>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly details: TaskDetails,
    private readonly store: TaskStore,
  ) {
    this.unsubscribe = store.onDidChange(() => {
      for (const [taskId, entry] of this.panels) {
        const summary = store.get(taskId);
        if (summary && summary.updatedAt !== entry.updatedAt) {
          void this.render(taskId);
        }
      }
    });
  }

  async show(taskId: string, attempt?: number): Promise<void> {
    let entry = this.panels.get(taskId);
    if (!entry) {
      const title = this.store.get(taskId)?.title ?? taskId;
      const panel = vscode.window.createWebviewPanel(
        "errand.report",
        `errand: ${title}`,
        { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
        { enableCommandUris: [...REPORT_COMMANDS], enableScripts: false, retainContextWhenHidden: false },
      );
      entry = { panel, attempt, updatedAt: "" };
      this.panels.set(taskId, entry);
      panel.onDidDispose(() => this.panels.delete(taskId));
    } else {
      entry.attempt = attempt;
      entry.panel.reveal();
    }
    await this.render(taskId);
  }

  private async render(taskId: string): Promise<void> {
    const entry = this.panels.get(taskId);
    if (!entry) {
      return;
    }
    let task: Task;
    // The state about to be shown: the change event of the fetch below must not make
    // this panel render again (it does once when the summary held was older).
    entry.updatedAt = this.store.get(taskId)?.updatedAt ?? "";
    try {
      task = await this.details.fetch(taskId);
      entry.updatedAt = task.updatedAt;
    } catch (error) {
      entry.updatedAt = ""; // the next change of the task tries again
      entry.panel.webview.html = html(entry.panel.webview, taskId, `<p>Could not load task ${escapeHtml(taskId)}: ${escapeHtml(errorMessage(error))}</p>`);
      return;
    }
    entry.panel.title = `errand: ${task.title}`;
    const body = renderMarkdown(renderReport(task, reportLinks(taskId), Date.now(), entry.attempt));
    entry.panel.webview.html = html(entry.panel.webview, task.title, body);
  }

  dispose(): void {
    this.unsubscribe();
    for (const { panel } of this.panels.values()) {
      panel.dispose();
    }
    this.panels.clear();
  }
}
