import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeLog, decodeProposed, encodeLog, encodeProposed, slug } from "../../src/uris";

test("proposed-document queries round-trip, including odd characters", () => {
  const ref = { taskId: "t-1", attempt: 2, target: "file:///r/a%20b/c&d.py", side: "proposed" as const };
  assert.deepEqual(decodeProposed(encodeProposed(ref)), ref);
  assert.equal(decodeProposed("task=t&attempt=0&target=x"), undefined);
});

test("log-document queries round-trip", () => {
  assert.deepEqual(decodeLog(encodeLog({ taskId: "abc", attempt: 1 })), { taskId: "abc", attempt: 1 });
  assert.equal(decodeLog("attempt=1"), undefined);
});

test("slugs are safe file names", () => {
  assert.equal(slug("Fix the flaky test in tests/test_io.py!"), "fix-the-flaky-test-in-tests-test-io-py");
  assert.equal(slug("???"), "task");
});
