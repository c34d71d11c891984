// End-to-end test in a real VS Code: code-server from npm, driven by playwright-core in
// Debian's Chromium. The extension is the packaged .vsix, installed with
// `code-server --install-extension`; the model is errand's replay server playing
// scenario.json; errand runs as the product does, `errand serve` in each window in front
// of errand's daemon (ERRAND_DAEMON=auto; its socket in a runtime folder of the test's
// own, and stopped at the end with `errand daemon stop --force`).
//
// The user's day (editorDay): open the fixture repository, run "errand: Delegate Task…"
// from the command palette, wait for the status bar (with today's cost) and the task list
// to show the task done, open the report and the diff preview (screenshots), apply, and
// check the files on disk. Then: a question; a model that claims passing tests after a
// failing run and cites a missing file (the finish notification, the task list and the
// report warn, the report right after the summary, with links from the alerts' typed
// fields) whose change merges with the user's own edit in preview and Apply; a
// conflicting edit Apply refuses; and, after a window reload (new extension host and
// server), a log citation opened from the stored log (errand.getLog).
//
// Then the daemon's part (windows.ts): a second window sees a task of the first live,
// which finishes after the first window closed; a reload finds a running task still
// running; a daemon killed mid-task is replaced, and Resume completes its task.
//
// Environment: CODE_SERVER (required: the code-server binary), CHROMIUM (default
// /usr/bin/chromium), ERRAND_BIN and ERRAND_PYTHON (default: the repository's .venv),
// VSIX (default dist/errand.vsix), SCREENSHOT_DIR (default docs/screenshots),
// E2E_KEEP=1 keeps the temporary folder, ERRAND_DAEMON=off runs the engine inside each
// window's server instead (the daemon's part is then skipped), E2E_ONLY=windows runs
// only the daemon's part (quicker while working on it).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { Daemon } from "./daemon";
import { createFixtureRepository, FIXED_LINE } from "./fixture";
import {
  CLIENT_ROOT,
  editorText,
  freePort,
  log,
  openWorkbench,
  pickRow,
  quickInputVisible,
  REPO_ROOT,
  reloadWindow,
  runCommand,
  screenshot,
  startProcess,
  statusItem,
  statusText,
  Step,
  step,
  stopProcesses,
  stopProcessesAndWait,
  waitFor,
  widenSideBar,
} from "./harness";
import { windowSteps } from "./windows";

const SCENARIO = path.join(CLIENT_ROOT, "test", "e2e", "scenario.json");
// No scenario has this name, so the replay server picks each task's scenario by the
// `match` text of its prompt.
const MODEL_NAME = "e2e";
const PROMPT = "Fix cart totals and add a zero-quantity test";
const QUESTION = "Where is the cart total computed?";
const LYING = "Mention quantities in the cart docstring";
/** What the lying scenario writes in shop/cart.py, and a line the user adds meanwhile. */
const DOCSTRING = '"""A shopping cart: lines with a unit price and a quantity."""';
const USER_LINE = "# prices are in cents";

const env = process.env;
const CODE_SERVER = env.CODE_SERVER ?? "";
const CHROMIUM = env.CHROMIUM ?? "/usr/bin/chromium";
const ERRAND_BIN = env.ERRAND_BIN ?? path.join(REPO_ROOT, ".venv", "bin", "errand");
const ERRAND_PYTHON = env.ERRAND_PYTHON ?? path.join(REPO_ROOT, ".venv", "bin", "python");
const VSIX = env.VSIX ?? path.join(CLIENT_ROOT, "dist", "errand.vsix");
const DAEMON = env.ERRAND_DAEMON ?? "auto";
const CORE = env.E2E_ONLY !== "windows";

