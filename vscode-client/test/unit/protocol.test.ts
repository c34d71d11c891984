import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

test("src/protocol.ts is generated from the server's current schema", () => {
  const root = path.resolve(__dirname, "..", "..", "..");
  const run = spawnSync(process.execPath, [path.join(root, "scripts", "generate-protocol.mjs"), "--check"], {
    encoding: "utf8",
  });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
});
