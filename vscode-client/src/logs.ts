// Pure: the command log of each task, built from the server's stored log
// (errand.getLog) and kept current by errand/taskLog notifications. Each attempt's log
// is a plain-text document; a command's output starts on a known line so that a
// terminal citation (`【chunk_id†L3-L5】`) maps to document lines.
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
  /** The model's text is streaming into the last lines (`# …`). */
  private inMessage = false;

  push(event: TaskLog): void {
    if (event.kind !== "message" || event.command) {
      this.closeMessage();
    }
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
        if (event.command) {
          // A tool's summary, e.g. apply_patch and the files it changed.
          const body = (event.text ?? "").split(/\r?\n/).filter((line) => line.trim() !== "");
          this.lines.push(`\u270e ${event.command}`, ...body.map((line) => `  ${line}`), "");
        } else {
          this.appendMessage(event.text ?? "");
        }
        break;
      case "status":
        this.closePartial();
        this.lines.push(`-- ${event.status ?? event.text ?? "status"} --`);
        break;
    }
  }

  /** The model's text arrives in pieces: they continue the same `# ` lines. */
  private appendMessage(text: string): void {
    if (text === "") {
      return;
    }
    const pieces = text.split(/\r?\n/);
    if (!this.inMessage) {
      this.lines.push("# ");
      this.inMessage = true;
    }
    this.lines[this.lines.length - 1] += pieces[0] ?? "";
    for (const piece of pieces.slice(1)) {
      this.lines.push(`# ${piece}`);
    }
  }

  private closeMessage(): void {
    if (!this.inMessage) {
      return;
    }
    this.inMessage = false;
    if (this.lines[this.lines.length - 1]?.trim() === "#") {
      this.lines.pop();
    }
    this.lines.push("");
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

/** What makes two log entries the same entry (the stored log and the notifications agree on it). */
function entryKey(event: TaskLog): string {
  return JSON.stringify([
    event.attempt,
    event.kind,
    event.chunkId ?? null,
    event.command ?? null,
    event.text ?? null,
    event.exitCode ?? null,
    event.durationMs ?? null,
    event.status ?? null,
  ]);
}

/**
 * The entries of `live` that `stored` lacks. `live` arrived while the stored log was
 * being fetched: its first entries may already be the stored log's last ones (the
 * server flushes and notifies them before it reads the store); the rest came later.
 */
export function newerThan(stored: readonly TaskLog[], live: readonly TaskLog[]): TaskLog[] {
  const storedKeys = stored.map(entryKey);
  const liveKeys = live.map(entryKey);
  for (let overlap = Math.min(stored.length, live.length); overlap > 0; overlap--) {
    let matches = true;
    for (let i = 0; i < overlap && matches; i++) {
      matches = storedKeys[stored.length - overlap + i] === liveKeys[i];
    }
    if (matches) {
      return live.slice(overlap);
    }
  }
  return [...live];
}

/** Every task's log, for as long as this window lives. */
export class LogBook {
  private readonly logs = new Map<string, Map<number, AttemptLog>>();
  /** Tasks whose stored log is being fetched, with the notifications that arrived meanwhile. */
  private readonly loading = new Map<string, TaskLog[]>();
  private readonly maxLinesPerAttempt: number;

  constructor(maxLinesPerAttempt = 20000) {
    this.maxLinesPerAttempt = maxLinesPerAttempt;
  }

  push(event: TaskLog): void {
    const pending = this.loading.get(event.taskId);
    if (pending) {
      pending.push(event);
      return;
    }
    this.append(event);
  }

  private append(event: TaskLog): void {
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

  /** The task's stored log is being fetched: hold its notifications until it arrives. */
  beginLoad(taskId: string): void {
    if (!this.loading.has(taskId)) {
      this.loading.set(taskId, []);
    }
  }

  /**
   * The task's stored log arrived: it replaces what this window had seen, followed by
   * the notifications that came in since (those not already in it).
   */
  finishLoad(taskId: string, stored: readonly TaskLog[]): void {
    const pending = this.loading.get(taskId) ?? [];
    this.loading.delete(taskId);
    this.logs.delete(taskId);
    for (const event of [...stored, ...newerThan(stored, pending)]) {
      this.append(event);
    }
  }

  /** Fetching the stored log failed: keep what was seen, and what arrived meanwhile. */
  abortLoad(taskId: string): void {
    const pending = this.loading.get(taskId) ?? [];
    this.loading.delete(taskId);
    for (const event of pending) {
      this.append(event);
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
    this.loading.delete(taskId);
  }
}
