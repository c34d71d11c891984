// Sending work: Delegate Task…, Delegate Task (Best of N)…, Ask… and Follow Up….
import * as vscode from "vscode";
import type { Mode } from "../protocol";
import { TASKS } from "../target";
import { titleOf, workspaceFolderPath, type CommandDeps } from "./deps";
import { resolveTarget } from "./pick";

const PROMPTS: Record<Mode, { prompt: string; placeHolder: string }> = {
  code: {
    prompt: "What should a background agent do? It works in a sandboxed copy of this workspace; nothing changes here until you apply it.",
    placeHolder: "fix the flaky test in tests/test_io.py",
  },
  ask: {
    prompt: "A question about this codebase. The agent reads and runs code in a sandboxed copy and answers with citations; it changes nothing.",
    placeHolder: "how does the retry logic in the HTTP client work?",
  },
};

function inputTitle(mode: Mode, attempts: number): string {
  if (mode === "ask") {
    return "errand: Ask";
  }
  return attempts > 1 ? `errand: Delegate Task (${attempts} attempts)` : "errand: Delegate Task";
}

/** Asks for the prompt and sends the task; the task list shows it from the server's notification. */
async function delegate(deps: CommandDeps, mode: Mode, attempts: number): Promise<void> {
  const workspace = workspaceFolderPath();
  if (!workspace) {
    void vscode.window.showWarningMessage("errand: open a folder inside a git repository first; tasks run on a copy of it.");
    return;
  }
  const prompt = (
    await vscode.window.showInputBox({
      title: inputTitle(mode, attempts),
      ...PROMPTS[mode],
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() === "" ? "Describe the task in a sentence or two." : undefined),
    })
  )?.trim();
  if (!prompt) {
    return;
  }
  const { taskId } = await deps.api.delegate({ prompt, mode, attempts, workspace });
  deps.output.info(`delegated ${mode} task ${taskId}: ${prompt}`);
  vscode.window.setStatusBarMessage(`$(rocket) errand: ${mode === "ask" ? "question" : "task"} sent`, 4000);
  await deps.refreshTasks();
}

export function delegateTask(deps: CommandDeps): Promise<void> {
  return delegate(deps, "code", 1);
}

export async function delegateBestOf(deps: CommandDeps): Promise<void> {
  const picked = await vscode.window.showQuickPick(
    [2, 3, 4].map((n) => ({ label: `${n} attempts`, n })),
    { placeHolder: "How many independent attempts? You compare them and apply one." },
  );
  if (picked) {
    await delegate(deps, "code", picked.n);
  }
}

export function ask(deps: CommandDeps): Promise<void> {
  return delegate(deps, "ask", 1);
}

export async function followUpTask(deps: CommandDeps, arg: unknown): Promise<void> {
  const target = await resolveTarget(deps, arg, TASKS.finished, "Follow up on which task?", "no finished task to follow up on.");
  if (!target) {
    return;
  }
  const prompt = (
    await vscode.window.showInputBox({
      title: `errand: Follow up on \u201c${titleOf(deps, target.taskId)}\u201d`,
      prompt: "What next? The agent continues from this task's result, in its own copy.",
      placeHolder: "also add a test",
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() === "" ? "Say what to do next." : undefined),
    })
  )?.trim();
  if (!prompt) {
    return;
  }
  const { taskId } = await deps.api.followUp(target.taskId, prompt);
  deps.output.info(`follow-up ${taskId} of ${target.taskId}: ${prompt}`);
  vscode.window.setStatusBarMessage("$(reply) errand: follow-up sent", 4000);
  await deps.refreshTasks();
}
