"""A ranking (stats.ranking.Ranking) as text: one wording for the terminal, the report and the
MLflow study run (its tags, ranking.json and a Markdown table in its description). Light on
purpose (no plotting): `mnistlab analyze` imports it; the figure is in report/ranking_plot.py.
"""

from __future__ import annotations

import math

from mnistlab.names import RANKING_FILE, ranking_tag_key
from mnistlab.report.tables import estimate_text, format_number, interval_text, level
from mnistlab.spec.measures import measure
from mnistlab.stats.ranking import Ranking
from mnistlab.stats.verdicts import Verdict


def heading(ranking: Ranking) -> str:
    """'Ranking on final test accuracy (higher is better), 10 seeds as blocks'."""
    return (
        f"Ranking on {measure(ranking.metric).title.lower()} ({ranking.better} is better), "
        f"{ranking.seeds} seeds as blocks"
    )


def pair_reading(row) -> str:  # noqa: ANN001 - a Ranking.pairs row
    """The pair's verdict as a reader acts on it: 'differs: a ranks above b', or not."""
    verdict = Verdict(row.verdict)
    if verdict == Verdict.DIFFERS:
        return f"{verdict}: {row.variant} ranks above {row.baseline}"
    return str(verdict)


def arm_rows(ranking: Ranking) -> list[dict[str, str]]:
    """Per arm, best mean rank first: position, arm, mean rank, the arms it cannot be told
    apart from."""
    rows = []
    for position, arm in enumerate(ranking.arms, start=1):
        tied = sorted({a for g in ranking.groups if arm in g for a in g} - {arm})
        rows.append(
            {
                "position": str(position),
                "arm": arm,
                "mean_rank": f"{ranking.mean_ranks[arm]:.2f}",
                "not_apart_from": ", ".join(a for a in ranking.arms if a in tied) or "–",
            }
        )
    return rows


def pair_rows(ranking: Ranking) -> list[dict[str, str]]:
    """Per pair, better-ranked arm first: estimate, interval (the inverted exact test), p, Holm p,
    the share of seeds the first beats the second on with its Wilson interval, verdict."""
    rows = []
    for row in ranking.pairs.itertuples():
        rows.append(
            {
                "pair": f"{row.variant} vs {row.baseline}",
                "n": str(row.n),
                "estimate": estimate_text(row),
                "interval": f"{level(row.confidence)} {interval_text(row)}",
                "p": format_number(row.p_value),
                "p_holm": format_number(row.p_holm),
                "beats": f"{row.beats_words} [{row.p_beats_low:.0%}, {row.p_beats_high:.0%}]"
                if math.isfinite(row.p_beats)
                else "–",
                "verdict": pair_reading(row),
                "tone": Verdict(row.verdict).tone,
                "note": row.note,
            }
        )
    return rows


def summary_lines(ranking: Ranking) -> list[str]:
    """The sentences under the tables: Friedman's test, the family, the groups, any note."""
    lines = [
        f"Friedman's test (do any arms rank apart?): chi-square {ranking.friedman_statistic:.3g}, "
        f"{len(ranking.arms) - 1} df, p = {format_number(ranking.friedman_p)}.",
        f"Every pair by the exact paired sign-flip test, two-sided, Holm over all "
        f"{ranking.family_size} pairs as one family at alpha = {ranking.alpha:g}; estimates are "
        "the better-ranked arm against the other, intervals the inverted test. 'Beats': the "
        "share of seeds on which the better-ranked arm is strictly better, with its 95% Wilson "
        "interval.",
    ]
    if ranking.groups:
        joined = "; ".join(", ".join(g) for g in ranking.groups)
        lines.append(f"Not told apart (joined in the figure): {joined}.")
    else:
        lines.append("Every arm is told apart from the next one in rank.")
    if ranking.note:
        lines.append(ranking.note)
    return lines


def finite(value: float) -> float | None:
    """A statistic for JSON: None where it is NaN or infinite (strict JSON has neither)."""
    return float(value) if value is not None and math.isfinite(value) else None


def ranking_record(ranking: Ranking) -> tuple[dict[str, str], dict]:
    """(tags, document) for the study run: the order, Friedman's p and each arm's mean rank as
    tags; everything, every pair included, as RANKING_FILE."""
    tags = {
        ranking_tag_key("metric"): ranking.metric,
        ranking_tag_key("better"): ranking.better,
        ranking_tag_key("order"): ", ".join(ranking.arms),
        ranking_tag_key("friedman_p"): repr(float(ranking.friedman_p)),
        ranking_tag_key("groups"): "; ".join(", ".join(g) for g in ranking.groups) or "none",
        **{ranking_tag_key("mean_rank", arm): repr(r) for arm, r in ranking.mean_ranks.items()},
    }
    columns = [
        "variant",
        "baseline",
        "n",
        "estimate_kind",
        "estimate",
        "ci_low",
        "ci_high",
        "confidence",
        "p_value",
        "p_holm",
        "p_beats",
        "p_beats_low",
        "p_beats_high",
        "verdict",
    ]
    pairs = [
        {
            key: (finite(value) if isinstance(value, float) else value)
            for key, value in zip(columns, values, strict=True)
        }
        for values in ranking.pairs[columns].astype(object).itertuples(index=False)
    ]
    for pair in pairs:
        pair["better"], pair["worse"] = pair.pop("variant"), pair.pop("baseline")
        pair["verdict"] = str(Verdict(pair["verdict"]))
        pair["n"] = int(pair["n"])
    document = {
        "metric": ranking.metric,
        "better": ranking.better,
        "seeds": ranking.seeds,
        "order": ranking.arms,
        "mean_ranks": ranking.mean_ranks,
        "friedman_statistic": finite(ranking.friedman_statistic),
        "friedman_p": finite(ranking.friedman_p),
        "alpha": ranking.alpha,
        "groups": ranking.groups,
        "pairs": pairs,
    }
    return tags, document


def markdown(ranking: Ranking) -> list[str]:
    """The ranking as Markdown lines for the study run's description."""
    lines = ["", f"## {heading(ranking)}", "", "| arm | mean rank | not told apart from |"]
    lines.append("| --- | --- | --- |")
    lines += [
        f"| {r['arm']} | {r['mean_rank']} | {r['not_apart_from']} |" for r in arm_rows(ranking)
    ]
    lines += ["", "| pair | estimate | CI | p (Holm) | beats | verdict |"]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for r in pair_rows(ranking):
        cells = [r["pair"], r["estimate"], r["interval"], r["p_holm"], r["beats"], r["verdict"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", *summary_lines(ranking), f"Every statistic: `{RANKING_FILE}`."]
    return lines