async function startReplay(work: string): Promise<string> {
  const logFile = path.join(work, "replay.log");
  // The replay server is test support (tests/support/replay/), not part of the product.
  const replayEnv = { ...env, PYTHONPATH: path.join(REPO_ROOT, "tests") };
  startProcess(ERRAND_PYTHON, ["-m", "support.replay", SCENARIO, "--port", "0"], { env: replayEnv, logFile });
  return waitFor("the replay model server", 30_000, () => {
    if (!existsSync(logFile)) {
      return undefined;
    }
    const match = /replay model server on (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(readFileSync(logFile, "utf8"));
    return match?.[1];
  });
}

function writeUserSettings(userDataDir: string): void {
  const settings = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "security.workspace.trust.enabled": false,
    "extensions.ignoreRecommendations": true,
    "extensions.autoCheckUpdates": false,
    "update.mode": "none",
    "telemetry.telemetryLevel": "off",
    "git.openRepositoryInParentFolders": "never",
    "editor.minimap.enabled": false,
    "workbench.colorTheme": "Default Dark Modern",
    "window.commandCenter": false,
    "chat.commandCenter.enabled": false,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "errand.server.command": ERRAND_BIN,
    "errand.server.args": ["serve"],
    // Prices make the server report cost (the replay model reports tokens).
    "errand.prices.input": 2.5,
    "errand.prices.output": 10,
    "errand.trace.server": env.E2E_TRACE === "1" ? "verbose" : "off",
  };
  mkdirSync(path.join(userDataDir, "User"), { recursive: true });
  writeFileSync(path.join(userDataDir, "User", "settings.json"), JSON.stringify(settings, null, 2));
}


/**
 * The user's day in one window: delegate, watch the status bar and the task list,
 * review, branch, apply, ask, a lying report, a merge, a conflict, and a window reload.
 */
