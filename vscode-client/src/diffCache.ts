// getDiff results per task attempt, dropped when what Apply would write may have changed.
import * as vscode from "vscode";
import type { ErrandApi } from "./api";
import { fileChanges, type FileChange } from "./edits";
import type { GetDiffResult } from "./protocol";

export interface AttemptDiff {
  result: GetDiffResult;
  changes: FileChange[];
}

/**
 * getDiff results per task attempt. getDiff's edit is what Apply would write now,
 * against the files as they are, so a result is dropped when the task changes and
 * when a file it covers changes (in an editor or on disk); open previews then ask
 * again (onDidChange, at most every 300 ms per task).
 */
export class DiffCache implements vscode.Disposable {
  private readonly entries = new Map<string, Promise<AttemptDiff>>();
  private readonly settled = new Map<string, AttemptDiff>();
  private readonly changed = new vscode.EventEmitter<string>();
  /** Fires a task id whose previews should be recomputed. */
  readonly onDidChange = this.changed.event;
  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly api: ErrandApi) {
    const watcher = vscode.workspace.createFileSystemWatcher("**/*");
    this.disposables.push(
      this.changed,
      watcher,
      watcher.onDidChange((uri) => this.fileChanged(uri)),
      watcher.onDidCreate((uri) => this.fileChanged(uri)),
      watcher.onDidDelete((uri) => this.fileChanged(uri)),
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.contentChanges.length > 0) {
          this.fileChanged(event.document.uri);
        }
      }),
      vscode.workspace.onDidCloseTextDocument((document) => this.fileChanged(document.uri)),
    );
  }

  get(taskId: string, attempt?: number): Promise<AttemptDiff> {
    const key = `${taskId}#${attempt ?? "default"}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.api.getDiff(taskId, attempt).then((result) => {
        const diff = { result, changes: fileChanges(result.edit) };
        if (this.entries.get(key) === entry) {
          this.settled.set(key, diff);
          if (attempt === undefined && result.attempt !== undefined) {
            const exact = `${taskId}#${result.attempt}`;
            this.entries.set(exact, Promise.resolve(diff));
            this.settled.set(exact, diff);
          }
        }
        return diff;
      });
      entry.catch(() => {
        if (this.entries.get(key) === entry) {
          this.entries.delete(key);
        }
      });
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Asks the server again (what Apply would write may have changed). */
  refresh(taskId: string, attempt?: number): Promise<AttemptDiff> {
    this.forget(taskId);
    return this.get(taskId, attempt);
  }

  /** Drops a task's results and tells its open previews. */
  forget(taskId: string): void {
    if (this.drop(taskId)) {
      this.announce(taskId);
    }
  }

  private drop(taskId: string): boolean {
    let dropped = false;
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(`${taskId}#`)) {
        this.entries.delete(key);
        this.settled.delete(key);
        dropped = true;
      }
    }
    return dropped;
  }

  private fileChanged(uri: vscode.Uri): void {
    if (uri.scheme !== "file") {
      return;
    }
    const key = uri.toString();
    const tasks = new Set<string>();
    for (const [entryKey, diff] of this.settled) {
      const covers =
        diff.changes.some((c) => c.uri === key || c.oldUri === key) ||
        (diff.result.conflictDetails ?? []).some((c) => uri.path.endsWith(`/${c.path}`));
      if (covers) {
        tasks.add(entryKey.slice(0, entryKey.lastIndexOf("#")));
      }
    }
    for (const taskId of tasks) {
      this.forget(taskId);
    }
  }

  private announce(taskId: string): void {
    if (this.pending.has(taskId)) {
      return;
    }
    this.pending.set(
      taskId,
      setTimeout(() => {
        this.pending.delete(taskId);
        this.changed.fire(taskId);
      }, 300),
    );
  }

  dispose(): void {
    for (const timer of this.pending.values()) {
      clearTimeout(timer);
    }
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}
