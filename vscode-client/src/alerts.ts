// Pure: the server's typed alerts (Attempt.alerts) as a reviewer reads them. The
// client shows each alert's text and builds links from its typed fields (chunkId,
// path, lines); it never reads meaning out of the text.
import type { Alert, Attempt } from "./protocol";

/** One thing to read: an alert, or unresolved citations together (one line, as the server words them). */
export type AlertItem = { kind: "alert"; alert: Alert } | { kind: "citations"; alerts: Alert[] };

/** What a link from an alert opens: a command's output in the task log, or lines of a file. */
export type AlertTarget =
  | { kind: "chunk"; chunkId: string; startLine: number; endLine: number }
  | { kind: "file"; path: string; startLine: number; endLine: number };

export function attemptAlerts(attempt: Pick<Attempt, "alerts">): Alert[] {
  return attempt.alerts ?? [];
}

function alertKey(alert: Alert): string {
  return JSON.stringify([alert.kind, alert.text, alert.chunkId ?? null, alert.path ?? null, alert.startLine ?? null, alert.endLine ?? null]);
}

/** A task's alerts over all its attempts, each once (attempts often share one, e.g. no sandbox). */
export function taskAlerts(task: { attempts?: readonly Pick<Attempt, "alerts">[] }): Alert[] {
  const seen = new Map<string, Alert>();
  for (const alert of (task.attempts ?? []).flatMap(attemptAlerts)) {
    const key = alertKey(alert);
    if (!seen.has(key)) {
      seen.set(key, alert);
    }
  }
  return [...seen.values()];
}

/** The alerts as items to read: unresolved citations become one item, where the first of them stood. */
export function alertItems(alerts: readonly Alert[]): AlertItem[] {
  const items: AlertItem[] = [];
  let citations: Alert[] | undefined;
  for (const alert of alerts) {
    if (alert.kind !== "citation") {
      items.push({ kind: "alert", alert });
    } else if (citations) {
      citations.push(alert);
    } else {
      citations = [alert];
      items.push({ kind: "citations", alerts: citations });
    }
  }
  return items;
}

/** `L3` or `L3-5`. */
export function lineLabel(start: number, end: number): string {
  return end > start ? `L${start}-${end}` : `L${start}`;
}

/** Where an alert points, from its typed fields; undefined when it points nowhere. */
export function alertTarget(alert: Alert): AlertTarget | undefined {
  const startLine = alert.startLine ?? 1;
  const endLine = Math.max(startLine, alert.endLine ?? startLine);
  if (alert.chunkId) {
    return { kind: "chunk", chunkId: alert.chunkId, startLine, endLine };
  }
  if (alert.path) {
    return { kind: "file", path: alert.path, startLine, endLine };
  }
  return undefined;
}

/**
 * How a link to the target reads: `src/a.py:L3-5`, `c1-2:L4`, or only the chunk id
 * when the alert names a whole command (a claim's failing run).
 */
export function targetLabel(alert: Alert, target: AlertTarget): string {
  const name = target.kind === "chunk" ? target.chunkId : target.path;
  return alert.startLine === undefined || alert.startLine === null ? name : `${name}:${lineLabel(target.startLine, target.endLine)}`;
}

/** `1 citation did not resolve:` / `3 citations did not resolve:`. */
export function citationsHeading(count: number): string {
  return `${count} citation${count === 1 ? "" : "s"} did not resolve:`;
}

/** An item as plain text, for tooltips and notifications. */
export function itemText(item: AlertItem): string {
  if (item.kind === "alert") {
    return item.alert.text;
  }
  const labels = item.alerts.map((alert) => {
    const target = alertTarget(alert);
    return target ? targetLabel(alert, target) : alert.text;
  });
  return `${citationsHeading(item.alerts.length)} ${labels.join(", ")}`;
}

/** `⚠ 2`: how many items a reviewer should read; empty when none. */
export function alertBadge(count: number): string {
  return count > 0 ? `\u26a0 ${count}` : "";
}
