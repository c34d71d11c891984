// Pure: the live command log of each task, built from errand/taskLog notifications.
// Each attempt's log is a plain-text document; a command's output starts on a known
// line so that a terminal citation (`【chunk_id†L3-L5】`) maps to document lines.
import type { TaskLog } from "./protocol";
import { formatDuration } from "./format";

interface ChunkInfo {
  /** 0-based document line of the command's first output line. */
  outputLine: number;
}

class AttemptLog {
  readonly lines: string[] = [];
  readonly chunks = new Map<string, ChunkInfo>();
  /** Text of an output line still being written (no newline yet). */
  private partial = false;

  push(event: TaskLog): void {
    switch (event.kind) {
      case "commandStarted": {
        this.closePartial();
        const id = event.chunkId ? `  [${event.chunkId}]` : "";
        this.lines.push(`$ ${event.command ?? ""}${id}`);
        if (event.chunkId) {
          this.chunks.set(event.chunkId, { outputLine: this.lines.length });
        }
        break;
      }
      case "output":
        this.appendOutput(event.text ?? "");
        break;
      case "commandFinished": {
        this.closePartial();
        const code = event.exitCode ?? "?";
        const time = typeof event.durationMs === "number" ? ` in ${formatDuration(event.durationMs)}` : "";
        this.lines.push(`\u2192 exit ${code}${time}`, "");
        break;
      }
      case "message":
        this.closePartial();
        for (const line of (event.text ?? "").split(/\r?\n/)) {
          this.lines.push(`# ${line}`);
        }
        this.lines.push("");
        break;
      case "status":
        this.closePartial();
        this.lines.push(`-- ${event.status ?? event.text ?? "status"} --`);
        break;
    }
  }

  private appendOutput(text: string): void {
    if (text === "") {
      return;
    }
    const pieces = text.split(/\r?\n/);
    const first = pieces[0] ?? "";
    if (this.partial && this.lines.length > 0) {
      this.lines[this.lines.length - 1] += first;
    } else {
      this.lines.push(first);
    }
    this.lines.push(...pieces.slice(1));
    // Output ending with a newline leaves an empty last piece: the next output starts a new line.
    if (pieces.length > 1 && pieces[pieces.length - 1] === "") {
      this.lines.pop();
      this.partial = false;
    } else {
      this.partial = true;
    }
  }

  private closePartial(): void {
    this.partial = false;
  }
}

/** Every task's log, for as long as this window lives. */
export class LogBook {
  private readonly logs = new Map<string, Map<number, AttemptLog>>();
  private readonly maxLinesPerAttempt: number;

  constructor(maxLinesPerAttempt = 20000) {
    this.maxLinesPerAttempt = maxLinesPerAttempt;
  }

  push(event: TaskLog): void {
    let attempts = this.logs.get(event.taskId);
    if (!attempts) {
      attempts = new Map();
      this.logs.set(event.taskId, attempts);
    }
    let log = attempts.get(event.attempt);
    if (!log) {
      log = new AttemptLog();
      attempts.set(event.attempt, log);
    }
    if (log.lines.length < this.maxLinesPerAttempt) {
      log.push(event);
    }
  }

  has(taskId: string): boolean {
    return this.logs.has(taskId);
  }

  attempts(taskId: string): number[] {
    return [...(this.logs.get(taskId)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** The log document of one attempt; empty when nothing was streamed. */
  text(taskId: string, attempt: number): string {
    const log = this.logs.get(taskId)?.get(attempt);
    return log ? log.lines.join("\n") : "";
  }

  /**
   * 0-based document lines for lines [startLine, endLine] (1-based) of a command's
   * output; undefined when that chunk was not seen.
   */
  chunkRange(taskId: string, attempt: number, chunkId: string, startLine: number, endLine: number): { start: number; end: number } | undefined {
    const info = this.logs.get(taskId)?.get(attempt)?.chunks.get(chunkId);
    if (!info) {
      return undefined;
    }
    const start = info.outputLine + Math.max(1, startLine) - 1;
    const end = info.outputLine + Math.max(startLine, endLine) - 1;
    return { start, end };
  }

  forget(taskId: string): void {
    this.logs.delete(taskId);
  }
}