async function editorDay(p: Page, repo: string): Promise<void> {
  await step("run \u201cerrand: Delegate Task\u2026\u201d from the command palette", async () => {
    await p.locator(".monaco-workbench").click({ position: { x: 700, y: 400 } });
    await runCommand(p, "errand: Delegate Task\u2026");
    const widget = await quickInputVisible(p);
    await widget.locator("text=What should a background agent do?").waitFor({ timeout: 10_000 });
    await p.keyboard.type(PROMPT);
    await p.keyboard.press("Enter");
  });

  await step("the status bar shows the task running", async () => {
    await waitFor("`errand: 1 running`", 60_000, async () => {
      const text = await statusText(p);
      return /errand: 1 running/.test(text) ? text : undefined;
    });
  });

  await step("the task list shows the task running", async () => {
    await runCommand(p, "errand: Show Tasks");
    const row = p.locator('.monaco-list-row[aria-label*="Running"], .monaco-list-row[aria-label*="Preparing"]').first();
    await row.waitFor({ timeout: 10_000 });
    await widenSideBar(p, 560);
    await p.mouse.move(200, 600);
    await p.waitForTimeout(300);
    await screenshot(p, "task-running.png");
  });

  await step("the status bar shows the task done", async () => {
    await waitFor("`errand: 1 ready`", 180_000, async () => {
      const text = await statusText(p);
      if (/failed|server stopped/.test(text)) {
        throw new Error(text);
      }
      // Today's cost follows once the task's usage is fetched (prices are set).
      return /^errand: 1 ready \u00b7 \$\d+\.\d+$/.test(text) ? text : undefined;
    });
  });

  await step("the status bar tooltip shows token usage and cost", async () => {
    await statusItem(p).hover();
    const hover = p.locator(".monaco-hover, .workbench-hover").filter({ hasText: "input tokens" }).first();
    await hover.waitFor({ state: "visible", timeout: 15_000 });
    const text = ((await hover.textContent()) ?? "").replace(/\s+/g, " ");
    if (!/Today \(1 task\): [\d,]+ input tokens .*[\d,]+ output tokens \u00b7 \$\d/.test(text)) {
      throw new Error(`tooltip lacks today's usage and cost: ${text}`);
    }
    await p.mouse.move(700, 300);
  });

  const taskRow = await step("the task list shows the task completed with its diff and checks", async () => {
    await runCommand(p, "errand: Show Tasks");
    const row = p.locator('.monaco-list-row[aria-label*="Completed"]').first();
    await row.waitFor({ state: "visible", timeout: 30_000 });
    const label = (await row.getAttribute("aria-label")) ?? "";
    for (const expected of ["+6 \u22121", "\u27131 \u27171"]) {
      if (!label.includes(expected)) {
        throw new Error(`task row "${label}" lacks "${expected}"`);
      }
    }
    return row;
  });

  await step("open the task report (summary, citations, checks)", async () => {
    await taskRow.click();
    const frame = p.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await frame.locator("h2", { hasText: "Summary" }).waitFor({ timeout: 30_000 });
    await frame.locator("a", { hasText: "shop/cart.py:L20-22" }).first().waitFor({ timeout: 10_000 });
    await frame.locator("td", { hasText: "python3 -m unittest -v" }).first().waitFor({ timeout: 10_000 });
    // Expand the task: its attempt, then the attempt's changed files.
    await taskRow.locator(".monaco-tl-twistie").click();
    await p.locator('.monaco-list-row[aria-label^="Attempt 1"]').waitFor({ timeout: 30_000 });
    await p.locator('.monaco-list-row[aria-label^="shop/cart.py"]').waitFor({ timeout: 30_000 });
    await p.locator('.monaco-list-row[aria-label^="tests/test_cart.py"]').waitFor({ timeout: 30_000 });
    await widenSideBar(p, 560);
    await runCommand(p, "Notifications: Clear All Notifications");
    await p.mouse.move(200, 600);
    await p.waitForTimeout(500);
    await screenshot(p, "task-list.png");
  });

  await step("citations open the cited log lines and file lines", async () => {
    const frame = p.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await frame.locator("a", { hasText: "c1-1:L1-12" }).first().click();
    await waitFor("the task log with the failing run", 30_000, async () => {
      const text = await editorText(p.locator(".editor-group-container.active"));
      return text.includes("$ python3 -m unittest -v") && text.includes("FAILED") ? true : undefined;
    });
    await runCommand(p, "errand: Open Task");
    await quickInputVisible(p);
    await p.keyboard.press("Enter");
    await frame.locator("a", { hasText: "shop/cart.py:L20-22" }).first().click();
    await waitFor("shop/cart.py opened at the cited lines", 30_000, async () => {
      const tab = await p.locator(".tab.active").getAttribute("aria-label", { timeout: 1_000 });
      const text = await editorText(p.locator(".editor-group-container.active"));
      return tab?.startsWith("cart.py") && text.includes("def total_cents") ? true : undefined;
    });
  });

  await step("open the diff preview", async () => {
    await runCommand(p, "Notifications: Clear All Notifications");
    await runCommand(p, "errand: Preview Diff");
    await quickInputVisible(p);
    await p.keyboard.press("Enter");
    const editor = p.locator(".multiDiffEditor, .monaco-diff-editor").first();
    await editor.waitFor({ state: "visible", timeout: 30_000 });
    await waitFor("the proposed fix in the diff editor", 30_000, async () => {
      const text = await editorText(p.locator(".editor-group-container.active"));
      return text.includes(FIXED_LINE.trim()) && text.includes("def test_zero_quantity") ? true : undefined;
    });
    await p.mouse.move(200, 600);
    await p.waitForTimeout(800);
    await screenshot(p, "diff-preview.png");
  });

  await step("create a branch from the task, leaving the working tree alone", async () => {
    await runCommand(p, "errand: Create Branch\u2026");
    await quickInputVisible(p);
    await p.keyboard.press("Enter");
    const widget = await quickInputVisible(p);
    await widget.locator("text=Commits the task's changes onto HEAD").waitFor({ timeout: 10_000 });
    await p.keyboard.type("errand/cart-fix");
    await p.keyboard.press("Enter");
    await p.locator(".notifications-toasts", { hasText: "to branch errand/cart-fix" }).waitFor({ timeout: 60_000 });
    const show = execFileSync("git", ["show", "errand/cart-fix:shop/cart.py"], { cwd: repo, encoding: "utf8" });
    if (!show.includes(FIXED_LINE)) {
      throw new Error("the branch does not hold the fix");
    }
    const status = execFileSync("git", ["status", "--porcelain"], { cwd: repo, encoding: "utf8" });
    if (status.trim() !== "" || readFileSync(path.join(repo, "shop", "cart.py"), "utf8").includes(FIXED_LINE)) {
      throw new Error(`creating the branch touched the working tree: ${status}`);
    }
    await runCommand(p, "Notifications: Clear All Notifications");
  });

  await step("apply from the palette and check the files on disk", async () => {
    await runCommand(p, "errand: Apply");
    await quickInputVisible(p);
    await p.keyboard.press("Enter");
    await p.locator(".notifications-toasts", { hasText: "errand: applied" }).waitFor({ timeout: 60_000 });
    await waitFor("the fix on disk", 30_000, () => {
      const cart = readFileSync(path.join(repo, "shop", "cart.py"), "utf8");
      const tests = readFileSync(path.join(repo, "tests", "test_cart.py"), "utf8");
      return cart.includes(`${FIXED_LINE}\n`) && tests.includes("    def test_zero_quantity(self) -> None:\n") ? true : undefined;
    });
    execFileSync(ERRAND_PYTHON, ["-m", "unittest", "-q"], { cwd: repo, stdio: "pipe" });
    const dirty = await p.locator(".tab.dirty").count();
    if (dirty > 0) {
      throw new Error(`${dirty} editor(s) left unsaved after Apply`);
    }
  });

  await step("the task is applied: status bar and task list", async () => {
    await waitFor("the status bar to drop the ready task", 30_000, async () =>
      /^errand: \$\d+\.\d+$/.test(await statusText(p)) ? true : undefined,
    );
    await waitFor("the task row to say applied", 30_000, async () => {
      const label = (await p.locator('.monaco-list-row[aria-label*="applied"]').first().getAttribute("aria-label", { timeout: 1_000 })) ?? "";
      return label.includes("applied") ? true : undefined;
    });
  });

  await step("ask a question: the answer comes with citations and no diff", async () => {
    await runCommand(p, "errand: Ask\u2026");
    const widget = await quickInputVisible(p);
    await widget.locator("text=A question about this codebase").waitFor({ timeout: 10_000 });
    await p.keyboard.type(QUESTION);
    await p.keyboard.press("Enter");
    const row = p.locator(`.monaco-list-row[aria-label^="${QUESTION}"][aria-label*="Completed"]`).first();
    await row.waitFor({ timeout: 120_000 });
    const label = (await row.getAttribute("aria-label")) ?? "";
    if (!label.includes("ask") || /\+\d/.test(label)) {
      throw new Error(`ask row should say "ask" and show no diff: ${label}`);
    }
    await row.click();
    const frame = p.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await frame.locator("h1", { hasText: QUESTION }).waitFor({ timeout: 30_000 });
    await frame.locator("a", { hasText: "shop/cart.py:L20-22" }).first().waitFor({ timeout: 10_000 });
    if ((await frame.locator("a", { hasText: "Preview diff" }).count()) > 0) {
      throw new Error("an answer offers a diff");
    }
  });

  await step("discard the question from the palette", async () => {
    await runCommand(p, "errand: Discard");
    await quickInputVisible(p);
    const pick = pickRow(p, QUESTION);
    await pick.click();
    await p.locator(".monaco-dialog-box").getByRole("button", { name: "Discard" }).click();
    await waitFor("the question to leave the task list", 30_000, async () =>
      (await p.locator(`.monaco-list-row[aria-label^="${QUESTION}"]`).count()) === 0 ? true : undefined,
    );
  });

  await step("a model that claims passing tests after a failing run and cites a missing file: the report warns", async () => {
    await runCommand(p, "errand: Delegate Task\u2026");
    await quickInputVisible(p);
    await p.keyboard.type(LYING);
    await p.keyboard.press("Enter");
    // The finish notification says the first alert at once (it fetches the task's detail);
    // the server lists unresolved citations before claims.
    const notified = p
      .locator(".notifications-toasts", { hasText: `\u201c${LYING}\u201d completed` })
      .filter({ hasText: "\u26a0 2 warnings: 1 citation did not resolve: shop/prices.py:L3 (more in the report)" })
      .first()
      .waitFor({ timeout: 120_000 });
    const row = p.locator(`.monaco-list-row[aria-label^="${LYING}"][aria-label*="Completed"]`).first();
    await row.waitFor({ timeout: 120_000 });
    // The task row counts the alerts once the task's detail is in: the claim, and the unresolved citation.
    await p.locator(`.monaco-list-row[aria-label^="${LYING}"][aria-label*="\u26a0 2"]`).first().waitFor({ timeout: 30_000 });
    await notified;
    await runCommand(p, "Notifications: Clear All Notifications");
    await row.click();
    const frame = p.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await frame.locator("h1", { hasText: LYING }).waitFor({ timeout: 30_000 });
    const warning = frame.locator("blockquote.warnings");
    await warning.waitFor({ timeout: 10_000 });
    const items = (await warning.locator("li").allTextContents()).map((t) => t.replace(/\s+/g, " ").trim());
    if (
      items.length !== 2 ||
      items[0] !== "1 citation did not resolve: shop/prices.py:L3" ||
      !/^the report says the tests pass \("[^"]*All tests pass\."\), but the last test run failed/.test(items[1] ?? "")
    ) {
      throw new Error(`unexpected warnings: ${JSON.stringify(items)}`);
    }
    // Right after the summary, before the files and checks.
    const order = await frame.locator("body").evaluate((body) =>
      [...body.querySelectorAll("h2, blockquote.warnings")].map((e) => (e.tagName === "H2" ? e.textContent : "warnings")),
    );
    if (order.join(",") !== "Summary,warnings,Files changed,Checks,Usage") {
      throw new Error(`the warning is not right after the summary: ${order.join(", ")}`);
    }
    // Links come from the alerts' typed fields: the citation's file lines, the claim's failing run.
    const cited = await warning.locator("a", { hasText: "shop/prices.py:L3" }).getAttribute("href");
    const [command, query] = (cited ?? "").split("?");
    const arg = (JSON.parse(decodeURIComponent(query ?? "[]")) as Record<string, unknown>[])[0];
    if (command !== "command:errand.openCitation" || arg?.kind !== "file" || arg.path !== "shop/prices.py" || arg.startLine !== 3) {
      throw new Error(`the citation alert links to ${cited}`);
    }
    const run = warning.locator("a", { hasText: /^c\d+-\d+$/ }).first();
    await run.waitFor({ timeout: 5_000 });
    await p.mouse.move(200, 600);
    await p.waitForTimeout(500);
    await screenshot(p, "report-warning.png");
    await run.click();
    await waitFor("the failing run in the task log, its output selected", 30_000, async () => {
      const group = p.locator(".editor-group-container.active");
      const text = await editorText(group);
      return text.includes("$ python3 -m unittest tests.test_cart.CartTest.test_docstring") && (await group.locator(".selected-text").count()) > 0
        ? true
        : undefined;
    });
    await runCommand(p, "View: Close All Editors");
  });

  await step("the user edits the same file meanwhile: the preview and Apply merge both changes", async () => {
    const cart = path.join(repo, "shop", "cart.py");
    const mine = `${readFileSync(cart, "utf8")}${USER_LINE}\n`;
    writeFileSync(cart, mine);
    await runCommand(p, "Notifications: Clear All Notifications");
    await runCommand(p, "errand: Preview Diff");
    await quickInputVisible(p);
    await pickRow(p, LYING).click();
    await p.locator(".notifications-toasts", { hasText: "you changed shop/cart.py since" }).waitFor({ timeout: 30_000 });
    await waitFor("the merged proposal in the diff editor", 30_000, async () => {
      const tab = (await p.locator(".tab.active").getAttribute("aria-label", { timeout: 1_000 })) ?? "";
      const proposed = await editorText(p.locator(".editor-group-container.active .monaco-diff-editor .editor.modified"));
      return tab.includes("merged with your edits") && proposed.includes(DOCSTRING) && proposed.includes(USER_LINE)
        ? true
        : undefined;
    });
    await p.mouse.move(200, 600);
    await p.waitForTimeout(500);
    await screenshot(p, "diff-merged.png");
    await runCommand(p, "Notifications: Clear All Notifications");
    await runCommand(p, "errand: Apply");
    await quickInputVisible(p);
    await pickRow(p, LYING).click();
    await p.locator(".notifications-toasts", { hasText: "Merged with your own edits in shop/cart.py" }).waitFor({ timeout: 60_000 });
    await waitFor("both changes on disk", 30_000, () => {
      const text = readFileSync(cart, "utf8");
      return text.startsWith(`${DOCSTRING}\n`) && text.endsWith(`${USER_LINE}\n`) && text.includes(FIXED_LINE) ? true : undefined;
    });
    await runCommand(p, "View: Close All Editors");
  });

  await step("a conflicting edit: preview warns, Apply refuses and says why", async () => {
    const prompt = "Describe quantities in the README";
    await runCommand(p, "errand: Delegate Task\u2026");
    await quickInputVisible(p);
    await p.keyboard.type(prompt);
    await p.keyboard.press("Enter");
    await p.locator(`.monaco-list-row[aria-label^="${prompt}"][aria-label*="Completed"]`).first().waitFor({ timeout: 120_000 });
    const mine = "# shop\n\nA tiny shopping cart (my wording).\n";
    writeFileSync(path.join(repo, "README.md"), mine);
    await runCommand(p, "Notifications: Clear All Notifications");
    await runCommand(p, "errand: Preview Diff");
    await quickInputVisible(p);
    await pickRow(p, prompt).click();
    // The task's only file conflicts: the preview says so instead of showing a diff.
    await p
      .locator(".notifications-toasts", { hasText: "left out of the preview: README.md: changed in the workspace since the task started" })
      .waitFor({ timeout: 30_000 });
    await runCommand(p, "Notifications: Clear All Notifications");
    await runCommand(p, "errand: Apply");
    await quickInputVisible(p);
    await pickRow(p, prompt).click();
    const toast = p.locator(".notifications-toasts", { hasText: "was not applied" });
    await toast.waitFor({ timeout: 60_000 });
    const message = (await toast.textContent()) ?? "";
    if (!message.includes("README.md") || !/nothing was written/i.test(message)) {
      throw new Error(`unclear refusal: ${message}`);
    }
    if (readFileSync(path.join(repo, "README.md"), "utf8") !== mine) {
      throw new Error("Apply overwrote the user's README");
    }
    await p.mouse.move(200, 600);
    await p.waitForTimeout(800);
    await screenshot(p, "apply-conflict.png");
  });

  await step("after a window reload (new server, new extension host), citations open the stored log", async () => {
    await runCommand(p, "Notifications: Clear All Notifications");
    await reloadWindow(p);
    // The new server lists the tasks (the README task is still ready) and their cost.
    await waitFor("the errand server to list the tasks again", 120_000, async () => {
      const text = await statusText(p).catch(() => "");
      return /^errand: 1 ready \u00b7 \$\d/.test(text) ? text : undefined;
    });
    await runCommand(p, "errand: Open Task");
    await quickInputVisible(p);
    await pickRow(p, PROMPT).click();
    const frame = p.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await frame.locator("h1", { hasText: PROMPT }).waitFor({ timeout: 30_000 });
    await frame.locator("a", { hasText: "c1-1:L1-12" }).first().click();
    await waitFor("the stored log with the failing run, the cited lines selected", 30_000, async () => {
      const group = p.locator(".editor-group-container.active");
      const text = await editorText(group);
      const selected = await group.locator(".selected-text").count();
      return text.includes("$ python3 -m unittest -v") && text.includes("FAILED") && selected > 0 ? true : undefined;
    });
    await p.mouse.move(200, 600);
    await p.waitForTimeout(500);
    await screenshot(p, "task-log.png");
  });
}

