// Tasks' getTask results, through the store's cache: the one place that asks the
// server for a task's detail and caches the answer.
import type { ErrandApi } from "./api";
import type { Task } from "./protocol";
import type { TaskStore } from "./taskStore";

export class TaskDetails {
  constructor(
    private readonly api: Pick<ErrandApi, "getTask">,
    private readonly store: TaskStore,
  ) {}

  /** The cached detail while the task has not changed, else the server's. */
  async get(taskId: string): Promise<Task> {
    return this.store.detail(taskId) ?? this.fetch(taskId);
  }

  /** Asks the server (getTask) and caches its answer. */
  async fetch(taskId: string): Promise<Task> {
    const { task } = await this.api.getTask(taskId);
    this.store.setDetail(task);
    return task;
  }
}
