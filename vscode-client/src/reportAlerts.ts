// Pure: the report's alert block, right after the summary: what a reviewer must know
// before applying (a report claiming tests pass while they failed, citations that point
// nowhere, no sandbox, …), as one blockquote starting with ⚠ (the report view colours
// it). Each alert's text is shown as the server wrote it; its links come from its
// typed fields.
import { alertItems, alertTarget, attemptAlerts, citationsHeading, targetLabel, type AlertItem } from "./alerts";
import { escapeMarkdown, type LinkBuilder } from "./markdownText";
import type { Alert, Attempt } from "./protocol";

interface Link {
  label: string;
  href: string;
}

function alertLink(alert: Alert, attempt: number, links: LinkBuilder): Link | undefined {
  const target = alertTarget(alert);
  if (!target) {
    return undefined;
  }
  const href =
    target.kind === "chunk"
      ? links.chunk(attempt, target.chunkId, target.startLine, target.endLine)
      : links.file(target.path, target.startLine, target.endLine);
  return { label: targetLabel(alert, target), href };
}

/** The last place `label` stands in `text` as a whole word (not inside a longer id), or -1. */
function wordAt(text: string, label: string): number {
  for (let at = text.lastIndexOf(label); at >= 0; at = at > 0 ? text.lastIndexOf(label, at - 1) : -1) {
    const before = text.charAt(at - 1);
    const after = text.charAt(at + label.length);
    if (!/[\w-]/.test(before) && !/[\w-]/.test(after)) {
      return at;
    }
  }
  return -1;
}

/** Escaped plain text with `link` in place of the last whole-word mention of its label; undefined when none. */
function linkInPlain(text: string, link: Link): string | undefined {
  const at = wordAt(text, link.label);
  if (at < 0) {
    return undefined;
  }
  const after = text.slice(at + link.label.length);
  return `${escapeMarkdown(text.slice(0, at))}[${escapeMarkdown(link.label)}](${link.href})${escapeMarkdown(after)}`;
}

/**
 * An alert's text as Markdown: escaped (it quotes the model's report), except that
 * `backticked` parts stay code. Its link (the failing run of a claim, say) goes where
 * the text names its target outside code, else after the text.
 */
export function alertMarkdown(alert: Alert, attempt: number, links: LinkBuilder): string {
  const link = alertLink(alert, attempt, links);
  const parts = alert.text.replace(/\r?\n/g, " ").split("`");
  const isCode = (i: number) => i % 2 === 1 && i < parts.length - 1 && (parts[i] ?? "").trim() !== "";
  const rendered = parts.map((part, i) => (isCode(i) ? `\`${part}\`` : escapeMarkdown(i % 2 === 1 ? `\`${part}` : part)));
  if (!link) {
    return rendered.join("");
  }
  for (let i = parts.length - 1; i >= 0; i--) {
    const linked = isCode(i) ? undefined : linkInPlain(i % 2 === 1 ? `\`${parts[i]}` : (parts[i] ?? ""), link);
    if (linked !== undefined) {
      rendered[i] = linked;
      return rendered.join("");
    }
  }
  return `${rendered.join("")} ([${escapeMarkdown(link.label)}](${link.href}))`;
}

/** One item: an alert, or the unresolved citations each linked to what it cited. */
export function itemMarkdown(item: AlertItem, attempt: number, links: LinkBuilder): string {
  if (item.kind === "alert") {
    return alertMarkdown(item.alert, attempt, links);
  }
  const cited = item.alerts.map((alert) => {
    const link = alertLink(alert, attempt, links);
    return link ? `[${escapeMarkdown(link.label)}](${link.href})` : escapeMarkdown(alert.text);
  });
  return `${citationsHeading(item.alerts.length)} ${cited.join(", ")}`;
}

/** The attempt's alerts as a ⚠ blockquote (with its blank line), or nothing. */
export function alertBlock(attempt: Attempt, links: LinkBuilder): string[] {
  const items = alertItems(attemptAlerts(attempt)).map((item) => itemMarkdown(item, attempt.attempt, links));
  const first = items[0];
  if (first === undefined) {
    return [];
  }
  if (items.length === 1) {
    return [`> \u26a0 **Warning:** ${first}`, ""];
  }
  return [`> \u26a0 **${items.length} warnings**`, ">", ...items.map((item) => `> - ${item}`), ""];
}
