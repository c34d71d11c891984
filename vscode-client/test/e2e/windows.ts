// The end-to-end test's daemon steps: errand's tasks outlive the window that started
// them. Two code-server windows on the same folder (two extension hosts, two `errand
// serve`, one daemon) show the same task live; it finishes after the first window
// closed; a window reload finds a running task still running; and a daemon killed with
// SIGKILL mid-task is replaced, its task shown interrupted, and Resume completes it.
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import type { Daemon } from "./daemon";
import {
  editorText,
  log,
  openWorkbench,
  pickRow,
  quickInputVisible,
  reloadWindow,
  runCommand,
  saveImage,
  screenshot,
  statusText,
  step,
  waitFor,
  widenSideBar,
} from "./harness";

/** Prompts of scenario.json's slow tasks (each waits in a command, then adds NOTES.md). */
export const WATCHED = "Write the shop notes while another window watches";
export const RELOADED = "Write the shop notes across a window reload";
export const KILLED = "Write the shop notes through a daemon crash";

export interface Windows {
  browser: Browser;
  context: BrowserContext;
  /** The window the test has used so far. */
  first: Page;
  /** The workbench URL of the fixture folder. */
  url: string;
  daemon: Daemon;
}

/** Each window is this size while both are on screen, so that the two fit in one picture. */
const HALF = { width: 1100, height: 760 };
const FULL = { width: 1440, height: 880 };

function taskRow(page: Page, title: string, status?: string): Locator {
  const selector = status ? `.monaco-list-row[aria-label^="${title}"][aria-label*="${status}"]` : `.monaco-list-row[aria-label^="${title}"]`;
  return page.locator(selector).first();
}

function toast(page: Page, text: string): Locator {
  return page.locator(".notifications-toasts .notification-toast", { hasText: text }).first();
}

async function delegate(page: Page, prompt: string): Promise<void> {
  await page.bringToFront();
  await runCommand(page, "errand: Delegate Task\u2026");
  await quickInputVisible(page);
  await page.keyboard.type(prompt);
  await page.keyboard.press("Enter");
}

async function showTasks(page: Page): Promise<void> {
  await page.bringToFront();
  await runCommand(page, "Notifications: Clear All Notifications");
  await runCommand(page, "errand: Show Tasks");
}

async function waitForStatus(page: Page, what: string, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return waitFor(`${what} (${pattern})`, timeoutMs, async () => {
    const text = await statusText(page).catch(() => "");
    return pattern.test(text) ? text : undefined;
  });
}

/** Two windows' screenshots side by side, each with a caption, composed by Chromium itself. */
async function sideBySide(browser: Browser, shots: { caption: string; png: Buffer }[], name: string): Promise<void> {
  const page = await browser.newPage({ viewport: { width: shots.length * (HALF.width + 16) + 16, height: HALF.height + 56 }, deviceScaleFactor: 1 });
  try {
    const figures = shots
      .map(
        ({ caption, png }) =>
          `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${png.toString("base64")}"></figure>`,
      )
      .join("");
    await page.setContent(
      `<html><body style="margin:0;padding:8px;background:#111;display:flex;gap:16px;font:600 15px system-ui,sans-serif;color:#ddd">` +
        `<style>figure{margin:0}figcaption{padding:6px 2px 8px}img{display:block;width:${HALF.width}px;height:${HALF.height}px;` +
        `outline:1px solid #444}</style>${figures}</body></html>`,
    );
    await page.waitForFunction("[...document.images].every((image) => image.complete)");
    await saveImage(await page.screenshot(), name);
  } finally {
    await page.close();
  }
}