async function main(): Promise<void> {
  if (!CODE_SERVER || !existsSync(CODE_SERVER)) {
    throw new Error("set CODE_SERVER to the code-server binary (scripts/setup-vscode.sh prints it)");
  }
  for (const [what, file] of [
    ["chromium", CHROMIUM],
    ["errand", ERRAND_BIN],
    ["python", ERRAND_PYTHON],
    ["the packaged extension", VSIX],
  ] as const) {
    if (!existsSync(file)) {
      throw new Error(`${what} not found at ${file}`);
    }
  }
  const work = mkdtempSync(path.join(tmpdir(), "errand-e2e-"));
  log(`work folder ${work}`);
  const repo = createFixtureRepository(path.join(work, "shop"));
  const userDataDir = path.join(work, "user-data");
  const extensionsDir = path.join(work, "extensions");
  writeUserSettings(userDataDir);
  // What errand's front ends and the CLI share: the data folder, and a runtime folder only
  // this user can open, where the daemon's socket goes (private to this test).
  const runtimeDir = path.join(work, "run");
  mkdirSync(runtimeDir, { mode: 0o700 });
  const errandEnv = {
    ERRAND_DATA_DIR: path.join(work, "errand-data"),
    XDG_RUNTIME_DIR: runtimeDir,
    ERRAND_DAEMON: DAEMON,
    // Should the test die before it stops the daemon, the daemon stops on its own.
    ERRAND_DAEMON_IDLE_SECONDS: "120",
  };
  const daemon = new Daemon(ERRAND_BIN, { ...env, ...errandEnv });
  stopDaemonNow = () => daemon.stopNow();
  let browser: Browser | undefined;
  let page: Page | undefined;
  try {
    await step("install the packaged extension into code-server", async () => {
      const out = execFileSync(
        CODE_SERVER,
        ["--user-data-dir", userDataDir, "--extensions-dir", extensionsDir, "--install-extension", VSIX],
        { encoding: "utf8", env: { ...env, XDG_CONFIG_HOME: path.join(work, "config") } },
      );
      if (!/was successfully installed/.test(out)) {
        throw new Error(`unexpected install output: ${out}`);
      }
      const listed = execFileSync(CODE_SERVER, ["--extensions-dir", extensionsDir, "--list-extensions", "--show-versions"], {
        encoding: "utf8",
        env: { ...env, XDG_CONFIG_HOME: path.join(work, "config") },
      });
      if (!/^errand\.errand@/m.test(listed)) {
        throw new Error(`errand.errand is not listed: ${listed}`);
      }
    });

    const modelUrl = await step("start the replay model server", () => startReplay(work));
    const port = await freePort();
    await step("start code-server", async () => {
      startProcess(
        CODE_SERVER,
        [
          "--auth", "none",
          "--bind-addr", `127.0.0.1:${port}`,
          "--disable-telemetry",
          "--disable-update-check",
          "--disable-workspace-trust",
          "--disable-getting-started-override",
          "--user-data-dir", userDataDir,
          "--extensions-dir", extensionsDir,
          repo,
        ],
        {
          logFile: path.join(work, "code-server.log"),
          env: {
            ...env,
            XDG_CONFIG_HOME: path.join(work, "config"),
            OPENAI_BASE_URL: modelUrl,
            OPENAI_API_KEY: "test-not-a-secret",
            ERRAND_API: "chat",
            ERRAND_MODEL: MODEL_NAME,
            // code-server's environment is its extension hosts', so errand serve's (and
            // the daemon's, which the first errand serve starts).
            ...errandEnv,
          },
        },
      );
      await waitFor("code-server to listen", 60_000, async () => {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return response?.ok ? true : undefined;
      });
    });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 880 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    const p = page;

    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(repo)}`;
    await step("open the fixture repository in VS Code", () => openWorkbench(p, url));

    await step("the status bar shows errand once its server runs", async () => {
      await waitFor("the errand status bar item to leave `errand: starting`", 120_000, async () => {
        const text = await statusText(p).catch(() => "");
        if (/server stopped/.test(text)) {
          throw new Error(`errand server stopped: see ${path.join(work, "code-server.log")}`);
        }
        return text === "errand" ? text : undefined;
      });
    });

    if (CORE) {
      await editorDay(p, repo);
    }
    if (DAEMON === "off") {
      log("ERRAND_DAEMON=off: the daemon's steps (windows.ts) are skipped");
    } else {
      await windowSteps({ browser, context, first: p, url, daemon });
    }
  } catch (error) {
    // Every window still open (the daemon's part closes the first).
    for (const [i, open] of (page?.context().pages() ?? []).entries()) {
      const failure = path.join(work, i === 0 ? "failure.png" : `failure-${i + 1}.png`);
      await open.screenshot({ path: failure }).catch(() => undefined);
      log(`failure screenshot: ${failure}`);
    }
    for (const name of ["code-server.log", "replay.log", "errand-data/daemon.err", "errand-data/errand.log"]) {
      const file = path.join(work, name);
      if (existsSync(file)) {
        log(`--- tail of ${name} ---\n${readFileSync(file, "utf8").split("\n").slice(-40).join("\n")}`);
      }
    }
    throw error;
  } finally {
    await browser?.close().catch(() => undefined);
    await stopProcessesAndWait();
    // Its front ends are gone with code-server: now the daemon (in a session of its own).
    const left = await daemon.stop();
    if (left.length > 0) {
      log(`\u2718 errand daemon(s) ${left.join(", ")} outlived \`errand daemon stop --force\``);
      Step.failed += 1;
    }
    if (env.E2E_KEEP !== "1" && Step.failed === 0) {
      rmSync(work, { recursive: true, force: true });
    } else {
      log(`kept ${work}`);
    }
  }
}

/** Stops the test's daemon at once (set once it is known), for the watchdog. */
let stopDaemonNow: () => void = () => undefined;

const watchdog = setTimeout(() => {
  log("e2e took longer than 15 minutes; giving up");
  stopProcesses();
  stopDaemonNow();
  process.exit(1);
}, 15 * 60_000);

main()
  .then(() => {
    clearTimeout(watchdog);
    process.stdout.write(`${Step.passed} passed, ${Step.failed} failed\n`);
    if (Step.failed > 0) {
      process.exitCode = 1;
    }
  })
  .catch((error) => {
    clearTimeout(watchdog);
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.stdout.write(`${Step.passed} passed, ${Math.max(1, Step.failed)} failed\n`);
    process.exitCode = 1;
  });
