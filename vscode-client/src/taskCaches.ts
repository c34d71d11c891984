// Pure: everything this window keeps about a task (its summary, diffs, log), forgotten
// in one call when the task is gone (discarded here or elsewhere).
export interface Forgets {
  forget(taskId: string): void;
}

export class TaskCaches implements Forgets {
  constructor(private readonly caches: readonly Forgets[]) {}

  forget(taskId: string): void {
    for (const cache of this.caches) {
      cache.forget(taskId);
    }
  }
}
