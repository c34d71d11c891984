// Pure: a task's report as Markdown — summary with citations as links, warnings, changed files,
// checks table, token usage. The links come from a LinkBuilder so that this module
// knows nothing about VS Code.
import type { Attempt, Citation, Task } from "./protocol";
import { countChecks, diffStatText, elapsedMs, formatDuration, statusLabel } from "./format";
import { totalUsage, usageText } from "./usage";

export interface LinkBuilder {
  /** Opens lines [startLine, endLine] (1-based) of a file of the workspace. */
  file(path: string, startLine: number, endLine: number): string;
  /** Opens lines [startLine, endLine] (1-based) of a command's output in the task log. */
  chunk(attempt: number, chunkId: string, startLine: number, endLine: number): string;
  /** An action on the task (previewDiff, apply, …); undefined leaves it out. */
  action?(name: ReportAction, attempt: number): string | undefined;
}

export type ReportAction = "previewDiff" | "apply" | "applyFiles" | "createBranch" | "followUp" | "showLog" | "discard";

/** `【F:src/a.py†L10-L20】` and `【chunk_3†L2】`, as the agent writes them. */
const CITATION = /【([^†】]+)†L(\d+)(?:-L?(\d+))?】/g;

export function escapeMarkdown(text: string): string {
  return text.replace(/([\\`*_{}[\]()#+!|<>~])/g, "\\$1");
}

function escapeTableCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function lineLabel(start: number, end: number): string {
  return end > start ? `L${start}-${end}` : `L${start}`;
}

/** Neutralises links the model wrote to `command:` URIs; the report is untrusted text. */
export function neutraliseCommandLinks(markdown: string): string {
  return markdown.replace(/\]\(\s*<?command:/gi, "](#command-link-removed:").replace(/<command:/gi, "&lt;command:");
}

function findCitation(citations: readonly Citation[], target: string, start: number, end: number): Citation | undefined {
  return citations.find(
    (c) =>
      c.startLine === start &&
      c.endLine === end &&
      (c.kind === "file" ? c.path === target : c.chunkId === target),
  );
}

/** The report text with each citation marker turned into a link (or flagged). */
export function linkCitations(report: string, attempt: Attempt, links: LinkBuilder): string {
  const citations = attempt.citations ?? [];
  const text = neutraliseCommandLinks(report);
  return text.replace(CITATION, (_match, rawTarget: string, s: string, e: string | undefined, offset: number) => {
    const gap = offset > 0 && !/\s/.test(text.charAt(offset - 1)) ? " " : "";
    const start = Number(s);
    const end = e ? Number(e) : start;
    const isFile = rawTarget.startsWith("F:");
    const target = isFile ? rawTarget.slice(2) : rawTarget;
    const known = findCitation(citations, target, start, end);
    const label = `${escapeMarkdown(target)}:${lineLabel(start, end)}`;
    if (known && !known.resolved) {
      return `${gap}~~${label}~~ \u26a0 (unresolved)`;
    }
    const href = isFile ? links.file(target, start, end) : links.chunk(attempt.attempt, target, start, end);
    return `${gap}[${label}](${href})`;
  });
}

/** `chunk c1-3` in a server warning: links to that command's output. */
const CHUNK_REF = /\bchunk ([A-Za-z0-9][\w-]*)/g;

function linkChunkRefs(text: string, attempt: number, links: LinkBuilder): string {
  let out = "";
  let last = 0;
  for (const match of text.matchAll(CHUNK_REF)) {
    const id = match[1] ?? "";
    const index = match.index ?? 0;
    out += `${escapeMarkdown(text.slice(last, index))}chunk [${escapeMarkdown(id)}](${links.chunk(attempt, id, 1, 1)})`;
    last = index + match[0].length;
  }
  return out + escapeMarkdown(text.slice(last));
}

/**
 * A server warning as Markdown: escaped (it quotes the model's report), except that
 * `backticked` parts stay code and `chunk <id>` links to that command's output.
 */
export function warningMarkdown(text: string, attempt: number, links: LinkBuilder): string {
  const parts = text.replace(/\r?\n/g, " ").split("`");
  return parts
    .map((part, i) => {
      const isCode = i % 2 === 1 && i < parts.length - 1 && part.trim() !== "";
      if (isCode) {
        return `\`${part}\``;
      }
      return linkChunkRefs(i % 2 === 1 ? `\`${part}` : part, attempt, links);
    })
    .join("");
}

/**
 * What a reviewer must know before applying, right after the summary: the server's
 * warnings (unresolved citations, a report claiming tests pass while they failed, no
 * sandbox, …) as one blockquote starting with ⚠ (the report view colours it).
 */
function warningBlock(attempt: Attempt, links: LinkBuilder): string[] {
  const warnings = (attempt.warnings ?? []).map((w) => warningMarkdown(w, attempt.attempt, links));
  const unresolved = (attempt.citations ?? []).filter((c) => !c.resolved);
  if (unresolved.length > 0 && !(attempt.warnings ?? []).some((w) => /did not resolve/.test(w))) {
    warnings.push(
      `${unresolved.length} citation${unresolved.length === 1 ? "" : "s"} did not match the recorded files or logs: ` +
        unresolved.map((c) => `\`${escapeTableCell(c.text).replace(/`/g, "'")}\``).join(", "),
    );
  }
  const first = warnings[0];
  if (first === undefined) {
    return [];
  }
  if (warnings.length === 1) {
    return [`> \u26a0 **Warning:** ${first}`, ""];
  }
  return [`> \u26a0 **${warnings.length} warnings**`, ">", ...warnings.map((w) => `> - ${w}`), ""];
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** `Ran in the bwrap sandbox, on an overlay copy using 60 KB of its own: why overlay.` */
function environmentText(attempt: Attempt): string {
  const parts: string[] = [];
  if (attempt.sandbox) {
    parts.push(attempt.sandbox === "none" ? "without a sandbox" : `in the ${escapeMarkdown(attempt.sandbox)} sandbox`);
  }
  let why = "";
  if (attempt.workspaceKind) {
    const size = typeof attempt.workspaceBytes === "number" ? ` using ${formatBytes(attempt.workspaceBytes)} of its own` : "";
    parts.push(`on a${/^[aeiou]/i.test(attempt.workspaceKind) ? "n" : ""} ${escapeMarkdown(attempt.workspaceKind)} copy${size}`);
    why = attempt.workspaceReason ? `: ${escapeMarkdown(attempt.workspaceReason)}` : "";
  }
  return parts.length > 0 ? `_Ran ${parts.join(", ")}${why}._` : "";
}

function attemptSection(task: Task, attempt: Attempt, links: LinkBuilder, heading: string): string[] {
  const out: string[] = [];
  if (heading) {
    const stat = diffStatText(attempt.diffStat);
    out.push(`${heading} Attempt ${attempt.attempt} \u2014 ${statusLabel(attempt.status)}${stat ? ` \u00b7 ${stat}` : ""}`, "");
  }
  const actions: string[] = [];
  if (links.action && attempt.status === "completed") {
    const wanted: [ReportAction, string][] =
      task.mode === "code" && (attempt.diffStat?.files ?? 0) > 0
        ? [
            ["previewDiff", "$(diff) Preview diff"],
            ["apply", "Apply"],
            ["applyFiles", "Apply files\u2026"],
            ["createBranch", "Create branch\u2026"],
            ["followUp", "Follow up\u2026"],
            ["showLog", "Log"],
          ]
        : [
            ["followUp", "Follow up\u2026"],
            ["showLog", "Log"],
          ];
    for (const [name, label] of wanted) {
      const href = links.action(name, attempt.attempt);
      if (href) {
        actions.push(`[${label.replace("$(diff) ", "")}](${href})`);
      }
    }
  }
  if (actions.length > 0) {
    out.push(actions.join(" \u00b7 "), "");
  }
  if (attempt.reason) {
    out.push(`> **${statusLabel(attempt.status)}:** ${escapeMarkdown(attempt.reason)}`, "");
  }

  const sub = heading ? `${heading}#` : "##";
  out.push(`${sub} Summary`, "");
  if (attempt.report && attempt.report.trim() !== "") {
    out.push(linkCitations(attempt.report.trim(), attempt, links), "");
  } else if (attempt.status === "completed") {
    out.push("_The agent wrote no summary._", "");
  } else {
    out.push(`_No report yet (${attempt.status})._`, "");
  }

  out.push(...warningBlock(attempt, links));

  const files = attempt.files ?? [];
  if (files.length > 0) {
    out.push(`${sub} Files changed`, "");
    for (const f of files) {
      const name = f.change === "renamed" && f.oldPath ? `${f.oldPath} \u2192 ${f.path}` : f.path;
      const stat = f.binary ? "binary" : `+${f.added ?? 0} \u2212${f.removed ?? 0}`;
      const link = f.change === "deleted" ? escapeMarkdown(name) : `[${escapeMarkdown(name)}](${links.file(f.path, 1, 1)})`;
      out.push(`- ${link} \u2014 ${f.change}, ${stat}`);
    }
    out.push("");
  }

  const checks = attempt.checks ?? [];
  out.push(`${sub} Checks`, "");
  if (checks.length === 0) {
    out.push("_No checks ran._", "");
  } else {
    const { passed, failed } = countChecks(checks);
    out.push(`${passed} passed, ${failed} failed.`, "");
    out.push("| Result | Command | Exit | Time | Output |", "|---|---|---:|---:|---|");
    for (const c of checks) {
      const mark = c.passed ? "\u2713 passed" : "\u2717 **failed**";
      const log = c.chunkId ? `[${escapeMarkdown(c.chunkId)}](${links.chunk(attempt.attempt, c.chunkId, 1, 1)})` : "";
      out.push(
        `| ${mark} | \`${escapeTableCell(c.command).replace(/`/g, "'")}\` | ${c.exitCode} | ${formatDuration(c.durationMs)} | ${log} |`,
      );
    }
    out.push("");
  }

  const usage = attempt.usage;
  const environment = environmentText(attempt);
  if (usage || environment) {
    out.push(`${sub} Usage`, "");
    if (usage) {
      const parts = [usageText(totalUsage([usage]))];
      if (attempt.steps) {
        parts.push(`${attempt.steps} step${attempt.steps === 1 ? "" : "s"}`);
      }
      out.push(parts.join(" \u00b7 "), "");
    }
    if (environment) {
      out.push(environment, "");
    }
  }
  return out;
}

