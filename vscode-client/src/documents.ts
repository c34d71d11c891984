// Virtual documents: the proposed content of a task's files (errand-proposed:) and the
// command log of a task attempt (errand-log:).
import * as vscode from "vscode";
import type { ErrandApi } from "./api";
import { fileChanges, proposedContent, type FileChange } from "./edits";
import type { GetDiffResult } from "./protocol";
import type { LogBook } from "./logs";
import { decodeLog, decodeProposed, encodeLog, encodeProposed, LOG_SCHEME, PROPOSED_SCHEME, slug } from "./uris";

export interface AttemptDiff {
  result: GetDiffResult;
  changes: FileChange[];
}

/** getDiff results per task attempt, dropped when the task changes. */
export class DiffCache {
  private readonly entries = new Map<string, Promise<AttemptDiff>>();

  constructor(private readonly api: ErrandApi) {}

  get(taskId: string, attempt?: number): Promise<AttemptDiff> {
    const key = `${taskId}#${attempt ?? "best"}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.api.getDiff(taskId, attempt).then((result) => ({ result, changes: fileChanges(result.edit) }));
      entry.catch(() => this.entries.delete(key));
      this.entries.set(key, entry);
    }
    return entry;
  }

  forget(taskId: string): void {
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(`${taskId}#`)) {
        this.entries.delete(key);
      }
    }
  }
}

/** The text of a workspace file: its open buffer if any, else the file on disk ("" if absent). */
export async function currentText(uri: vscode.Uri): Promise<string> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open) {
    return open.getText();
  }
  try {
    return new TextDecoder("utf-8").decode(await vscode.workspace.fs.readFile(uri));
  } catch {
    return "";
  }
}

export function proposedUri(taskId: string, attempt: number, change: FileChange, side: "proposed" | "empty"): vscode.Uri {
  const target = vscode.Uri.parse(change.uri);
  return vscode.Uri.from({
    scheme: PROPOSED_SCHEME,
    path: target.path,
    query: encodeProposed({ taskId, attempt, target: change.uri, side }),
  });
}

/**
 * Serves a file's proposed content: the TextEdits errand.getDiff gives for that file
 * applied to the file's current text (the open buffer if any, else the file on disk).
 * The edits are made against the task's snapshot, so while the file is unchanged since
 * the task started (the usual case) this is exactly what Apply writes. When it has
 * changed, previewDiff says so: Apply then does a three-way merge instead.
 */
export class ProposedContentProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly diffs: DiffCache) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = decodeProposed(uri.query);
    if (!ref || ref.side === "empty") {
      return "";
    }
    const { changes } = await this.diffs.get(ref.taskId, ref.attempt);
    const change = changes.find((c) => c.uri === ref.target);
    if (!change) {
      return "";
    }
    const source = change.kind === "added" ? "" : await currentText(vscode.Uri.parse(change.oldUri ?? change.uri));
    return proposedContent(change, source);
  }

  refresh(uri: vscode.Uri): void {
    this.changed.fire(uri);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export function logUri(taskId: string, attempt: number, title: string): vscode.Uri {
  return vscode.Uri.from({
    scheme: LOG_SCHEME,
    path: `/${slug(title)}-${attempt}.log`,
    query: encodeLog({ taskId, attempt }),
  });
}

/** Serves a task attempt's log as it streams in. */
export class LogContentProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly logs: LogBook) {}

  provideTextDocumentContent(uri: vscode.Uri): string {
    const ref = decodeLog(uri.query);
    if (!ref) {
      return "";
    }
    const text = this.logs.text(ref.taskId, ref.attempt);
    return text !== ""
      ? text
      : "# No command output has reached this window for this attempt yet.\n# Commands and their output appear here live while the task runs.\n";
  }

  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();

  /** Tells open log documents of a task that new lines arrived (at most 5 times a second). */
  refreshTask(taskId: string): void {
    if (this.pending.has(taskId)) {
      return;
    }
    this.pending.set(
      taskId,
      setTimeout(() => {
        this.pending.delete(taskId);
        for (const document of vscode.workspace.textDocuments) {
          if (document.uri.scheme === LOG_SCHEME && decodeLog(document.uri.query)?.taskId === taskId) {
            this.changed.fire(document.uri);
          }
        }
      }, 200),
    );
  }

  dispose(): void {
    for (const timer of this.pending.values()) {
      clearTimeout(timer);
    }
    this.changed.dispose();
  }
}
