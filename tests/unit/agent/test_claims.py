"""Reports that claim passing tests, held against the checks the engine recorded."""

from __future__ import annotations

import pytest

from errand.agent.evidence.claims import claim_alerts, find_pass_claim
from errand.wire.protocol import Check


def _check(command: str, exit_code: int, chunk_id: str) -> Check:
    return Check(
        command=command,
        exit_code=exit_code,
        passed=exit_code == 0,
        duration_ms=120,
        chunk_id=chunk_id,
    )


FAILED_RUN = [
    _check("pytest -q", 1, "c1-2"),
    _check("ruff check .", 0, "c1-3"),
]
FIXED_RUN = [
    _check("pytest -q", 1, "c1-2"),
    _check("pytest -q", 0, "c1-5"),
    _check("ruff check .", 1, "c1-6"),  # a linter failing is not a test failing
]

LYING_REPORT = (
    "Fixed the off-by-one in `add` 【F:src/math.py†L2】.\n\nTesting: all tests pass 【c1-2†L1-L3】."
)


def test_lying_model_is_flagged_with_command_and_chunk() -> None:
    (alert,) = claim_alerts(LYING_REPORT, FAILED_RUN)
    assert alert.kind == "claim" and alert.chunk_id == "c1-2"
    assert "tests pass" in alert.text
    assert '"Testing: all tests pass."' in alert.text  # the claim, its citation dropped
    assert "`pytest -q` exited with 1" in alert.text
    assert "chunk c1-2" in alert.text


def test_honest_report_after_a_fix_is_not_flagged() -> None:
    assert claim_alerts(LYING_REPORT, FIXED_RUN) == []


def test_honest_report_of_a_failure_is_not_flagged() -> None:
    report = "Changed `add`. Tests still fail: `test_sub` expects 3 【c1-2†L8】."
    assert claim_alerts(report, FAILED_RUN) == []


def test_claim_with_no_test_run_is_flagged() -> None:
    (alert,) = claim_alerts("Done; the test suite passes.", [_check("mypy src", 0, "c1-1")])
    assert "no test command was run" in alert.text and alert.chunk_id is None
    assert claim_alerts("Done; the test suite passes.", []) == [alert]


def test_no_claim_no_warning_even_without_tests() -> None:
    assert claim_alerts("Renamed the helper. I did not run the tests.", []) == []


def test_named_test_commands_count_as_test_runs() -> None:
    checks = [_check("./scripts/ci.sh", 2, "c1-4")]
    report = "Everything is green."
    assert "no test command was run" in claim_alerts(report, checks)[0].text
    (alert,) = claim_alerts(report, checks, test_commands=["./scripts/ci.sh"])
    assert "`./scripts/ci.sh` exited with 2 (chunk c1-4)" in alert.text
    assert alert.chunk_id == "c1-4"


@pytest.mark.parametrize(
    "sentence",
    [
        "All tests pass.",
        "The tests now pass.",
        "Tests are passing.",
        "All 12 tests passing.",
        "The tests are green.",
        "✓ tests",
        "Tests ✅",
        "Testing: `pytest -q` ✅ 【c1-2†L1】",
        "Testing: `pytest -q` passed 【c1-2†L1-L3】.",
        "`npm test` succeeded.",
        "12 passed in 0.4s.",
        "Fixed the failing test; all tests pass now.",
        "The failing test now passes.",
        "The suite passes with no errors.",
        "I got the tests to pass.",
        "**Tests:** passed",
    ],
)
def test_claims_are_recognised(sentence: str) -> None:
    assert find_pass_claim(f"Changed things.\n{sentence}\nThanks.") is not None


@pytest.mark.parametrize(
    "sentence",
    [
        "The tests still fail.",
        "Tests do not pass yet.",
        "The tests don't pass on Python 3.11.",
        "Not all tests pass.",
        "Tests should pass once the fixture is added.",
        "I could not get the tests to pass.",
        "3 tests pass but 1 still fails.",
        "5 passed, 1 failed.",
        "Run the tests to check that they pass.",
        "If the tests pass, merge it.",
        "I added tests for the pass-through mode.",
        "The tests are no longer passing after the rebase.",
        "2 failing tests remain; all others pass.",
        "I did not run the tests.",
        "Ruff passes.",
    ],
)
def test_non_claims_are_not_recognised(sentence: str) -> None:
    assert find_pass_claim(f"Changed things.\n{sentence}\nThanks.") is None
