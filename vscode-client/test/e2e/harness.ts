// What the end-to-end test's steps share: its log and step counter, waiting, the
// processes it starts, and how it drives VS Code's workbench (the command palette, quick
// picks, the status bar, screenshots).
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import * as path from "node:path";
import type { Locator, Page } from "playwright-core";

export const CLIENT_ROOT = path.resolve(__dirname, "..", "..", "..");
export const REPO_ROOT = path.resolve(CLIENT_ROOT, "..");
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? path.join(REPO_ROOT, "docs", "screenshots");

const started = Date.now();
export function log(message: string): void {
  process.stderr.write(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

export class Step {
  static passed = 0;
  static failed = 0;
}

export async function step<T>(name: string, body: () => Promise<T>): Promise<T> {
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

export function freePort(): Promise<number> {
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

export function startProcess(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; logFile: string }): ChildProcess {
  const child = spawn(command, args, { env: options.env ?? process.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
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

export function stopProcesses(): void {
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
export async function stopProcessesAndWait(): Promise<void> {
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

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
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
export async function runCommand(page: Page, label: string): Promise<void> {
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

export async function quickInputVisible(page: Page): Promise<Locator> {
  const widget = page.locator(".quick-input-widget");
  await widget.waitFor({ state: "visible", timeout: 15_000 });
  return widget;
}

/** The visible quick-pick row showing `text` (hidden quick inputs keep their rows in the DOM). */
export function pickRow(page: Page, text: string): Locator {
  return page.locator(".quick-input-widget .monaco-list-row >> visible=true", { hasText: text }).first();
}

export function statusItem(page: Page): Locator {
  return page.locator(".statusbar-item", { hasText: /errand/ }).first();
}

export async function statusText(page: Page): Promise<string> {
  return ((await statusItem(page).textContent({ timeout: 2_000 })) ?? "").replace(/\s+/g, " ").trim();
}

/** Drags the sash between the side bar and the editor so that the side bar is `width` wide. */
export async function widenSideBar(page: Page, width: number): Promise<void> {
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

export async function screenshot(page: Page, name: string): Promise<string> {
  return saveImage(await page.screenshot(), name);
}

/** Saves a PNG in the screenshot folder. */
export function saveImage(png: Buffer, name: string): string {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, name);
  writeFileSync(file, png);
  log(`saved ${path.relative(REPO_ROOT, file)}`);
  return file;
}

/** Opens the workbench at `url` in `page` and waits for it (and its explorer) to show. */
export async function openWorkbench(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 60_000 });
  await page.locator(".explorer-folders-view, .pane-body").first().waitFor({ timeout: 60_000 });
}

/** "Developer: Reload Window": a new extension host, so a new errand serve. */
export async function reloadWindow(page: Page): Promise<void> {
  const navigated = page.waitForEvent("framenavigated", { predicate: (frame) => frame === page.mainFrame(), timeout: 60_000 });
  await runCommand(page, "Developer: Reload Window");
  await navigated;
  await page.waitForLoadState("load");
  await page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 60_000 });
}

export async function editorText(scope: Locator): Promise<string> {
  const text = await scope.locator(".view-lines").allInnerTexts();
  return text.join("\n").replace(/\u00a0/g, " ");
}