/** The whole report of a task, every attempt in turn (or only `onlyAttempt`). */
export function renderReport(task: Task, links: LinkBuilder, now: number, onlyAttempt?: number): string {
  const out: string[] = [];
  out.push(`# ${escapeMarkdown(task.title)}`, "");
  const meta = [
    statusLabel(task.status),
    task.mode === "ask" ? "question" : "code task",
    formatDuration(elapsedMs(task, now)),
  ];
  const stat = diffStatText(task.diffStat);
  if (stat) {
    meta.push(stat);
  }
  if (task.applied) {
    meta.push("applied");
  }
  out.push(`**${meta.join(" \u00b7 ")}** \u2014 task \`${task.taskId}\``, "");
  if (task.prompt) {
    out.push(...task.prompt.trim().split(/\r?\n/).map((line) => `> ${line}`), "");
  }
  if (task.reason) {
    out.push(`> **${statusLabel(task.status)}:** ${escapeMarkdown(task.reason)}`, "");
  }
  const attempts = (task.attempts ?? []).filter((a) => onlyAttempt === undefined || a.attempt === onlyAttempt);
  if (attempts.length === 0) {
    out.push("_No attempt has started yet._", "");
  }
  const multi = attempts.length > 1;
  for (const attempt of attempts) {
    out.push(...attemptSection(task, attempt, links, multi ? "##" : ""));
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}
