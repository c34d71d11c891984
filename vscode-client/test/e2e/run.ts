// End-to-end test in a real VS Code: code-server from npm, driven by playwright-core in
// Debian's Chromium. The extension is the packaged .vsix, installed with
// `code-server --install-extension`; the model is errand's replay server playing
// scenario.json. Steps: open the fixture repository, run "errand: Delegate Task…" from
// the command palette, wait for the status bar (with today's cost) and the task list to
// show the task done, open the report and the diff preview (screenshots), apply, and
// check the files on disk. Then: a question; a model that claims passing tests after a
// failing run and cites a missing file (the finish notification, the task list and the
// report warn, the report right after the summary, with links from the alerts' typed
// fields) whose change merges with the user's own edit in preview and Apply; a
// conflicting edit Apply refuses; and, after a window reload (new extension host and
// server), a log citation opened from the stored log (errand.getLog).
//
// Environment: CODE_SERVER (required: the code-server binary), CHROMIUM (default
// /usr/bin/chromium), ERRAND_BIN and ERRAND_PYTHON (default: the repository's .venv),
// VSIX (default dist/errand.vsix), SCREENSHOT_DIR (default docs/screenshots),
// E2E_KEEP=1 keeps the temporary folder.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { createFixtureRepository, FIXED_LINE } from "./fixture";

const CLIENT_ROOT = path.resolve(__dirname, "..", "..", "..");
const REPO_ROOT = path.resolve(CLIENT_ROOT, "..");
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
const SCREENSHOT_DIR = env.SCREENSHOT_DIR ?? path.join(REPO_ROOT, "docs", "screenshots");

const started = Date.now();
function log(message: string): void {
  process.stderr.write(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

class Step {
  static passed = 0;
  static failed = 0;
}

async function step<T>(name: string, body: () => Promise<T>): Promise<T> {
  log(`\u25b6 ${name}`);
  try {
    const result = await body();
    Step.passed += 1;
    log(`\u2714 ${name}`);
    return result;
  } catch (error) {
    Step.failed += 1;
    log(`\u2718 ${name}: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const children: ChildProcess[] = [];

function startProcess(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; logFile: string }): ChildProcess {
  const child = spawn(command, args, { env: options.env ?? env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  writeFileSync(options.logFile, "");
  const keep = (data: Buffer) => {
    try {
      appendFileSync(options.logFile, data);
    } catch {
      // the work folder is gone: the test is over
    }
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return child;
}

function stopProcesses(): void {
  for (const child of children) {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }
}

/** Stops the processes this test started (each in its own process group) and waits for them. */
async function stopProcessesAndWait(): Promise<void> {
  stopProcesses();
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            resolve();
            return;
          }
          const timer = setTimeout(() => {
            if (child.pid) {
              try {
                process.kill(-child.pid, "SIGKILL");
              } catch {
                // already gone
              }
            }
            resolve();
          }, 10_000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

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

async function runCommand(page: Page, label: string): Promise<void> {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible", timeout: 15_000 });
  await input.fill(`>${label}`);
  // Click the row whose label is exactly `label` (fuzzy matching lists look-alikes too).
  const rows = page.locator(".quick-input-widget .monaco-list-row >> visible=true");
  const exact = await waitFor(`the palette entry "${label}"`, 15_000, async () => {
    for (const row of await rows.all()) {
      const name = ((await row.locator(".label-name").first().textContent({ timeout: 500 })) ?? "").replace(/\s+/g, " ").trim();
      if (name === label) {
        return row;
      }
    }
    return undefined;
  });
  await exact.click();
}

async function quickInputVisible(page: Page): Promise<Locator> {
  const widget = page.locator(".quick-input-widget");
  await widget.waitFor({ state: "visible", timeout: 15_000 });
  return widget;
}

/** The visible quick-pick row showing `text` (hidden quick inputs keep their rows in the DOM). */
function pickRow(page: Page, text: string): Locator {
  return page.locator(".quick-input-widget .monaco-list-row >> visible=true", { hasText: text }).first();
}

function statusItem(page: Page): Locator {
  return page.locator(".statusbar-item", { hasText: /errand/ }).first();
}

async function statusText(page: Page): Promise<string> {
  return ((await statusItem(page).textContent({ timeout: 2_000 })) ?? "").replace(/\s+/g, " ").trim();
}

/** Drags the sash between the side bar and the editor so that the side bar is `width` wide. */
async function widenSideBar(page: Page, width: number): Promise<void> {
  const sidebar = await page.locator(".part.sidebar").boundingBox();
  if (!sidebar) {
    return;
  }
  const x = sidebar.x + sidebar.width;
  const y = sidebar.y + sidebar.height / 2;
  await page.mouse.move(x - 1, y);
  await page.mouse.down();
  await page.mouse.move(sidebar.x + width, y, { steps: 8 });
  await page.mouse.up();
}

async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, name);
  await page.screenshot({ path: file });
  log(`saved ${path.relative(REPO_ROOT, file)}`);
  return file;
}

async function editorText(scope: Locator): Promise<string> {
  const text = await scope.locator(".view-lines").allInnerTexts();
  return text.join("\n").replace(/\u00a0/g, " ");
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
            ERRAND_DATA_DIR: path.join(work, "errand-data"),
            ERRAND_DAEMON: env.ERRAND_DAEMON ?? "off",
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

    await step("open the fixture repository in VS Code", async () => {
      await p.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(repo)}`);
      await p.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 60_000 });
      await p.locator(".explorer-folders-view, .pane-body").first().waitFor({ timeout: 60_000 });
    });

    await step("the status bar shows errand once its server runs", async () => {
      await waitFor("the errand status bar item to leave `errand: starting`", 120_000, async () => {
        const text = await statusText(p).catch(() => "");
        if (/server stopped/.test(text)) {
          throw new Error(`errand server stopped: see ${path.join(work, "code-server.log")}`);
        }
        return text === "errand" ? text : undefined;
      });
    });

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
      const navigated = p.waitForEvent("framenavigated", { predicate: (frame) => frame === p.mainFrame(), timeout: 60_000 });
      await runCommand(p, "Developer: Reload Window");
      await navigated;
      await p.waitForLoadState("load");
      await p.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 60_000 });
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
  } catch (error) {
    if (page) {
      const failure = path.join(work, "failure.png");
      await page.screenshot({ path: failure }).catch(() => undefined);
      log(`failure screenshot: ${failure}`);
    }
    for (const name of ["code-server.log", "replay.log"]) {
      const file = path.join(work, name);
      if (existsSync(file)) {
        log(`--- tail of ${name} ---\n${readFileSync(file, "utf8").split("\n").slice(-40).join("\n")}`);
      }
    }
    throw error;
  } finally {
    await browser?.close().catch(() => undefined);
    await stopProcessesAndWait();
    if (env.E2E_KEEP !== "1" && Step.failed === 0) {
      rmSync(work, { recursive: true, force: true });
    } else {
      log(`kept ${work}`);
    }
  }
}

const watchdog = setTimeout(() => {
  log("e2e took longer than 10 minutes; giving up");
  stopProcesses();
  process.exit(1);
}, 10 * 60_000);

main()
  .then(() => {
    clearTimeout(watchdog);
    process.stdout.write(`${Step.passed} passed, ${Step.failed} failed\n`);
  })
  .catch((error) => {
    clearTimeout(watchdog);
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.stdout.write(`${Step.passed} passed, ${Math.max(1, Step.failed)} failed\n`);
    process.exitCode = 1;
  });
