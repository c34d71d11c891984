// Pure: turns the user's `errand.*` settings into the server's launch command and its
// initializationOptions. No `vscode` import, so it is unit-tested in plain Node.
import type { InitOptions } from "./protocol";

/** Reads one setting below the `errand.` section; returns undefined when unset. */
export type SettingReader = (key: string) => unknown;

export interface ServerLaunch {
  command: string;
  args: string[];
}

export const DEFAULT_COMMAND = "errand";
export const DEFAULT_ARGS: readonly string[] = ["serve"];

/** Settings whose change needs the server restarted to take effect. */
export const SERVER_SETTINGS: readonly string[] = [
  "errand.server.command",
  "errand.server.args",
  "errand.model",
  "errand.api",
  "errand.sandbox",
  "errand.maxParallel",
  "errand.prices",
  "errand.tasks.showAll",
];

const APIS = ["responses", "chat"] as const;
const SANDBOXES = ["bwrap", "docker", "none"] as const;

export function serverLaunch(read: SettingReader): ServerLaunch {
  const rawCommand = read("server.command");
  const command =
    typeof rawCommand === "string" && rawCommand.trim() !== "" ? rawCommand.trim() : DEFAULT_COMMAND;
  const rawArgs = read("server.args");
  const args =
    Array.isArray(rawArgs) && rawArgs.every((a) => typeof a === "string")
      ? [...(rawArgs as string[])]
      : [...DEFAULT_ARGS];
  return { command, args };
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T | undefined {
  return typeof value === "string" && (allowed as readonly string[]).includes(value)
    ? (value as T)
    : undefined;
}

/**
 * initializationOptions for the server. Settings left empty are omitted so that the
 * server's own defaults (environment, config file) apply. Prices are USD per million
 * tokens; the server reports cost once input and output prices are known.
 */
export function initializationOptions(read: SettingReader): InitOptions {
  const options: InitOptions = {};
  const model = read("model");
  if (typeof model === "string" && model.trim() !== "") {
    options.model = model.trim();
  }
  const api = oneOf(read("api"), APIS);
  if (api) {
    options.api = api;
  }
  const sandbox = oneOf(read("sandbox"), SANDBOXES);
  if (sandbox) {
    options.sandbox = sandbox;
  }
  const maxParallel = read("maxParallel");
  if (typeof maxParallel === "number" && Number.isInteger(maxParallel) && maxParallel >= 1) {
    options.maxParallel = maxParallel;
  }
  const prices: NonNullable<InitOptions["prices"]> = {};
  for (const key of ["input", "cachedInput", "output"] as const) {
    const value = read(`prices.${key}`);
    if (typeof value === "number" && Number.isFinite(value) && value >= 0) {
      prices[key] = value;
    }
  }
  if (Object.keys(prices).length > 0) {
    options.prices = prices;
  }
  // Off (the default) is left to the server: ERRAND_SHOW_ALL_TASKS, else this window's folders.
  if (read("tasks.showAll") === true) {
    options.showAllTasks = true;
  }
  return options;
}
