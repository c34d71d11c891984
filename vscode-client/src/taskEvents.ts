// What the server's news does to this window's state: errand/taskChanged, errand/taskLog
// and a fresh listTasks.
import type { ErrandApi } from "./api";
import { errorMessage } from "./errors";
import type { DiffCache } from "./diffCache";
import { isActive, isInterrupted } from "./format";
import type { LogContentProvider, LogLoader } from "./logDocuments";
import type { LogBook } from "./logs";
import { notifyFinished } from "./notify";
import type { TaskChanged, TaskLog } from "./protocol";
import type { Forgets } from "./taskCaches";
import type { TaskDetails } from "./taskDetails";
import type { TaskStore } from "./taskStore";

export interface TaskEventParts {
  api: ErrandApi;
  store: TaskStore;
  details: TaskDetails;
  caches: Forgets;
  diffs: DiffCache;
  logs: LogBook;
  logLoader: Pick<LogLoader, "forget">;
  logDocuments: LogContentProvider;
  output: { error(message: string): void };
}

export class TaskEvents {
  constructor(private readonly parts: TaskEventParts) {}

  taskChanged({ task, removed }: TaskChanged): void {
    const { store, details, caches, diffs } = this.parts;
    if (removed) {
      caches.forget(task.taskId);
      return;
    }
    const previous = store.get(task.taskId);
    if (store.announce(task)) {
      // What Apply would write may have changed with the task.
      diffs.forget(task.taskId);
      if (previous && isActive(previous.status) && isInterrupted(task)) {
        // errand's daemon died while it ran: what it logged last may not have reached this
        // window. The log is loaded again from the store when it is next shown.
        this.parts.logLoader.forget(task.taskId);
        this.parts.logDocuments.refreshTask(task.taskId);
      }
      void notifyFinished(previous, task, () => details.fetch(task.taskId));
    }
  }

  taskLog(event: TaskLog): void {
    this.parts.logs.push(event);
    this.parts.logDocuments.refreshTask(event.taskId);
  }

  /** Asks the server for the whole task list (after a start, and after commands that change it). */
  async refresh(): Promise<void> {
    const { api, store, output } = this.parts;
    if (!api.running) {
      return;
    }
    try {
      store.replaceAll((await api.listTasks()).tasks);
    } catch (error) {
      output.error(`listTasks failed: ${errorMessage(error)}`);
    }
  }
}
