"""A study: arms x seeds on one dataset, the claims it tests and its [adaptive] design.

Read from TOML by spec.parse; stored with the study by spec.record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mnistlab import names
from mnistlab.spec.measures import HIGHER, LOWER, SAME, Measure, measure
from mnistlab.spec.run import PlannedRun, RunConfig

# What the parser fills in for an arm with a user's net (its file and the file's hash); kept in
# the stored spec, so a study read back from the store needs neither the file nor its class.
RESOLVED_SETTINGS = ("model_sha256", "model_source")
# The study's dataset, and for an .npz file what the parser resolves: its hash and path.
DATASET_FIELDS = ("dataset", "dataset_sha256", "dataset_source")
# What a spec's [settings] and arm tables may set: the dataset is the study's, model and seed
# the arm's and the grid's.
RUN_SETTINGS = tuple(
    f.name
    for f in dataclasses.fields(RunConfig)
    if f.name not in ("model", "seed", *DATASET_FIELDS, *RESOLVED_SETTINGS)
)
DEFAULT_THRESHOLDS = (0.90, 0.95, 0.97, 0.98)


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: a registered model plus the run settings it changes."""

    name: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """What a claim says about every variant against the baseline: its metric is higher/lower."""

    metric: str
    direction: str  # HIGHER, LOWER, EITHER (any difference) or SAME (within margin)
    margin: float | None = None  # equivalence margin: metric units, or a ratio (> 1)
    effect: float | None = None  # the effect `mnistlab power` sizes the study for (same units)

    @property
    def measure(self) -> Measure:
        return measure(self.metric)


def paper_claims(primary_threshold: float) -> tuple[Claim, ...]:
    """The paper's three claims: fewer steps to the threshold, more time, a noisier loss."""
    return (
        Claim(names.threshold_metric(names.STEPS_TO, primary_threshold), LOWER),
        Claim(names.EPOCH_TRAIN_SECONDS, HIGHER),
        Claim(names.LOG_LOSS_SPREAD, HIGHER),
    )


@dataclass(frozen=True)
class RankBy:
    """[ranking] (or compare = "all-pairs"): rank every arm on one measure, all pairs tested."""

    metric: str
    better: str  # HIGHER or LOWER


@dataclass(frozen=True)
class Adaptive:
    """[adaptive]: add `block` seeds per look until every claim is decided or max_seeds."""

    max_seeds: int
    block: int


@dataclass(frozen=True)
class StudySpec:
    """Arms x seeds on one dataset, and the claims tested, as read from experiments/*.toml."""

    name: str
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    baseline: str
    claims: tuple[Claim, ...]
    dataset: str = "mnist"
    settings: dict[str, Any] = field(default_factory=dict)
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    primary_threshold: float = 0.95  # where the paper's steps claim is tested by default
    question: str = ""
    description: str = ""
    source: str = ""
    adaptive: Adaptive | None = None
    strict: bool = False  # reuse a finished run only at the same device and thread count
    dataset_sha256: str = ""  # an .npz dataset: the file's SHA-256 and absolute path, as
    dataset_source: str = ""  # resolved when the spec was first read
    ranking: RankBy | None = None  # stats.ranking: which arm is best, all pairs in one family

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every seed the study may train: with [adaptive], up to max_seeds."""
        if self.adaptive is None:
            return self.seeds
        return tuple(range(self.adaptive.max_seeds))

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.arms]

    @property
    def variants(self) -> list[str]:
        """Every arm but the baseline, in the spec's order: each is compared with the baseline."""
        return [name for name in self.arm_names if name != self.baseline]

    @property
    def family_size(self) -> int:
        """Tests under one Holm correction: every variant against the baseline, every claim."""
        return len(self.variants) * len(self.claims)

    @property
    def analysis_thresholds(self) -> tuple[float, ...]:
        """The descriptive thresholds plus any a claim names."""
        named = {c.measure.threshold for c in self.claims if c.measure.threshold is not None}
        return tuple(sorted(set(self.thresholds) | named))

    def design(self):  # noqa: ANN201 - a sequential.SequentialDesign, or None
        """The sequential design of an [adaptive] spec (None without one)."""
        if self.adaptive is None:
            return None
        from mnistlab.stats.sequential import SequentialDesign

        tests = sum((c.direction != SAME) + (c.margin is not None) for c in self.claims)
        return SequentialDesign(
            len(self.seeds),
            self.adaptive.block,
            self.adaptive.max_seeds,
            family=max(1, tests * len(self.variants)),
        )

    def arm(self, name: str) -> Arm:
        return next(arm for arm in self.arms if arm.name == name)

    def arm_config(self, arm: Arm, seed: int) -> RunConfig:
        own = (
            {"dataset_sha256": self.dataset_sha256, "dataset_source": self.dataset_source}
            if self.dataset_sha256
            else {}
        )
        return RunConfig(
            model=arm.model,
            seed=seed,
            dataset=self.dataset,
            **own,
            **{**self.settings, **arm.settings},
        )

    def planned_runs(self, seeds: tuple[int, ...] | None = None) -> list[PlannedRun]:
        """The grid, interleaved by seed (cnn2 s0, cnn3 s0, cnn2 s1, ...) so drift hits all alike.

        seeds: default the spec's seeds (with [adaptive], those of the first look).
        """
        return [
            PlannedRun(arm.name, self.arm_config(arm, seed))
            for seed in (self.seeds if seeds is None else seeds)
            for arm in self.arms
        ]

    def run_configs(self) -> list[RunConfig]:
        return [planned.config for planned in self.planned_runs()]

    def arm_by_hash(self) -> dict[str, str]:
        """Config hash -> arm: which arm a stored run belongs to (arms never share a config)."""
        return {p.config.config_hash(): p.arm for p in self.planned_runs(self.all_seeds)}

    def eval_subsets(self) -> list[int]:
        return sorted({self.arm_config(arm, 0).eval_subset for arm in self.arms})
