// The proposed content of a task's files (errand-proposed:), which the diff previews show.
import * as vscode from "vscode";
import type { DiffCache } from "./diffCache";
import { proposedContent, type FileChange } from "./edits";
import { decodeProposed, encodeProposed, PROPOSED_SCHEME } from "./uris";

/** The text of a workspace file: its open buffer if any, else the file on disk ("" if absent). */
export async function currentText(uri: vscode.Uri): Promise<string> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open) {
    return open.getText();
  }
  try {
    return new TextDecoder("utf-8").decode(await vscode.workspace.fs.readFile(uri));
  } catch {
    return "";
  }
}

export function proposedUri(taskId: string, attempt: number, change: FileChange, side: "proposed" | "empty"): vscode.Uri {
  const target = vscode.Uri.parse(change.uri);
  return vscode.Uri.from({
    scheme: PROPOSED_SCHEME,
    path: target.path,
    query: encodeProposed({ taskId, attempt, target: change.uri, side }),
  });
}

/** Whether a file's edits were made against text the file no longer has. */
function isStale(change: FileChange): boolean {
  const source = vscode.Uri.parse(change.oldUri ?? change.uri).toString();
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === source);
  if (typeof change.version === "number") {
    return open?.version !== change.version;
  }
  // Made against the disk: stale if the file is open with unsaved edits now.
  return change.kind !== "added" && open !== undefined && open.isDirty;
}

/**
 * Serves a file's proposed content: errand.getDiff's edit for that file applied to
 * the file's current text (the open buffer if any, else the file on disk). The edit is
 * what Apply would write now (merged with the user's edits where the file changed
 * since the task started), so the preview is exactly what Apply writes. An edit made
 * against an older version of the file is fetched again first. A file left out of the
 * edit (a conflict, or a change already applied) shows as unchanged.
 */
export class ProposedContentProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly diffs: DiffCache) {
    this.subscription = diffs.onDidChange((taskId) => {
      for (const document of vscode.workspace.textDocuments) {
        if (document.uri.scheme === PROPOSED_SCHEME && decodeProposed(document.uri.query)?.taskId === taskId) {
          this.changed.fire(document.uri);
        }
      }
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = decodeProposed(uri.query);
    if (!ref || ref.side === "empty") {
      return "";
    }
    const find = (changes: FileChange[]) => changes.find((c) => c.uri === ref.target);
    let change = find((await this.diffs.get(ref.taskId, ref.attempt)).changes);
    if (change && isStale(change)) {
      change = find((await this.diffs.refresh(ref.taskId, ref.attempt)).changes);
    }
    if (!change) {
      return currentText(vscode.Uri.parse(ref.target));
    }
    const source = change.kind === "added" ? "" : await currentText(vscode.Uri.parse(change.oldUri ?? change.uri));
    return proposedContent(change, source);
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
