// The server and the task list it feeds: Refresh, Show Server Output, Restart Server.
import type { CommandDeps } from "./deps";

export function refreshTasks(deps: CommandDeps): Promise<void> {
  return deps.refreshTasks();
}

export async function showServerOutput(deps: CommandDeps): Promise<void> {
  deps.output.show(true);
}

export function restartServer(deps: CommandDeps): Promise<void> {
  return deps.restartServer();
}
