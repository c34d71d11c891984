// Pure: the next steps errand offers on a task. Notification buttons and the report's
// links name a step; this table says which command runs it, so the mapping from a
// choice to its command is written once.
export type Step = "open" | "previewDiff" | "apply" | "applyFiles" | "createBranch" | "followUp" | "resume" | "showLog";
/** The steps a report links to (it is already open). */
export type ReportStep = Exclude<Step, "open">;

export const STEP_COMMANDS = {
  open: "errand.openTask",
  previewDiff: "errand.previewDiff",
  apply: "errand.applyTask",
  applyFiles: "errand.applyFiles",
  createBranch: "errand.createBranchFromTask",
  followUp: "errand.followUpTask",
  resume: "errand.resumeTask",
  showLog: "errand.showLog",
} as const satisfies Record<Step, string>;

/** A notification's button: its label and the command it runs, with that command's arguments. */
export interface Choice {
  label: string;
  command: string;
  args?: readonly unknown[];
}

/** What a step's command acts on. */
export interface StepTarget {
  taskId: string;
  attempt?: number;
}

export function stepChoice(step: Step, label: string, target: StepTarget): Choice {
  const arg = target.attempt === undefined ? { taskId: target.taskId } : { taskId: target.taskId, attempt: target.attempt };
  return { label, command: STEP_COMMANDS[step], args: [arg] };
}

/** The choice whose label the user picked; undefined when the notification was dismissed. */
export function pickedChoice(choices: readonly Choice[], label: string | undefined): Choice | undefined {
  return label === undefined ? undefined : choices.find((c) => c.label === label);
}

/**
 * What errand offers when files of a task conflict with the workspace (nothing was
 * written): Apply Files… only while other files could still be applied.
 */
export function conflictChoices(target: StepTarget, otherFiles: boolean): Choice[] {
  return [
    ...(otherFiles ? [stepChoice("applyFiles", "Apply Files\u2026", target)] : []),
    stepChoice("createBranch", "Create Branch\u2026", target),
    stepChoice("followUp", "Follow Up\u2026", target),
  ];
}
