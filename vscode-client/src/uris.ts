// Pure: the query strings of errand's virtual documents.
//   errand-proposed:/<path>?<query>   proposed content of one file of a task's diff
//   errand-log:/<task title>.log?<query>   a task attempt's command log
export const PROPOSED_SCHEME = "errand-proposed";
export const LOG_SCHEME = "errand-log";

export interface ProposedRef {
  taskId: string;
  attempt: number;
  /** The file's URI in the workspace (its new URI for renames). */
  target: string;
  /** "empty" serves an empty document (the left side for added files). */
  side: "proposed" | "empty";
}

export function encodeProposed(ref: ProposedRef): string {
  const params = new URLSearchParams({
    task: ref.taskId,
    attempt: String(ref.attempt),
    target: ref.target,
    side: ref.side,
  });
  return params.toString();
}

export function decodeProposed(query: string): ProposedRef | undefined {
  const params = new URLSearchParams(query);
  const taskId = params.get("task");
  const attempt = Number(params.get("attempt"));
  const target = params.get("target");
  const side = params.get("side") === "empty" ? "empty" : "proposed";
  if (!taskId || !target || !Number.isInteger(attempt) || attempt < 1) {
    return undefined;
  }
  return { taskId, attempt, target, side };
}

export interface LogRef {
  taskId: string;
  attempt: number;
}

export function encodeLog(ref: LogRef): string {
  return new URLSearchParams({ task: ref.taskId, attempt: String(ref.attempt) }).toString();
}

export function decodeLog(query: string): LogRef | undefined {
  const params = new URLSearchParams(query);
  const taskId = params.get("task");
  const attempt = Number(params.get("attempt"));
  if (!taskId || !Number.isInteger(attempt) || attempt < 1) {
    return undefined;
  }
  return { taskId, attempt };
}

/** A file name safe for a virtual document's path, from a task title. */
export function slug(title: string, max = 40): string {
  const cleaned = title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return (cleaned || "task").slice(0, max).replace(/-+$/, "");
}
