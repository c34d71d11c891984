"""Hold the report's claims about tests against the commands that really ran.

A report *claims the tests pass* when one of its sentences says so without a
hedge or a negation ("All tests pass.", "pytest passed", "tests are green",
"✓ tests", "Testing: `pytest -q` ✅", "12 passed"). Deliberately not claims:

* negated or hedged clauses: "tests still fail", "the tests do not pass",
  "tests should pass once X", "I could not get the tests to pass", "if the tests
  pass";
* sentences that also admit a failure: "3 tests pass but 1 fails",
  "5 passed, 1 failed" (an honest report is not flagged for the part that passed).
  "No errors", "0 failed" and "the failing test now passes" are not admissions.

The evidence is the attempt's recorded checks, in the order they ran. The test
runs among them are those :func:`errand.agent.evidence.checks.is_test_run` recognises, plus
any that start with one of ``test_commands`` (e.g. test commands that AGENTS.md or
the repository config names). A claim is contradicted when the **last** test run
failed, or when no test ran at all; the warning names the command and its chunk id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from errand.agent.evidence.checks import is_test_run
from errand.wire.protocol import Alert, Check

_SUBJECT = (
    r"(?:tests?|test suite|(?:the )?suite|specs?|pytest|py\.test|unittest|jest|vitest|"
    r"go test|cargo test|(?:npm|pnpm|yarn) test|make (?:test|check)|tox|nox|"
    r"all checks|everything)"
)
_VERB = (
    r"(?:pass(?:es|ed|ing)?(?![-\w])|green|succeed(?:s|ed)?|"
    r"ran (?:successfully|cleanly|clean|green)|run (?:successfully|cleanly|clean))"
)
_MARK = r"[✓✔✅☑]"
_CLAIMS = (
    re.compile(rf"\b{_SUBJECT}\b.{{0,40}}?\b{_VERB}"),
    re.compile(rf"{_MARK}\W{{0,3}}(?:all\s+)?(?:{_SUBJECT}|testing)\b"),
    re.compile(rf"\b(?:{_SUBJECT}|testing)\b.{{0,40}}?{_MARK}"),
    re.compile(r"\b[1-9]\d* passed\b"),
)
_HEDGE = re.compile(
    r"\b(?:not|never|no longer|cannot|unable|should|would|will|may|might|could|"
    r"expect\w*|hope\w*|ensure|make sure|until|unless|if|once|whether|want|need|needs|"
    r"to (?:check|confirm|verify|ensure|see))\b|n't\b"
)
_FAILURE = re.compile(r"\bfail\w*|\berror(?:s|ed)?\b|\bbroken\b|\bred\b|\bflak\w*|[✗✘❌]")
_BENIGN = (
    # "no errors", "0 failed", "without failures" are not admissions of failure.
    re.compile(r"\b(?:no|zero|0|without(?: any)?)\s+(?:new\s+)?(?:errors?|fail\w*)"),
    # "the failing test now passes", "fixed the broken test".
    re.compile(
        r"\b(?:previously\s+|formerly\s+|originally\s+)?(?:failing|failed|broken)\s+"
        r"(?=(?:tests?|test cases?|cases?|specs?|assertions?)\b.{0,40}?\b(?:now|fixed)\b)"
    ),
    re.compile(r"\b(?:fixed|fix|fixes|repaired)\s+(?:the\s+)?(?:failing|failed|broken)\s+"),
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r"[;,]\s+|\s+(?:but|however|although|though|except|while|whereas)\s+")
_CITATION = re.compile(r"【[^】]*】")


def find_pass_claim(report: str) -> str | None:
    """The first sentence of ``report`` that claims the tests pass, or None."""
    for sentence in _SENTENCE.split(_CITATION.sub(" ", report)):
        plain = re.sub(r"[`*_]", "", sentence).strip()
        if _claims_pass(plain.lower()):
            return plain
    return None


def _claims_pass(sentence: str) -> bool:
    for benign in _BENIGN:
        sentence = benign.sub("", sentence)
    if _FAILURE.search(sentence):
        return False
    return any(
        any(claim.search(clause) for claim in _CLAIMS) and not _HEDGE.search(clause)
        for clause in _CLAUSE.split(sentence)
    )


def claim_alerts(
    report: str, checks: Sequence[Check], test_commands: Iterable[str] = ()
) -> list[Alert]:
    """Alerts for claims in ``report`` that the recorded ``checks`` contradict."""
    claim = find_pass_claim(report)
    if claim is None:
        return []
    prefixes = [p.strip() for p in test_commands if p.strip()]
    runs = [
        c
        for c in checks
        if is_test_run(c.command) or any(c.command.strip().startswith(p) for p in prefixes)
    ]
    quoted = _quote(claim)
    if not runs:
        text = f"the report says the tests pass ({quoted}), but no test command was run"
        return [Alert(kind="claim", text=text)]
    last = runs[-1]
    if last.passed:
        return []
    text = (
        f"the report says the tests pass ({quoted}), but the last test run failed: "
        f"`{last.command}` exited with {last.exit_code} (chunk {last.chunk_id})"
    )
    return [Alert(kind="claim", text=text, chunk_id=last.chunk_id)]


def _quote(sentence: str, limit: int = 80) -> str:
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(sentence.split()))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f'"{text}"'