export async function windowSteps(w: Windows): Promise<void> {
  const { daemon, first } = w;
  let second: Page | undefined;
  const other = (): Page => {
    if (!second) {
      throw new Error("the second window is not open");
    }
    return second;
  };

  await step("a second window on the same folder: its own errand serve, the same daemon and tasks", async () => {
    const before = await daemon.waitFor("one window connected to errand's daemon", 60_000, (s) => s.frontEnds === 1);
    await first.setViewportSize(HALF);
    await first.bringToFront();
    await runCommand(first, "View: Close All Editors");
    second = await w.context.newPage();
    await second.setViewportSize(HALF);
    await openWorkbench(second, w.url);
    const shown = await statusText(first);
    await waitForStatus(second, "the second window's status bar to match the first's", new RegExp(`^${shown.replace(/[$.*+?()[\]{}|^\\]/g, "\\$&")}$`), 120_000);
    const now = await daemon.waitFor("both windows connected to one daemon", 60_000, (s) => s.frontEnds === 2);
    if (now.pid !== before.pid) {
      throw new Error(`the second window started another daemon (${before.pid} then ${now.pid})`);
    }
  });

  await step("a task delegated in the first window runs live in the second: its status bar and task list", async () => {
    const two = other();
    await showTasks(two);
    await showTasks(first);
    await widenSideBar(first, 520);
    await widenSideBar(two, 520);
    await delegate(first, WATCHED);
    await waitForStatus(first, "the first window's status bar", /\b1 running\b/);
    await waitForStatus(two, "the second window's status bar", /\b1 running\b/);
    await taskRow(two, WATCHED, "Running").waitFor({ timeout: 30_000 });
    await taskRow(first, WATCHED, "Running").waitFor({ timeout: 30_000 });
    // Its report in the first window; in the second, its command log, streaming from the daemon.
    await taskRow(first, WATCHED, "Running").click();
    await first.frameLocator("iframe.webview").frameLocator("iframe#active-frame").locator("h1", { hasText: WATCHED }).waitFor({ timeout: 30_000 });
    await two.bringToFront();
    await runCommand(two, "errand: Show Log");
    await quickInputVisible(two);
    await pickRow(two, WATCHED).click();
    await waitFor("the task's command in the second window's log", 30_000, async () =>
      (await editorText(two.locator(".editor-group-container.active"))).includes("$ sleep 20") ? true : undefined,
    );
    for (const page of [first, two]) {
      await page.mouse.move(200, 600);
    }
    await first.waitForTimeout(500);
    await sideBySide(
      w.browser,
      [
        { caption: "Window 1: the task was delegated here", png: await first.screenshot() },
        { caption: "Window 2: the same folder in another window, which sees it live", png: await two.screenshot() },
      ],
      "two-windows.png",
    );
  });

  await step("the first window closes; the task goes on, and the second window shows it finished", async () => {
    const two = other();
    await first.close();
    const status = await daemon.waitFor("the first window's errand serve to leave the daemon", 60_000, (s) => s.frontEnds === 1);
    if (status.runningAttempts !== 1) {
      throw new Error(`the task did not outlive the first window: ${JSON.stringify(status)}`);
    }
    const running = await statusText(two);
    if (!/\b1 running\b/.test(running) || (await taskRow(two, WATCHED, "Running").count()) !== 1) {
      throw new Error(`the second window no longer shows the task running: ${running}`);
    }
    await toast(two, `\u201c${WATCHED}\u201d completed`).waitFor({ timeout: 120_000 });
    const row = taskRow(two, WATCHED, "Completed");
    await row.waitFor({ timeout: 30_000 });
    const label = (await row.getAttribute("aria-label")) ?? "";
    if (!label.includes("+2 \u22120")) {
      throw new Error(`the finished task lacks its diff: ${label}`);
    }
    await waitForStatus(two, "the second window's status bar to drop the running task", /^errand: (?!.*running).*ready/);
    await two.setViewportSize(FULL);
    await two.mouse.move(200, 600);
    await two.waitForTimeout(500);
    await screenshot(two, "window-closed-finished.png");
  });

  await step("after a window reload (new extension host and errand serve), the running task is still running, then finishes", async () => {
    const two = other();
    await runCommand(two, "Notifications: Clear All Notifications");
    await delegate(two, RELOADED);
    await taskRow(two, RELOADED, "Running").waitFor({ timeout: 60_000 });
    const before = await daemon.waitFor("the task running in the daemon", 30_000, (s) => s.runningAttempts === 1);
    await reloadWindow(two);
    await waitForStatus(two, "the reloaded window's status bar to show the task running", /\b1 running\b/, 120_000);
    await showTasks(two);
    await taskRow(two, RELOADED, "Running").waitFor({ timeout: 30_000 });
    const after = await daemon.waitFor("the old window's errand serve to leave", 60_000, (s) => s.frontEnds === 1);
    if (after.pid !== before.pid || after.runningAttempts !== 1) {
      throw new Error(`the daemon did not carry the task through the reload: ${JSON.stringify({ before, after })}`);
    }
    await taskRow(two, RELOADED, "Completed").waitFor({ timeout: 120_000 });
  });

  let killed = 0;
  await step("the daemon is killed mid-task: the window says so, starts a new one and shows the task interrupted", async () => {
    const two = other();
    await runCommand(two, "Notifications: Clear All Notifications");
    await delegate(two, KILLED);
    await taskRow(two, KILLED, "Running").waitFor({ timeout: 60_000 });
    await runCommand(two, "errand: Show Log");
    await quickInputVisible(two);
    await pickRow(two, KILLED).click();
    await waitFor("the slow command to start, in the task log", 60_000, async () =>
      (await editorText(two.locator(".editor-group-container.active"))).includes("$ sleep 60") ? true : undefined,
    );
    const old = daemon.status();
    if (!old || old.runningAttempts !== 1) {
      throw new Error(`expected one running attempt: ${JSON.stringify(old)}`);
    }
    killed = old.pid;
    log(`SIGKILL errand's daemon, pid ${killed}`);
    daemon.kill(killed);
    await toast(two, "the daemon stopped; starting a new one").waitFor({ timeout: 60_000 });
    await toast(two, `\u201c${KILLED}\u201d was interrupted`).waitFor({ timeout: 60_000 });
    await taskRow(two, KILLED, "Interrupted").waitFor({ timeout: 30_000 });
    const replaced = await daemon.waitFor("a new daemon", 60_000, (s) => s.pid !== killed);
    if (replaced.runningAttempts !== 0) {
      throw new Error(`the new daemon runs the killed one's attempt: ${JSON.stringify(replaced)}`);
    }
    if (!/^errand(?!.*running)/.test(await statusText(two))) {
      throw new Error(`the status bar still counts the interrupted task running: ${await statusText(two)}`);
    }
    // Its report says so and links to Resume; the task list offers Resume on the row.
    const row = taskRow(two, KILLED, "Interrupted");
    await row.click();
    const report = two.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await report.locator("strong", { hasText: "Interrupted \u00b7 code task" }).waitFor({ timeout: 30_000 });
    const link = await report.locator("a", { hasText: /^Resume$/ }).getAttribute("href", { timeout: 10_000 });
    if (!link?.startsWith("command:errand.resumeTask?")) {
      throw new Error(`the report's Resume link runs ${link}`);
    }
    const action = row.locator('.action-label[aria-label="Resume Task\u2026"]');
    await row.hover();
    await action.waitFor({ state: "visible", timeout: 10_000 });
    await action.hover();
    await two.waitForTimeout(1200);
    await screenshot(two, "task-interrupted.png");
  });

  await step("Resume, from the notification, carries the interrupted task on to completion", async () => {
    const two = other();
    await toast(two, `\u201c${KILLED}\u201d was interrupted`).locator(".monaco-button", { hasText: /^Resume$/ }).click();
    await taskRow(two, KILLED, "Running").waitFor({ timeout: 60_000 });
    const row = taskRow(two, KILLED, "Completed");
    await row.waitFor({ timeout: 120_000 });
    const label = (await row.getAttribute("aria-label")) ?? "";
    if (!label.includes("+2 \u22120")) {
      throw new Error(`the resumed task lacks its diff: ${label}`);
    }
    // The log, loaded again from the store, holds the killed command and what came after.
    await runCommand(two, "errand: Show Log");
    await quickInputVisible(two);
    await pickRow(two, KILLED).click();
    await waitFor("the killed command and the resumed attempt's patch in the task log", 30_000, async () => {
      const text = await editorText(two.locator(".editor-group-container.active"));
      return text.includes("$ sleep 60") && text.includes("apply_patch") ? true : undefined;
    });
    const status = daemon.status();
    if (!status || status.pid === killed || status.runningAttempts !== 0) {
      throw new Error(`unexpected daemon after the resume: ${JSON.stringify(status)}`);
    }
  });
}
