// Virtual documents: the proposed content of a task's files (errand-proposed:) and the
// command log of a task attempt (errand-log:).
import * as vscode from "vscode";
import { errorMessage, type ErrandApi } from "./api";
import { fileChanges, proposedContent, type FileChange } from "./edits";
import type { GetDiffResult } from "./protocol";
import type { LogBook } from "./logs";
import { decodeLog, decodeProposed, encodeLog, encodeProposed, LOG_SCHEME, PROPOSED_SCHEME, slug } from "./uris";

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
        (diff.result.conflicts ?? []).some((m) => uri.path.endsWith(`/${m.split(": ")[0] ?? ""}`));
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

/** Whether a file's edits were made against text the file no longer has. */
function isStale(change: FileChange): boolean {
  const source = vscode.Uri.parse(change.oldUri ?? change.uri).toString();
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === source);
  if (typeof change.version === "number") {
    return open?.version !== change.version;
  }
  // Made against the disk: stale if the file is open with unsaved edits now.
  return change.kind !== "added" && open !== undefined && open.isDirty;
}

/**
 * Serves a file's proposed content: errand.getDiff's edit for that file applied to
 * the file's current text (the open buffer if any, else the file on disk). The edit is
 * what Apply would write now (merged with the user's edits where the file changed
 * since the task started), so the preview is exactly what Apply writes. An edit made
 * against an older version of the file is fetched again first. A file left out of the
 * edit (a conflict, or a change already applied) shows as unchanged.
 */
export class ProposedContentProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly diffs: DiffCache) {
    this.subscription = diffs.onDidChange((taskId) => {
      for (const document of vscode.workspace.textDocuments) {
        if (document.uri.scheme === PROPOSED_SCHEME && decodeProposed(document.uri.query)?.taskId === taskId) {
          this.changed.fire(document.uri);
        }
      }
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = decodeProposed(uri.query);
    if (!ref || ref.side === "empty") {
      return "";
    }
    const find = (changes: FileChange[]) => changes.find((c) => c.uri === ref.target);
    let change = find((await this.diffs.get(ref.taskId, ref.attempt)).changes);
    if (change && isStale(change)) {
      change = find((await this.diffs.refresh(ref.taskId, ref.attempt)).changes);
    }
    if (!change) {
      return currentText(vscode.Uri.parse(ref.target));
    }
    const source = change.kind === "added" ? "" : await currentText(vscode.Uri.parse(change.oldUri ?? change.uri));
    return proposedContent(change, source);
  }

  dispose(): void {
    this.subscription.dispose();
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

/**
 * Loads a task's stored log (errand.getLog) the first time this window needs it:
 * tasks from before a restart, and tasks this window did not watch from the start.
 * Notifications keep it current afterwards.
 */
export class LogLoader {
  private readonly loads = new Map<string, Promise<void>>();

  constructor(
    private readonly api: ErrandApi,
    private readonly logs: LogBook,
    private readonly onLoaded: (taskId: string) => void,
  ) {}

  ensure(taskId: string): Promise<void> {
    let load = this.loads.get(taskId);
    if (!load) {
      this.logs.beginLoad(taskId);
      load = this.api.getLog(taskId).then(
        ({ entries }) => {
          this.logs.finishLoad(taskId, entries);
          this.onLoaded(taskId);
        },
        (error: unknown) => {
          this.logs.abortLoad(taskId);
          this.loads.delete(taskId);
          throw error;
        },
      );
      this.loads.set(taskId, load);
    }
    return load;
  }

  /** After a server restart: notifications may have been missed, load again when asked. */
  reset(): void {
    this.loads.clear();
  }

  forget(taskId: string): void {
    this.loads.delete(taskId);
  }
}

/** Serves a task attempt's log: the stored log, then what streams in. */
export class LogContentProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly logs: LogBook,
    private readonly loader: LogLoader,
  ) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = decodeLog(uri.query);
    if (!ref) {
      return "";
    }
    try {
      await this.loader.ensure(ref.taskId);
    } catch (error) {
      const seen = this.logs.text(ref.taskId, ref.attempt);
      return `# Could not load the stored log: ${errorMessage(error)}\n${seen}`;
    }
    const text = this.logs.text(ref.taskId, ref.attempt);
    return text !== ""
      ? text
      : "# No log entries for this attempt yet.\n# Commands and their output appear here live while the task runs.\n";
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
