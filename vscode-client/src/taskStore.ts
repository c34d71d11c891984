// Pure: the client's copy of the task list, kept current by errand/taskChanged.
import type { Task, TaskSummary } from "./protocol";
import { countTasks, type TaskCounts } from "./format";

export type Listener = () => void;

export class TaskStore {
  private readonly tasks = new Map<string, TaskSummary>();
  private readonly details = new Map<string, Task>();
  /** The updatedAt of the last errand/taskChanged taken, by task. */
  private readonly announced = new Map<string, number>();
  private readonly listeners = new Set<Listener>();

  /** Subscribe to changes; returns the unsubscribe function. */
  onDidChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private fire(): void {
    for (const listener of [...this.listeners]) {
      listener();
    }
  }

  /**
   * Records a task's new state. An update older than the one held is ignored, so that
   * a slow listTasks reply cannot undo a newer notification. Returns whether it changed.
   */
  upsert(task: TaskSummary): boolean {
    const held = this.tasks.get(task.taskId);
    if (held && Date.parse(held.updatedAt) > Date.parse(task.updatedAt)) {
      return false;
    }
    if (held && JSON.stringify(held) === JSON.stringify(task)) {
      return false;
    }
    this.hold(task);
    this.fire();
    return true;
  }

  /**
   * Records what errand/taskChanged says. Notifications arrive in the order the server
   * sent them, so one is set aside only when an earlier notification was newer. A reply
   * that looked newer (getTask, listTasks) does not count: the server may stamp a state
   * it never announces (an attempt's progress), and a daemon that died before saving that
   * stamp comes back with an older one, when the new daemon re-announces the task
   * interrupted. Returns whether it changed.
   */
  announce(task: TaskSummary): boolean {
    const at = Date.parse(task.updatedAt);
    const last = this.announced.get(task.taskId);
    if (last !== undefined && last > at) {
      return false;
    }
    this.announced.set(task.taskId, at);
    const held = this.tasks.get(task.taskId);
    if (held && JSON.stringify(held) === JSON.stringify(task)) {
      return false;
    }
    this.hold(task);
    this.fire();
    return true;
  }

  /** Holds a task's summary; a cached detail of an older state is dropped with it. */
  private hold(task: TaskSummary): void {
    this.tasks.set(task.taskId, task);
    if (this.details.get(task.taskId)?.updatedAt !== task.updatedAt) {
      this.details.delete(task.taskId);
    }
  }

  /** Replaces the whole list (after listTasks). */
  replaceAll(tasks: readonly TaskSummary[]): void {
    const incoming = new Map(tasks.map((t) => [t.taskId, t]));
    for (const id of [...this.tasks.keys()]) {
      if (!incoming.has(id)) {
        this.drop(id);
      }
    }
    for (const task of tasks) {
      const held = this.tasks.get(task.taskId);
      if (!held || Date.parse(held.updatedAt) <= Date.parse(task.updatedAt)) {
        this.hold(task);
      }
    }
    this.fire();
  }

  /** The task is gone (discarded). */
  forget(taskId: string): void {
    if (this.drop(taskId)) {
      this.fire();
    }
  }

  private drop(taskId: string): boolean {
    this.details.delete(taskId);
    this.announced.delete(taskId);
    return this.tasks.delete(taskId);
  }

  get(taskId: string): TaskSummary | undefined {
    return this.tasks.get(taskId);
  }

  /** Newest first. */
  list(): TaskSummary[] {
    return [...this.tasks.values()].sort(
      (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.taskId.localeCompare(a.taskId),
    );
  }

  counts(): TaskCounts {
    return countTasks(this.tasks.values());
  }

  /**
   * A cached getTask result. It is always as new as the summary held: a summary that
   * moves on drops it.
   */
  detail(taskId: string): Task | undefined {
    return this.details.get(taskId);
  }

  /**
   * Caches a getTask result. Listeners hear of it (the task list shows alerts from
   * it) unless it is the detail already held.
   */
  setDetail(task: Task): void {
    const summaryHeld = this.tasks.get(task.taskId);
    if (summaryHeld && Date.parse(summaryHeld.updatedAt) > Date.parse(task.updatedAt)) {
      return; // an older reply than what taskChanged already said
    }
    const held = this.details.get(task.taskId);
    const same = held !== undefined && JSON.stringify(held) === JSON.stringify(task);
    this.details.set(task.taskId, task);
    // getTask carries the summary fields too.
    const { attempts: _attempts, prompt: _prompt, ...summary } = task;
    if (!this.upsert(summary) && !same && this.tasks.has(task.taskId)) {
      this.fire();
    }
  }
}
