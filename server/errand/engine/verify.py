"""What a reviewer must know about an attempt, as typed alerts.

The evidence modules judge the report (its citations, its claims about tests); this
module gathers their verdicts, with the sandbox's and the setup's own, into the
attempt's :class:`~errand.wire.protocol.Alert` list, and words the legacy ``warnings``
strings from it. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from errand.agent.evidence.claims import claim_alerts
from errand.wire.protocol import Alert, Attempt, Check, Citation


def sandbox_alerts(warnings: Iterable[str]) -> list[Alert]:
    return [Alert(kind="sandbox", text=text) for text in warnings]


def missing_secret(name: str) -> Alert:
    return Alert(kind="setup", text=f"setup secret {name} is not set on this machine")


def citation_alerts(citations: Sequence[Citation]) -> list[Alert]:
    return [
        Alert(
            kind="citation",
            text=f"{c.text} did not resolve",
            chunk_id=c.chunk_id,
            path=c.path,
            start_line=c.start_line,
            end_line=c.end_line,
        )
        for c in citations
        if not c.resolved
    ]


def report_alerts(
    report: str, citations: Sequence[Citation], checks: Sequence[Check], test_commands: list[str]
) -> list[Alert]:
    """Unresolved citations, then claims the recorded checks contradict."""
    return [*citation_alerts(citations), *claim_alerts(report, checks, test_commands)]


UNCHECKED = Alert(kind="verify", text="the report's citations could not be checked")


def merge(alerts: Sequence[Alert], more: Iterable[Alert]) -> list[Alert]:
    """``alerts`` followed by those of ``more`` it does not hold yet."""
    merged = list(alerts)
    for alert in more:
        if alert not in merged:
            merged.append(alert)
    return merged


def warning_texts(alerts: Sequence[Alert]) -> list[str]:
    """The legacy ``warnings`` strings: each alert's text, the unresolved citations said
    once, where the first of them stood."""
    texts: list[str] = []
    unresolved = [a.text.removesuffix(" did not resolve") for a in alerts if a.kind == "citation"]
    for alert in alerts:
        if alert.kind != "citation":
            texts.append(alert.text)
        elif unresolved:
            texts.append(f"{len(unresolved)} citation(s) did not resolve: {', '.join(unresolved)}")
            unresolved = []
    return texts


def set_alerts(info: Attempt, alerts: list[Alert]) -> None:
    """Give ``info`` these alerts, and their legacy text."""
    info.alerts = alerts
    info.warnings = warning_texts(alerts)
