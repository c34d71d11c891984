// Pure: reading an LSP WorkspaceEdit (from errand.getDiff) file by file, and applying a
// file's TextEdits to a text to get the proposed content shown in diff previews.
import type {
  AnnotatedTextEdit,
  CreateFile,
  DeleteFile,
  RenameFile,
  TextDocumentEdit,
  TextEdit,
  WorkspaceEdit,
} from "vscode-languageserver-protocol";

export type FileChangeKind = "added" | "deleted" | "modified" | "renamed";

/** Everything a WorkspaceEdit does to one file, keyed by the file's final URI. */
export interface FileChange {
  uri: string;
  kind: FileChangeKind;
  /** For renames: the URI the file had before. */
  oldUri?: string;
  /** TextEdits against the file's current content (the old URI's for renames). */
  edits: TextEdit[];
  /**
   * The open buffer's version the edits were made against (null or absent: the file
   * on disk). A buffer whose version moved on has made the edits stale.
   */
  version?: number | null;
}

type DocumentChange = TextDocumentEdit | CreateFile | RenameFile | DeleteFile;

function isResourceOperation(change: DocumentChange): change is CreateFile | RenameFile | DeleteFile {
  return "kind" in change;
}

function plainEdits(edits: ReadonlyArray<TextEdit | AnnotatedTextEdit | { range: TextEdit["range"]; snippet?: unknown; newText?: string }>): TextEdit[] {
  return edits.map((e) => ({ range: e.range, newText: "newText" in e && typeof e.newText === "string" ? e.newText : "" }));
}

/** The files a WorkspaceEdit touches, in order of first appearance. */
export function fileChanges(edit: WorkspaceEdit): FileChange[] {
  const byUri = new Map<string, FileChange>();
  const order: string[] = [];
  const get = (uri: string, kind: FileChangeKind): FileChange => {
    let change = byUri.get(uri);
    if (!change) {
      change = { uri, kind, edits: [] };
      byUri.set(uri, change);
      order.push(uri);
    }
    return change;
  };
  if (edit.documentChanges) {
    for (const change of edit.documentChanges as DocumentChange[]) {
      if (!isResourceOperation(change)) {
        const target = get(change.textDocument.uri, "modified");
        target.edits.push(...plainEdits(change.edits));
        target.version = change.textDocument.version;
        continue;
      }
      switch (change.kind) {
        case "create":
          get(change.uri, "added").kind = "added";
          break;
        case "delete":
          get(change.uri, "deleted").kind = "deleted";
          break;
        case "rename": {
          const previous = byUri.get(change.oldUri);
          const renamed = get(change.newUri, "renamed");
          renamed.kind = "renamed";
          renamed.oldUri = change.oldUri;
          if (previous) {
            renamed.edits.unshift(...previous.edits);
            renamed.version = previous.version;
            byUri.delete(change.oldUri);
            order.splice(order.indexOf(change.oldUri), 1);
          }
          break;
        }
      }
    }
  } else if (edit.changes) {
    for (const [uri, edits] of Object.entries(edit.changes)) {
      get(uri, "modified").edits.push(...plainEdits(edits));
    }
  }
  return order.map((uri) => byUri.get(uri)).filter((c): c is FileChange => c !== undefined);
}

/** Offsets where each line starts; `\r\n`, `\n` and `\r` all end a line. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 13 /* \r */) {
      if (text.charCodeAt(i + 1) === 10) {
        i += 1;
      }
      starts.push(i + 1);
    } else if (ch === 10 /* \n */) {
      starts.push(i + 1);
    }
  }
  return starts;
}

/** LSP position (UTF-16 code units, as JS strings) to an offset, clamped to the text. */
export function offsetAt(text: string, starts: readonly number[], line: number, character: number): number {
  if (line < 0) {
    return 0;
  }
  if (line >= starts.length) {
    return text.length;
  }
  const lineStart = starts[line] ?? 0;
  const nextStart = line + 1 < starts.length ? (starts[line + 1] ?? text.length) : text.length;
  let lineEnd = nextStart;
  // A position past the end of a line stays before its line break.
  while (lineEnd > lineStart && (text[lineEnd - 1] === "\n" || text[lineEnd - 1] === "\r")) {
    lineEnd -= 1;
  }
  return Math.min(lineStart + Math.max(0, character), lineEnd);
}

/**
 * Applies TextEdits to a text. Edits must not overlap (LSP's rule); edits inserted at
 * the same position keep their array order.
 */
export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  const starts = lineStarts(text);
  const resolved = edits.map((edit, index) => ({
    start: offsetAt(text, starts, edit.range.start.line, edit.range.start.character),
    end: offsetAt(text, starts, edit.range.end.line, edit.range.end.character),
    newText: edit.newText,
    index,
  }));
  resolved.sort((a, b) => a.start - b.start || a.end - b.end || a.index - b.index);
  for (let i = 1; i < resolved.length; i++) {
    const previous = resolved[i - 1];
    const current = resolved[i];
    if (previous && current && current.start < previous.end) {
      throw new Error(
        `overlapping edits at offsets ${previous.start}-${previous.end} and ${current.start}-${current.end}`,
      );
    }
  }
  let out = "";
  let cursor = 0;
  for (const edit of resolved) {
    out += text.slice(cursor, edit.start) + edit.newText;
    cursor = edit.end;
  }
  return out + text.slice(cursor);
}

/**
 * The proposed content of one changed file, given its current content (empty for a
 * file the edit creates).
 */
export function proposedContent(change: FileChange, current: string): string {
  if (change.kind === "deleted") {
    return "";
  }
  return applyTextEdits(current, change.edits);
}

/** Every URI a WorkspaceEdit creates, edits or renames to (what Apply should save). */
export function touchedUris(edit: WorkspaceEdit): string[] {
  return fileChanges(edit)
    .filter((c) => c.kind !== "deleted")
    .map((c) => c.uri);
}

/** One file errand.getDiff or errand.apply left out, with the server's reason. */
export interface Conflict {
  /** The file's path relative to the repository (as in FileStat.path / oldPath). */
  path: string;
  /** What to show: `<path>: <reason>`. */
  message: string;
}

/** The conflicts of a getDiff or apply result, from their typed form (`conflictDetails`). */
export function conflictsOf(result: { conflictDetails?: readonly { path: string; reason: string }[] }): Conflict[] {
  return (result.conflictDetails ?? []).map((c) => ({ path: c.path, message: `${c.path}: ${c.reason}` }));
}
