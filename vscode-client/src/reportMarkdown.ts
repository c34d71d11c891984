// Pure: the report's links (command URIs the report webview allows) and its Markdown
// rendering. No `vscode` import, so it is unit-tested in plain Node.
import MarkdownIt from "markdown-it";
import type { LinkBuilder, ReportAction } from "./report";

/** Commands a report may link to; the webview allows no others. */
export const REPORT_COMMANDS = [
  "errand.openCitation",
  "errand.previewDiff",
  "errand.applyTask",
  "errand.applyFiles",
  "errand.createBranchFromTask",
  "errand.followUpTask",
  "errand.showLog",
] as const;

function commandLink(command: (typeof REPORT_COMMANDS)[number], arg: unknown): string {
  return `command:${command}?${encodeURIComponent(JSON.stringify([arg]))}`;
}

export function reportLinks(taskId: string): LinkBuilder {
  const actions: Record<ReportAction, (typeof REPORT_COMMANDS)[number] | undefined> = {
    previewDiff: "errand.previewDiff",
    apply: "errand.applyTask",
    applyFiles: "errand.applyFiles",
    createBranch: "errand.createBranchFromTask",
    followUp: "errand.followUpTask",
    showLog: "errand.showLog",
    discard: undefined,
  };
  return {
    file: (path, startLine, endLine) => commandLink("errand.openCitation", { kind: "file", taskId, path, startLine, endLine }),
    chunk: (attempt, chunkId, startLine, endLine) =>
      commandLink("errand.openCitation", { kind: "chunk", taskId, attempt, chunkId, startLine, endLine }),
    action: (name, attempt) => {
      const command = actions[name];
      return command ? commandLink(command, { taskId, attempt }) : undefined;
    },
  };
}

const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false });
// Allow the command: links report.ts builds (markdown-it rejects unknown schemes by default).
const defaultValidate = markdown.validateLink.bind(markdown);
markdown.validateLink = (url: string) =>
  REPORT_COMMANDS.some((c) => url.startsWith(`command:${c}?`)) || defaultValidate(url);

/**
 * Renders report Markdown; a blockquote whose text starts with ⚠ (report.ts's
 * warnings) gets class="warnings" so that it stands out.
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
