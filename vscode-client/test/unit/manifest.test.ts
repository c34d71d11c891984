import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";

const root = path.resolve(__dirname, "..", "..", "..");
const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
  contributes: { commands: { command: string; title: string; category?: string }[]; menus: Record<string, { command: string }[]> };
};
const schema = JSON.parse(
  readFileSync(path.join(root, "..", "server", "errand", "wire", "schema", "protocol.schema.json"), "utf8"),
) as { commands: Record<string, unknown> };

test("no client command shares an id with a server command", () => {
  // vscode-languageclient registers every command the server advertises as a VS Code
  // command; a client command with the same id makes the client fail to start.
  const server = new Set(Object.keys(schema.commands));
  const clashes = manifest.contributes.commands.map((c) => c.command).filter((id) => server.has(id));
  assert.deepEqual(clashes, []);
});

test("the palette has the issue's commands, in category errand", () => {
  const titles = manifest.contributes.commands.filter((c) => c.category === "errand").map((c) => c.title);
  for (const title of [
    "Delegate Task\u2026",
    "Ask\u2026",
    "Show Tasks",
    "Open Task",
    "Preview Diff",
    "Apply",
    "Apply Files\u2026",
    "Discard",
    "Cancel",
    "Follow Up\u2026",
    "Resume Task\u2026",
    "Show Log",
  ]) {
    assert.ok(titles.includes(title), `missing command "errand: ${title}"`);
  }
});

test("every menu entry names a contributed command", () => {
  const ids = new Set(manifest.contributes.commands.map((c) => c.command));
  for (const [menu, entries] of Object.entries(manifest.contributes.menus)) {
    for (const entry of entries) {
      assert.ok(ids.has(entry.command), `${menu} names unknown command ${entry.command}`);
    }
  }
});

test("every setting the client reads is contributed", () => {
  const properties = (manifest.contributes as unknown as { configuration: { properties: Record<string, unknown> } }).configuration
    .properties;
  for (const key of [
    "errand.server.command",
    "errand.server.args",
    "errand.model",
    "errand.api",
    "errand.sandbox",
    "errand.maxParallel",
    "errand.prices.input",
    "errand.prices.cachedInput",
    "errand.prices.output",
    "errand.apply.saveFiles",
    "errand.notifyOnFinish",
    "errand.statusBar.showCost",
    "errand.tasks.showAll",
  ]) {
    assert.ok(key in properties, `package.json lacks the setting ${key}`);
  }
});
