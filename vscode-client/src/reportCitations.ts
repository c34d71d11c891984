// Pure: the report's citations as links. The server found each citation in the report
// and resolved it (Attempt.citations); this module finds each one's exact text in the
// report and puts a link to the cited file lines or log lines in its place, or flags
// one that did not resolve.
import { lineLabel } from "./alerts";
import { escapeMarkdown, neutraliseCommandLinks, type LinkBuilder } from "./markdownText";
import type { Attempt, Citation } from "./protocol";

interface Span {
  start: number;
  end: number;
  citation: Citation;
}

/** Where the citations' texts stand in `text`, in order, without overlaps (the longer wins). */
export function citationSpans(text: string, citations: readonly Citation[]): Span[] {
  const spans: Span[] = [];
  for (const citation of citations) {
    const needle = citation.text;
    for (let at = needle ? text.indexOf(needle) : -1; at >= 0; at = text.indexOf(needle, at + needle.length)) {
      spans.push({ start: at, end: at + needle.length, citation });
    }
  }
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Span[] = [];
  for (const span of spans) {
    if (span.start >= (kept.at(-1)?.end ?? 0)) {
      kept.push(span);
    }
  }
  return kept;
}

function citationLink(citation: Citation, attempt: number, links: LinkBuilder): string {
  const target = (citation.kind === "file" ? citation.path : citation.chunkId) ?? "";
  if (target === "") {
    return escapeMarkdown(citation.text);
  }
  const { startLine: start, endLine: end } = citation;
  const label = `${escapeMarkdown(target)}:${lineLabel(start, end)}`;
  if (!citation.resolved) {
    return `~~${label}~~ \u26a0 (unresolved)`;
  }
  const href = citation.kind === "file" ? links.file(target, start, end) : links.chunk(attempt, target, start, end);
  return `[${label}](${href})`;
}

/** The report text with each citation turned into a link (or flagged). */
export function linkCitations(report: string, attempt: Attempt, links: LinkBuilder): string {
  const text = neutraliseCommandLinks(report);
  let out = "";
  let cursor = 0;
  for (const { start, end, citation } of citationSpans(text, attempt.citations ?? [])) {
    const gap = start > 0 && !/\s/.test(text.charAt(start - 1)) ? " " : "";
    out += `${text.slice(cursor, start)}${gap}${citationLink(citation, attempt.attempt, links)}`;
    cursor = end;
  }
  return out + text.slice(cursor);
}
