// Pure: a task's report as Markdown: the summary with citations as links, the alerts,
// changed files, checks table, token usage. The links come from a LinkBuilder so that
// this module knows nothing about VS Code.
import type { ReportStep } from "./choices";
import { countChecks, diffStatText, elapsedMs, formatDuration, isInterrupted, reasonText, stateLabel } from "./format";
import { escapeMarkdown, escapeTableCell, type LinkBuilder } from "./markdownText";
import type { Attempt, Task } from "./protocol";
import { alertBlock } from "./reportAlerts";
import { linkCitations } from "./reportCitations";
import { totalUsage, usageText } from "./usage";

export type { LinkBuilder } from "./markdownText";

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

const CODE_STEPS: readonly [ReportStep, string][] = [
  ["previewDiff", "Preview diff"],
  ["apply", "Apply"],
  ["applyFiles", "Apply files\u2026"],
  ["createBranch", "Create branch\u2026"],
  ["followUp", "Follow up\u2026"],
  ["showLog", "Log"],
];
const ANSWER_STEPS: readonly [ReportStep, string][] = [
  ["followUp", "Follow up\u2026"],
  ["showLog", "Log"],
];

/** An attempt errand's daemon was running when it died. */
const INTERRUPTED_STEPS: readonly [ReportStep, string][] = [
  ["resume", "Resume"],
  ["showLog", "Log"],
];

function stepsOf(task: Task, attempt: Attempt): readonly [ReportStep, string][] {
  if (isInterrupted(attempt)) {
    return INTERRUPTED_STEPS;
  }
  if (attempt.status !== "completed") {
    return [];
  }
  return task.mode === "code" && (attempt.diffStat?.files ?? 0) > 0 ? CODE_STEPS : ANSWER_STEPS;
}

/** `Preview diff · Apply · …`: the next steps on a completed attempt; `Resume · Log` on an interrupted one. */
function stepsLine(task: Task, attempt: Attempt, links: LinkBuilder): string[] {
  if (!links.action) {
    return [];
  }
  const steps = stepsOf(task, attempt);
  const shown: string[] = [];
  for (const [step, label] of steps) {
    const href = links.action(step, attempt.attempt);
    if (href) {
      shown.push(`[${label}](${href})`);
    }
  }
  return shown.length > 0 ? [shown.join(" \u00b7 "), ""] : [];
}

function summaryLines(attempt: Attempt, links: LinkBuilder, sub: string): string[] {
  const out = [`${sub} Summary`, ""];
  if (attempt.report && attempt.report.trim() !== "") {
    out.push(linkCitations(attempt.report.trim(), attempt, links), "");
  } else if (attempt.status === "completed") {
    out.push("_The agent wrote no summary._", "");
  } else {
    out.push(`_No report yet (${stateLabel(attempt).toLowerCase()})._`, "");
  }
  return out;
}

function filesLines(attempt: Attempt, links: LinkBuilder, sub: string): string[] {
  const files = attempt.files ?? [];
  if (files.length === 0) {
    return [];
  }
  const out = [`${sub} Files changed`, ""];
  for (const f of files) {
    const name = f.change === "renamed" && f.oldPath ? `${f.oldPath} \u2192 ${f.path}` : f.path;
    const stat = f.binary ? "binary" : `+${f.added ?? 0} \u2212${f.removed ?? 0}`;
    const link = f.change === "deleted" ? escapeMarkdown(name) : `[${escapeMarkdown(name)}](${links.file(f.path, 1, 1)})`;
    out.push(`- ${link} \u2014 ${f.change}, ${stat}`);
  }
  out.push("");
  return out;
}

function checksLines(attempt: Attempt, links: LinkBuilder, sub: string): string[] {
  const checks = attempt.checks ?? [];
  if (checks.length === 0) {
    return [`${sub} Checks`, "", "_No checks ran._", ""];
  }
  const { passed, failed } = countChecks(checks);
  const out = [`${sub} Checks`, "", `${passed} passed, ${failed} failed.`, "", "| Result | Command | Exit | Time | Output |", "|---|---|---:|---:|---|"];
  for (const c of checks) {
    const mark = c.passed ? "\u2713 passed" : "\u2717 **failed**";
    const log = c.chunkId ? `[${escapeMarkdown(c.chunkId)}](${links.chunk(attempt.attempt, c.chunkId, 1, 1)})` : "";
    const command = escapeTableCell(c.command).replace(/`/g, "'");
    out.push(`| ${mark} | \`${command}\` | ${c.exitCode} | ${formatDuration(c.durationMs)} | ${log} |`);
  }
  out.push("");
  return out;
}

function usageLines(attempt: Attempt, sub: string): string[] {
  const usage = attempt.usage;
  const environment = environmentText(attempt);
  if (!usage && !environment) {
    return [];
  }
  const out = [`${sub} Usage`, ""];
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
  return out;
}

/** One attempt: steps, summary, alerts, files, checks, usage; `heading` is set when there are several. */
function attemptSection(task: Task, attempt: Attempt, links: LinkBuilder, heading: string): string[] {
  const out: string[] = [];
  if (heading) {
    const stat = diffStatText(attempt.diffStat);
    out.push(`${heading} Attempt ${attempt.attempt} \u2014 ${stateLabel(attempt)}${stat ? ` \u00b7 ${stat}` : ""}`, "");
  }
  out.push(...stepsLine(task, attempt, links));
  const why = reasonText(attempt);
  if (why) {
    out.push(`> **${stateLabel(attempt)}:** ${escapeMarkdown(why)}`, "");
  }
  const sub = heading ? `${heading}#` : "##";
  return [
    ...out,
    ...summaryLines(attempt, links, sub),
    ...alertBlock(attempt, links),
    ...filesLines(attempt, links, sub),
    ...checksLines(attempt, links, sub),
    ...usageLines(attempt, sub),
  ];
}

/** The whole report of a task, every attempt in turn (or only `onlyAttempt`). */
export function renderReport(task: Task, links: LinkBuilder, now: number, onlyAttempt?: number): string {
  const out: string[] = [];
  out.push(`# ${escapeMarkdown(task.title)}`, "");
  const meta = [
    stateLabel(task),
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
  const why = reasonText(task);
  // One attempt's reason is its task's: said once.
  if (why && !(task.attempts?.length === 1 && task.attempts[0]?.reason === task.reason)) {
    out.push(`> **${stateLabel(task)}:** ${escapeMarkdown(why)}`, "");
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
