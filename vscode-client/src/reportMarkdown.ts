// Pure: the report's links (command URIs the report webview allows) and its Markdown
// rendering. No `vscode` import, so it is unit-tested in plain Node.
import MarkdownIt from "markdown-it";
import { STEP_COMMANDS, type ReportStep } from "./choices";
import type { LinkBuilder } from "./markdownText";

const REPORT_STEPS: readonly ReportStep[] = ["previewDiff", "apply", "applyFiles", "createBranch", "followUp", "resume", "showLog"];

/** Commands a report may link to; the webview allows no others. */
export const REPORT_COMMANDS: readonly string[] = ["errand.openCitation", ...REPORT_STEPS.map((step) => STEP_COMMANDS[step])];

function commandLink(command: string, arg: unknown): string {
  return `command:${command}?${encodeURIComponent(JSON.stringify([arg]))}`;
}

export function reportLinks(taskId: string): LinkBuilder {
  return {
    file: (path, startLine, endLine) => commandLink("errand.openCitation", { kind: "file", taskId, path, startLine, endLine }),
    chunk: (attempt, chunkId, startLine, endLine) =>
      commandLink("errand.openCitation", { kind: "chunk", taskId, attempt, chunkId, startLine, endLine }),
    action: (step, attempt) => commandLink(STEP_COMMANDS[step], { taskId, attempt }),
  };
}

const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false });
// Allow the command: links the report modules build (markdown-it rejects unknown schemes by default).
const defaultValidate = markdown.validateLink.bind(markdown);
markdown.validateLink = (url: string) =>
  REPORT_COMMANDS.some((c) => url.startsWith(`command:${c}?`)) || defaultValidate(url);

/**
 * Renders report Markdown; a blockquote whose text starts with ⚠ (reportAlerts.ts's
 * alert block) gets class="warnings" so that it stands out.
 */
export function renderMarkdown(source: string): string {
  const tokens = markdown.parse(source, {});
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token?.type !== "blockquote_open") {
      continue;
    }
    const inline = tokens.slice(i + 1).find((t) => t.type === "inline");
    if (inline?.content.startsWith("\u26a0")) {
      token.attrSet("class", "warnings");
    }
  }
  return markdown.renderer.render(tokens, markdown.options, {});
}
