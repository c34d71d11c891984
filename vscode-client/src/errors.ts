// Pure: what the user reads when something failed.

/** A message a person can act on, from whatever a failed call threw. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
