"""The verdict words, in one place. Every front end (terminal, report, conclusion, MLflow, CSV)
renders each of them; a test enumerates Verdict and renders every member in every front end.

A verdict's value is what is stored (MLflow tags, verdicts.csv), so the older four keep their
words. `tone` is how a front end colours it (the report's CSS classes are the tones), and
`decided` whether the question is settled (a sequential study stops looking at it).
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    # direction higher / lower
    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"
    # a margin: inside it (any direction), or not shown inside it (direction equivalent)
    EQUIVALENT = "equivalent"
    NOT_EQUIVALENT = "not shown equivalent"
    # direction either
    DIFFERS = "differs"
    NO_DIFFERENCE = "no difference shown"

    @property
    def tone(self) -> str:
        """supported, contradicted, equivalent or inconclusive: the colour family."""
        return TONES[self]

    @property
    def decided(self) -> bool:
        return self in DECIDED


TONES = {
    Verdict.SUPPORTED: "supported",
    Verdict.DIFFERS: "supported",
    Verdict.CONTRADICTED: "contradicted",
    Verdict.EQUIVALENT: "equivalent",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.NOT_EQUIVALENT: "inconclusive",
    Verdict.NO_DIFFERENCE: "inconclusive",
}
DECIDED = frozenset({Verdict.SUPPORTED, Verdict.CONTRADICTED, Verdict.EQUIVALENT, Verdict.DIFFERS})
# A verdict that shows a difference one way or the other (what a false-verdict rate counts).
SHOWS_DIFFERENCE = frozenset({Verdict.SUPPORTED, Verdict.CONTRADICTED, Verdict.DIFFERS})
