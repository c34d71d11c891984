// A stand-in for the `vscode` module, so that modules using its API (the commands,
// notifications) run in plain Node: it records registered and executed commands and
// the messages shown, and answers prompts as a test scripts it. Import it before the
// modules under test.
import Module from "node:module";

export interface Shown {
  level: "info" | "warning" | "error";
  message: string;
  items: string[];
}

type Handler = (...args: unknown[]) => unknown;

export const recorded = {
  registered: new Map<string, Handler>(),
  executed: [] as { command: string; args: unknown[] }[],
  shown: [] as Shown[],
};

/** How the user answers: which button of a message, which quick-pick row, what input. */
export const user = {
  answer: (_shown: Shown): string | undefined => undefined,
  pick: (items: readonly unknown[]): unknown => items[0],
  input: (): string | undefined => undefined,
};

export function resetStub(): void {
  recorded.registered.clear();
  recorded.executed.length = 0;
  recorded.shown.length = 0;
  user.answer = () => undefined;
  user.pick = (items) => items[0];
  user.input = () => undefined;
}

function message(level: Shown["level"]) {
  return async (text: string, ...rest: unknown[]) => {
    // showWarningMessage(message, { modal: true }, ...items) passes options first.
    const items = rest.filter((r): r is string => typeof r === "string");
    const shown = { level, message: text, items };
    recorded.shown.push(shown);
    return user.answer(shown);
  };
}

const uri = (path: string) => ({ scheme: "file", path, fsPath: path, toString: () => `file://${path}` });

export const vscode = {
  window: {
    showInformationMessage: message("info"),
    showWarningMessage: message("warning"),
    showErrorMessage: message("error"),
    showQuickPick: async (items: readonly unknown[] | Promise<readonly unknown[]>) => user.pick(await items),
    showInputBox: async () => user.input(),
    setStatusBarMessage: () => ({ dispose() {} }),
    withProgress: (_options: unknown, task: (progress: unknown) => unknown) => task({ report() {} }),
    activeTextEditor: undefined,
  },
  commands: {
    registerCommand: (name: string, handler: Handler) => {
      recorded.registered.set(name, handler);
      return { dispose: () => recorded.registered.delete(name) };
    },
    executeCommand: async (command: string, ...args: unknown[]) => {
      recorded.executed.push({ command, args });
    },
  },
  workspace: {
    getConfiguration: () => ({ get: <T>(_key: string, fallback: T) => fallback }),
    workspaceFolders: [{ uri: uri("/work/repo") }],
    getWorkspaceFolder: () => undefined,
  },
  Uri: { file: uri, parse: (value: string) => uri(value.replace(/^file:\/\//, "")) },
  ProgressLocation: { Window: 10, Notification: 15 },
  ViewColumn: { Active: -1, One: 1 },
  TextEditorRevealType: { Default: 0, InCenter: 2 },
};

const loader = Module as unknown as { _load(request: string, ...rest: unknown[]): unknown };
const load = loader._load.bind(Module);
loader._load = (request: string, ...rest: unknown[]) => (request === "vscode" ? vscode : load(request, ...rest));
