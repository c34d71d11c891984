// errand's daemon as the end-to-end test sees it, through the CLI a user types
// (`errand daemon status`, `errand daemon stop --force`), with the test's data folder and
// runtime folder, so that the socket and the daemon are the test's own.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { log, waitFor } from "./harness";

export interface DaemonStatus {
  pid: number;
  /** Front ends connected besides the status command itself: one per editor window. */
  frontEnds: number;
  runningAttempts: number;
}

export class Daemon {
  /** Every daemon pid this test saw, so that none is left running at the end. */
  private readonly seen = new Set<number>();

  /**
   * @param errand the `errand` executable
   * @param env what the daemon's front ends run with: ERRAND_DATA_DIR and XDG_RUNTIME_DIR
   */
  constructor(
    private readonly errand: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  private run(...args: string[]): { code: number; out: string } {
    const result = spawnSync(this.errand, args, { env: this.env, encoding: "utf8", timeout: 60_000 });
    return { code: result.status ?? -1, out: `${result.stdout ?? ""}${result.stderr ?? ""}` };
  }

  /** `errand daemon status`, read; undefined when no daemon runs. */
  status(): DaemonStatus | undefined {
    const { code, out } = this.run("daemon", "status");
    if (code !== 0) {
      return undefined;
    }
    const pid = /^pid (\d+)/m.exec(out);
    const counts = /(\d+) front end\(s\) connected \u00b7 (\d+) attempt\(s\) running/.exec(out);
    if (!pid || !counts) {
      throw new Error(`unexpected \`errand daemon status\`: ${out}`);
    }
    const status = { pid: Number(pid[1]), frontEnds: Number(counts[1]), runningAttempts: Number(counts[2]) };
    this.seen.add(status.pid);
    return status;
  }

  /** Waits until the daemon's status passes `test`, and returns it. */
  waitFor(what: string, timeoutMs: number, test: (status: DaemonStatus) => boolean): Promise<DaemonStatus> {
    return waitFor(what, timeoutMs, () => {
      const status = this.status();
      return status && test(status) ? status : undefined;
    });
  }

  /** SIGKILL, as a crash would. */
  kill(pid: number): void {
    process.kill(pid, "SIGKILL");
  }

  /**
   * Stops the daemon (`errand daemon stop --force`) once its front ends are gone, and
   * makes sure that no daemon this test saw still runs. Returns what is left (nothing,
   * when all went well).
   */
  async stop(): Promise<number[]> {
    // A front end still closing could start a new daemon: stop until none answers.
    for (let round = 0; round < 5 && this.status(); round++) {
      const { out } = this.run("daemon", "stop", "--force");
      log(`errand daemon stop --force: ${out.trim()}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const left = [...this.seen].filter(alive);
    for (const pid of left) {
      log(`errand daemon ${pid} still runs after \`errand daemon stop\`; killing it`);
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    return left;
  }

  /** The last resort (the test is giving up): stop it, attempts and all, and wait for nothing. */
  stopNow(): void {
    this.run("daemon", "stop", "--force");
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is gone too (its parent, in another session, has not reaped it yet).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
