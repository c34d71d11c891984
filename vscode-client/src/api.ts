// Typed calls of errand's commands over workspace/executeCommand.
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";
import type { CommandName, Commands } from "./protocol";

export class ServerNotRunningError extends Error {
  constructor() {
    super("The errand server is not running. Run \u201cerrand: Restart Server\u201d or see Output \u203a errand.");
  }
}

export class ErrandApi {
  /**
   * @param currentClient the client, if any
   * @param ready settles when a start in progress has finished (at once otherwise), so
   *   that a command run while the server starts waits for it instead of failing
   */
  constructor(
    private readonly currentClient: () => LanguageClient | undefined,
    private readonly ready: () => Promise<void>,
  ) {}

  get running(): boolean {
    return this.currentClient()?.isRunning() ?? false;
  }

  async call<C extends CommandName>(command: C, params: Commands[C]["params"]): Promise<Commands[C]["result"]> {
    await this.ready();
    const client = this.currentClient();
    if (!client || !client.isRunning()) {
      throw new ServerNotRunningError();
    }
    const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
      command,
      arguments: [params],
    });
    return result as Commands[C]["result"];
  }

  delegate(params: Commands["errand.delegate"]["params"]) {
    return this.call("errand.delegate", params);
  }
  listTasks() {
    return this.call("errand.listTasks", {});
  }
  getTask(taskId: string) {
    return this.call("errand.getTask", { taskId });
  }
  getDiff(taskId: string, attempt?: number) {
    return this.call("errand.getDiff", attempt === undefined ? { taskId } : { taskId, attempt });
  }
  getLog(taskId: string, attempt?: number) {
    return this.call("errand.getLog", attempt === undefined ? { taskId } : { taskId, attempt });
  }
  apply(params: Commands["errand.apply"]["params"]) {
    return this.call("errand.apply", params);
  }
  cancel(taskId: string) {
    return this.call("errand.cancel", { taskId });
  }
  discard(taskId: string) {
    return this.call("errand.discard", { taskId });
  }
  createBranch(params: Commands["errand.createBranch"]["params"]) {
    return this.call("errand.createBranch", params);
  }
  followUp(taskId: string, prompt: string) {
    return this.call("errand.followUp", { taskId, prompt });
  }
  resume(taskId: string) {
    return this.call("errand.resume", { taskId });
  }
}
