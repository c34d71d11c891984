// Keeps every listed task's token usage and cost (from errand.getTask) for the status
// bar. A task is fetched again only when its updatedAt moves, a second after the last
// change, one request at a time.
import * as vscode from "vscode";
import type { ErrandApi } from "./api";
import { errorMessage } from "./errors";
import type { Task } from "./protocol";
import type { TaskDetails } from "./taskDetails";
import type { TaskStore } from "./taskStore";
import { summarizeUsage, taskUsage, type TaskUsage, type UsageSummary } from "./usage";

export class UsageTracker implements vscode.Disposable {
  private readonly known = new Map<string, TaskUsage & { updatedAt: string }>();
  private readonly queue = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private draining = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: TaskStore,
    private readonly api: Pick<ErrandApi, "running">,
    private readonly details: TaskDetails,
    private readonly output: vscode.LogOutputChannel,
    private readonly onChange: () => void,
  ) {
    this.unsubscribe = store.onDidChange(() => this.sync());
  }

  summary(now = new Date()): UsageSummary {
    return summarizeUsage(this.known.values(), now);
  }

  private sync(): void {
    const listed = new Set<string>();
    let changed = false;
    for (const summary of this.store.list()) {
      listed.add(summary.taskId);
      const detail = this.store.detail(summary.taskId);
      if (detail) {
        changed = this.record(detail) || changed;
      } else if (this.known.get(summary.taskId)?.updatedAt !== summary.updatedAt) {
        this.queue.add(summary.taskId);
      }
    }
    for (const taskId of [...this.known.keys()]) {
      if (!listed.has(taskId)) {
        this.known.delete(taskId);
        changed = true;
      }
    }
    if (changed) {
      this.onChange();
    }
    this.schedule();
  }

  private record(task: Task): boolean {
    const held = this.known.get(task.taskId);
    if (held && held.updatedAt === task.updatedAt) {
      return false;
    }
    this.known.set(task.taskId, { updatedAt: task.updatedAt, createdAt: task.createdAt, usage: taskUsage(task) });
    this.queue.delete(task.taskId);
    return true;
  }

  private schedule(): void {
    if (this.timer || this.draining || this.queue.size === 0) {
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, 1000);
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.size > 0 && this.api.running) {
        const taskId = this.queue.values().next().value as string;
        this.queue.delete(taskId);
        if (!this.store.get(taskId)) {
          continue;
        }
        try {
          const task = await this.details.fetch(taskId);
          if (this.record(task)) {
            this.onChange();
          }
        } catch (error) {
          this.output.debug(`usage of task ${taskId}: ${errorMessage(error)}`);
        }
      }
    } finally {
      this.draining = false;
      this.schedule();
    }
  }

  dispose(): void {
    if (this.timer) {
      clearTimeout(this.timer);
    }
    this.unsubscribe();
  }
}
