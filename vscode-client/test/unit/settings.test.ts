import { test } from "node:test";
import assert from "node:assert/strict";
import { initializationOptions, SERVER_SETTINGS, serverLaunch, type SettingReader } from "../../src/settings";

const reader =
  (values: Record<string, unknown>): SettingReader =>
  (key) =>
    values[key];

test("server launch defaults to `errand serve`", () => {
  assert.deepEqual(serverLaunch(reader({})), { command: "errand", args: ["serve"] });
});

test("server launch takes the command and args settings", () => {
  assert.deepEqual(
    serverLaunch(reader({ "server.command": " /opt/venv/bin/errand ", "server.args": ["serve", "--log-level", "debug"] })),
    { command: "/opt/venv/bin/errand", args: ["serve", "--log-level", "debug"] },
  );
});

test("bad server settings fall back to the defaults", () => {
  assert.deepEqual(serverLaunch(reader({ "server.command": "", "server.args": ["serve", 3] })), {
    command: "errand",
    args: ["serve"],
  });
});

test("initialization options carry model, api, sandbox and maxParallel", () => {
  assert.deepEqual(
    initializationOptions(reader({ model: "gpt-4.1-mini", api: "chat", sandbox: "bwrap", maxParallel: 6 })),
    { model: "gpt-4.1-mini", api: "chat", sandbox: "bwrap", maxParallel: 6 },
  );
});

test("empty or invalid settings are left to the server's defaults", () => {
  assert.deepEqual(
    initializationOptions(reader({ model: "  ", api: "", sandbox: "chroot", maxParallel: 0 })),
    {},
  );
  assert.deepEqual(initializationOptions(reader({ maxParallel: 2.5 })), {});
});

test("token prices reach the server as prices, in USD per million tokens", () => {
  assert.deepEqual(
    initializationOptions(reader({ "prices.input": 2.5, "prices.cachedInput": 1.25, "prices.output": 10 })),
    { prices: { input: 2.5, cachedInput: 1.25, output: 10 } },
  );
  assert.deepEqual(initializationOptions(reader({ "prices.input": 0, "prices.output": null })), { prices: { input: 0 } });
  assert.deepEqual(initializationOptions(reader({ "prices.input": -1, "prices.output": "3" })), {});
});

test("errand.tasks.showAll lists every task of the data folder; off is left to the server", () => {
  assert.deepEqual(initializationOptions(reader({ "tasks.showAll": true })), { showAllTasks: true });
  assert.deepEqual(initializationOptions(reader({ "tasks.showAll": false })), {});
  assert.deepEqual(initializationOptions(reader({ "tasks.showAll": "yes" })), {});
});

test("changing errand.tasks.showAll offers a restart of the server", () => {
  assert.ok(SERVER_SETTINGS.includes("errand.tasks.showAll"));
});
