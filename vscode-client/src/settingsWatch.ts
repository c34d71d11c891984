// Settings changed: the status bar redraws, and server settings offer a restart.
import * as vscode from "vscode";
import { offer } from "./notify";
import { SERVER_SETTINGS } from "./settings";
import type { StatusMonitor } from "./status";

export function watchSettings(status: StatusMonitor): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration(async (event) => {
    if (event.affectsConfiguration("errand.statusBar")) {
      status.update();
    }
    if (SERVER_SETTINGS.some((key) => event.affectsConfiguration(key))) {
      await offer("info", "errand: restart the server to use the new settings? Running tasks keep their state.", [
        { label: "Restart", command: "errand.restartServer" },
      ]);
    }
  });
}
