// Pure: what the report modules share. Escaping for untrusted text (the model's report,
// server text that quotes it), and the LinkBuilder through which they link to files,
// log lines and actions without knowing about VS Code.
import type { ReportStep } from "./choices";

export interface LinkBuilder {
  /** Opens lines [startLine, endLine] (1-based) of a file of the workspace. */
  file(path: string, startLine: number, endLine: number): string;
  /** Opens lines [startLine, endLine] (1-based) of a command's output in the task log. */
  chunk(attempt: number, chunkId: string, startLine: number, endLine: number): string;
  /** A next step on the task (previewDiff, apply, …); undefined leaves it out. */
  action?(step: ReportStep, attempt: number): string | undefined;
}

export function escapeMarkdown(text: string): string {
  return text.replace(/([\\`*_{}[\]()#+!|<>~])/g, "\\$1");
}

export function escapeTableCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** Neutralises links the model wrote to `command:` URIs; the report is untrusted text. */
export function neutraliseCommandLinks(markdown: string): string {
  return markdown.replace(/\]\(\s*<?command:/gi, "](#command-link-removed:").replace(/<command:/gi, "&lt;command:");
}
