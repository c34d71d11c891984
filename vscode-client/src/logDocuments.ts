// The command log of a task attempt (errand-log:): the stored log, loaded once, then
// what streams in.
import * as vscode from "vscode";
import type { ErrandApi } from "./api";
import { errorMessage } from "./errors";
import type { LogBook } from "./logs";
import { decodeLog, encodeLog, LOG_SCHEME, slug } from "./uris";

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
