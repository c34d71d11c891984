// The one place that builds errand's LanguageClient: launch command and args from the
// settings, settings as initializationOptions, the server log in an output channel,
// errand's notifications, and an applyEdit handler that saves what Apply changed.
import * as vscode from "vscode";
import {
  ApplyWorkspaceEditRequest,
  type ApplyWorkspaceEditParams,
  type ApplyWorkspaceEditResult,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";
import { offer } from "./notify";
import type { TaskChanged, TaskLog } from "./protocol";
import { initializationOptions, serverLaunch, type SettingReader } from "./settings";
import { touchedUris } from "./edits";
import type { ServerState } from "./format";

export interface ClientEvents {
  onTaskChanged(params: TaskChanged): void;
  onTaskLog(params: TaskLog): void;
  onStateChanged(state: ServerState): void;
  onStarted(): void;
}

function settingReader(): SettingReader {
  const config = vscode.workspace.getConfiguration("errand");
  return (key) => config.get(key);
}

/** Owns the LanguageClient; restart builds a fresh one from the current settings. */
export class ServerController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private state: ServerState = "stopped";
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly events: ClientEvents,
  ) {}

  private starting: Promise<void> = Promise.resolve();

  get current(): LanguageClient | undefined {
    return this.client;
  }

  /** Settles once a start in progress has finished, whether or not it succeeded. */
  whenStarted(): Promise<void> {
    return this.starting;
  }

  get serverState(): ServerState {
    return this.state;
  }

  private setState(state: ServerState): void {
    if (state !== this.state) {
      this.state = state;
      this.events.onStateChanged(state);
    }
  }

  start(): Promise<void> {
    this.starting = this.startClient();
    return this.starting;
  }

  private async startClient(): Promise<void> {
    const read = settingReader();
    const launch = serverLaunch(read);
    const serverOptions: ServerOptions = {
      command: launch.command,
      args: launch.args,
      // No `transport`: TransportKind.stdio would append `--stdio` to the arguments.
      options: { env: process.env },
    };
    const clientOptions: LanguageClientOptions = {
      // Open files are synced so that Apply can check document versions and merge
      // onto unsaved edits.
      documentSelector: [{ scheme: "file" }],
      outputChannel: this.output,
      initializationOptions: initializationOptions(read),
      initializationFailedHandler: (error) => {
        this.output.error(`errand server failed to initialize: ${String(error)}`);
        return false;
      },
    };
    const client = new LanguageClient("errand", "errand", serverOptions, clientOptions);
    this.client = client;
    this.disposables.push(
      client.onDidChangeState(({ newState }) => {
        if (client !== this.client) {
          return;
        }
        this.setState(newState === State.Running ? "running" : newState === State.Starting ? "starting" : "stopped");
        if (newState === State.Running) {
          this.events.onStarted();
        }
      }),
    );
    client.onNotification("errand/taskChanged", (params: TaskChanged) => this.events.onTaskChanged(params));
    client.onNotification("errand/taskLog", (params: TaskLog) => this.events.onTaskLog(params));
    client.onRequest(ApplyWorkspaceEditRequest.type, (params) => this.applyEdit(client, params));
    this.output.info(`starting errand server: ${launch.command} ${launch.args.join(" ")}`);
    this.setState("starting");
    try {
      await client.start();
    } catch (error) {
      this.setState("stopped");
      const message = `errand: the server (${launch.command} ${launch.args.join(" ")}) did not start: ${String(
        error instanceof Error ? error.message : error,
      )}. Its log is in Output \u203a errand.`;
      this.output.error(message);
      void offer("error", message, [
        { label: "Open Settings", command: "workbench.action.openSettings", args: ["errand.server"] },
        { label: "Show Output", command: "errand.showServerOutput" },
      ]);
    }
  }

  /**
   * workspace/applyEdit from the server (sent while it runs errand.apply): refuse an
   * edit made against an older version of an open document, apply it all-or-nothing,
   * then save the files it changed unless they had unsaved edits of the user's.
   */
  private async applyEdit(client: LanguageClient, params: ApplyWorkspaceEditParams): Promise<ApplyWorkspaceEditResult> {
    const open = new Map(vscode.workspace.textDocuments.map((d) => [d.uri.toString(), d]));
    for (const change of params.edit.documentChanges ?? []) {
      if ("textDocument" in change && typeof change.textDocument.version === "number") {
        const document = open.get(client.protocol2CodeConverter.asUri(change.textDocument.uri).toString());
        if (document && document.version !== change.textDocument.version) {
          return {
            applied: false,
            failureReason: `${vscode.workspace.asRelativePath(document.uri)} changed while the edit was prepared`,
          };
        }
      }
    }
    const wasDirty = new Set(
      vscode.workspace.textDocuments.filter((d) => d.isDirty).map((d) => d.uri.toString()),
    );
    const edit = await client.protocol2CodeConverter.asWorkspaceEdit(params.edit);
    const applied = await vscode.workspace.applyEdit(edit);
    if (!applied) {
      return { applied: false, failureReason: "VS Code refused the edit" };
    }
    if (vscode.workspace.getConfiguration("errand").get<boolean>("apply.saveFiles", true)) {
      const uris = touchedUris(params.edit).map((u) => client.protocol2CodeConverter.asUri(u).toString());
      for (const document of vscode.workspace.textDocuments) {
        const key = document.uri.toString();
        if (uris.includes(key) && !wasDirty.has(key) && document.isDirty) {
          await document.save();
        }
      }
    }
    return { applied: true };
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.output.warn(`errand server did not stop cleanly: ${String(error)}`);
      }
    }
    this.setState("stopped");
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}
