"""The per-run measures a claim can be about: names, how two arms are compared, wording.

One table decides, per measure, whether arms are compared as a difference or as a log ratio
(time- and loss-like measures, whose spread grows with their level). Nothing is computed
here; results.features.per_run_table makes a column per measure.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab import names

HIGHER, LOWER = "higher", "lower"
EITHER = "either"  # any difference: a two-sided test, the verdict "differs"
SAME = "equivalent"  # the same within a margin: two one-sided tests (TOST) only
DIRECTIONS = (HIGHER, LOWER, EITHER, SAME)


@dataclass(frozen=True)
class Measure:
    name: str  # as a spec writes it: "test_accuracy", "steps_to:0.97"
    column: str  # its column in results.features.per_run_table
    log_scale: bool  # compared as log(variant) - log(baseline): the estimate is a ratio
    title: str  # figure and table title
    unit: str  # axis label
    higher: str  # how a claim reads when the variant's value is claimed to be higher
    lower: str
    threshold: float | None = None  # accuracy threshold of steps_to / seconds_to

    @property
    def comparison(self) -> str:
        return "ratio (via log ratios)" if self.log_scale else "difference"

    def statement(self, direction: str) -> str:
        return self.higher if direction == HIGHER else self.lower

    def claim(self, direction: str, variant: str, baseline: str, margin: str = "") -> str:
        """The claim as a sentence: 'var reaches 95% accuracy in fewer steps than base',
        'var differs from base in final test accuracy', 'var and base have the same final
        test accuracy within ±0.3 points'."""
        if direction == EITHER:
            return f"{variant} differs from {baseline} in {self.title.lower()}"
        if direction == SAME:
            within = f" within {margin}" if margin else ""
            return f"{variant} and {baseline} have the same {self.title.lower()}{within}"
        return f"{variant} {self.statement(direction)} than {baseline}"


# Measures read off the clock: only runs that had the machine to themselves can say them
# (results.timings.clean_timings blanks them for contended runs). Column names start with these.
TIMING = (names.EPOCH_TRAIN_SECONDS, names.SECONDS_PER_STEP, names.SECONDS_TO)


def percent(accuracy: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%'."""
    return f"{accuracy:.0%}" if round(accuracy * 100, 6).is_integer() else f"{accuracy:.1%}"


# name: (log_scale, title, unit, wording when higher, wording when lower)
FIXED = {
    names.EPOCH_TRAIN_SECONDS: (
        True,
        "Train time per epoch",
        "train seconds per epoch",
        "takes more train time per epoch",
        "takes less train time per epoch",
    ),
    names.SECONDS_PER_STEP: (
        True,
        "Train time per step",
        "train seconds per step",
        "takes more train time per step",
        "takes less train time per step",
    ),
    names.LOG_LOSS_SPREAD: (
        False,
        "Loss fluctuation",
        "SD of log-loss residual",
        "has a noisier training loss",
        "has a quieter training loss",
    ),
    names.RAW_LOSS_SD: (
        True,
        "Raw rolling SD of the train loss",
        "rolling SD of the train loss",
        "has a larger raw rolling SD of its training loss",
        "has a smaller raw rolling SD of its training loss",
    ),
    names.TEST_ACCURACY: (
        False,
        "Final test accuracy",
        "accuracy on the full test set",
        "reaches a higher final test accuracy",
        "ends with a lower final test accuracy",
    ),
    names.TEST_LOSS: (
        True,
        "Final test loss",
        "cross-entropy on the full test set",
        "ends with a higher test loss",
        "ends with a lower test loss",
    ),
    names.FINAL_TRAIN_LOSS: (
        True,
        "Final train loss",
        "mean train loss over the last 10% of steps",
        "ends with a higher train loss",
        "ends with a lower train loss",
    ),
}
# prefix: the same, with {p} for the threshold as a percentage. Steps stay differences: they
# live on the evaluation grid and censored values would make ratios of them misleading.
THRESHOLDED = {
    names.STEPS_TO: (
        False,
        "Steps to {p} accuracy",
        "steps",
        "needs more steps to reach {p} accuracy",
        "reaches {p} accuracy in fewer steps",
    ),
    names.SECONDS_TO: (
        True,
        "Train time to {p} accuracy",
        "cumulative train seconds",
        "needs more train time to reach {p} accuracy",
        "reaches {p} accuracy in less train time",
    ),
}
KNOWN = (*FIXED, *(f"{prefix}:<accuracy>" for prefix in THRESHOLDED))
FRACTIONS = frozenset({names.TEST_ACCURACY})  # measured as fractions of 1: differences under 1


class UnknownMeasure(ValueError):
    """A measure name outside the catalogue; the message lists the known ones."""


def measure(name: str) -> Measure:
    """The catalogue entry for a spec's metric name; raises UnknownMeasure with the fix."""
    if not isinstance(name, str):
        raise UnknownMeasure(f"must be a metric name, got {name!r}. Known: {', '.join(KNOWN)}.")
    if name in FIXED:
        log_scale, title, unit, higher, lower = FIXED[name]
        return Measure(name, name, log_scale, title, unit, higher, lower)
    prefix, _, value = name.partition(":")
    if prefix not in THRESHOLDED or not value:
        raise UnknownMeasure(f"unknown metric {name!r}. Known: {', '.join(KNOWN)}.")
    try:
        threshold = float(value)
    except ValueError:
        threshold = float("nan")
    if not 0 < threshold <= 1:
        raise UnknownMeasure(
            f"{name!r}: the accuracy after '{prefix}:' must be a number in (0, 1], "
            f"such as {prefix}:0.97."
        )
    log_scale, title, unit, higher, lower = THRESHOLDED[prefix]
    p = percent(threshold)
    return Measure(
        names.threshold_metric(prefix, threshold),
        names.threshold_column(prefix, threshold),
        log_scale,
        title.format(p=p),
        unit,
        higher.format(p=p),
        lower.format(p=p),
        threshold,
    )


def effect_problem(metric: str, effect: float) -> str | None:
    """Why an effect to size a study for (a claim's effect, `power --effect`) means nothing
    for this metric, with the fix; None when it is usable. The effect is in the claim's units:
    a difference (0 is no effect), or for a ratio metric a ratio (above 0; 1 is no effect)."""
    import math

    log_scale = measure(metric).log_scale
    example = (
        f"{metric} is a ratio metric: give a ratio above 0 other than 1, e.g. 1.05 (5% more) "
        "or 0.95 (5% less)"
        if log_scale
        else f"{metric} is compared as a difference: give a nonzero difference in its units, "
        "e.g. 0.005 (half an accuracy point)"
    )
    if not math.isfinite(effect):
        return f"{effect} is not a finite number; {example}."
    if log_scale and effect <= 0:
        return f"{effect:g} is not a ratio (a ratio is above 0); {example}."
    if effect == (1 if log_scale else 0):
        return f"{effect:g} is no effect at all, which no number of seeds detects; {example}."
    if metric in FRACTIONS and abs(effect) >= 1:
        return (
            f"{effect:g} cannot be a difference of {metric}, a fraction between 0 and 1 (0.97 is "
            "97%): give it as a fraction too, e.g. 0.001 for 0.1 accuracy points."
        )
    return None
