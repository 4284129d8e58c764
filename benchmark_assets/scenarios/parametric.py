"""Seven-axis parametric scenarios for the memory target: deterministic seeds and a fixed split."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields

import numpy as np

IMPORTANCE_SHAPES = ("uniform", "clustered", "bimodal", "exponential", "flat")
ACCESS_PATTERNS = ("all_recent", "half_stale", "mostly_stale", "interleaved")

# The domain of each numeric axis; a study may narrow these, never widen them.
AXIS_DOMAINS: dict[str, tuple[float, float]] = {
    "record_count": (5, 100),
    "outcome_frequency": (0.0, 1.0),
    "noise_ratio": (0.0, 0.5),
    "link_density": (0.0, 1.0),
    "age_spread_days": (1, 365),
}
INTEGER_AXES = frozenset({"record_count", "age_spread_days"})

# The latent usefulness of a record fades with age at this rate; the scorer's decay_rate only
# approximates it, which is what makes decay_rate worth tuning.
TRUE_DECAY_RATE = 0.3


@dataclass(frozen=True)
class AxisRanges:
    """The ranges default seeds are drawn from; the defaults are the whole domain of each axis."""

    record_count: tuple[int, int] = (5, 100)
    importance_shapes: tuple[str, ...] = IMPORTANCE_SHAPES
    access_patterns: tuple[str, ...] = ACCESS_PATTERNS
    outcome_frequency: tuple[float, float] = (0.0, 1.0)
    noise_ratio: tuple[float, float] = (0.0, 0.5)
    link_density: tuple[float, float] = (0.0, 1.0)
    age_spread_days: tuple[int, int] = (1, 365)

    def __post_init__(self) -> None:
        for axis, (low, high) in AXIS_DOMAINS.items():
            chosen_low, chosen_high = getattr(self, axis)
            if not (low <= chosen_low <= chosen_high <= high):
                raise ValueError(
                    f"{axis}: range [{chosen_low}, {chosen_high}] must lie within [{low}, {high}] "
                    "with low <= high"
                )
        for axis, allowed in (
            ("importance_shapes", IMPORTANCE_SHAPES),
            ("access_patterns", ACCESS_PATTERNS),
        ):
            chosen = getattr(self, axis)
            unknown = [value for value in chosen if value not in allowed]
            if not chosen or unknown:
                raise ValueError(
                    f"{axis}: {unknown or 'empty list'} not allowed; choose from {list(allowed)}"
                )


@dataclass(frozen=True)
class ScenarioSeed:
    """The seven axes of one scenario plus the id that makes it reproducible."""

    seed_id: int
    record_count: int
    importance_shape: str
    access_pattern: str
    outcome_frequency: float
    noise_ratio: float
    link_density: float
    age_spread_days: int

    def __post_init__(self) -> None:
        for axis, (low, high) in AXIS_DOMAINS.items():
            value = getattr(self, axis)
            if not (low <= value <= high):
                raise ValueError(f"{axis}={value} is outside [{low}, {high}]")
        if self.importance_shape not in IMPORTANCE_SHAPES:
            raise ValueError(f"importance_shape={self.importance_shape!r} not in {IMPORTANCE_SHAPES}")
        if self.access_pattern not in ACCESS_PATTERNS:
            raise ValueError(f"access_pattern={self.access_pattern!r} not in {ACCESS_PATTERNS}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_mapping(cls, row) -> ScenarioSeed:
        values = {f.name: row[f.name] for f in fields(cls)}
        for name in ("seed_id", *INTEGER_AXES):
            values[name] = int(values[name])
        for name in ("outcome_frequency", "noise_ratio", "link_density"):
            values[name] = float(values[name])
        return cls(**values)


def default_seeds(n: int = 50, *, base_seed: int = 42, axes: AxisRanges | None = None) -> list[ScenarioSeed]:
    """The same ``n`` seeds on every machine: drawn only with ``random.Random.random``,
    whose stream Python keeps stable across versions and platforms."""
    if n < 2:
        raise ValueError(f"count={n}: at least 2 scenarios are needed for a train/validation split")
    axes = axes or AxisRanges()
    rng = random.Random(base_seed)

    def uniform(bounds: tuple[float, float]) -> float:
        low, high = bounds
        # Rounded for readable catalogs, then clamped so rounding never leaves the range.
        return min(high, max(low, round(low + (high - low) * rng.random(), 4)))

    def integer(bounds: tuple[int, int]) -> int:
        low, high = bounds
        return min(high, low + int((high - low + 1) * rng.random()))

    def pick(options: tuple[str, ...]) -> str:
        return options[min(len(options) - 1, int(len(options) * rng.random()))]

    seeds = []
    for seed_id in range(n):
        seeds.append(
            ScenarioSeed(
                seed_id=seed_id,
                record_count=integer(axes.record_count),
                importance_shape=pick(axes.importance_shapes),
                access_pattern=pick(axes.access_patterns),
                outcome_frequency=uniform(axes.outcome_frequency),
                noise_ratio=uniform(axes.noise_ratio),
                link_density=uniform(axes.link_density),
                age_spread_days=integer(axes.age_spread_days),
            )
        )
    return seeds


def split_seed_ids(seed_ids, train_fraction: float = 0.7) -> tuple[list[int], list[int]]:
    """Train gets the first ``train_fraction`` of the ids in ascending order, validation the rest."""
    ordered = sorted(int(s) for s in seed_ids)
    n_train = round(len(ordered) * train_fraction)
    if not 0 < n_train < len(ordered):
        raise ValueError(
            f"train_fraction={train_fraction} leaves an empty train or validation set "
            f"for {len(ordered)} scenarios"
        )
    return ordered[:n_train], ordered[n_train:]


@dataclass(frozen=True, eq=False)
class Scenario:
    """One generated memory store: what the scorer can observe, plus the latent truth it cannot."""

    seed: ScenarioSeed
    importance: np.ndarray  # observed, noisy view of value
    age_days: np.ndarray
    days_since_access: np.ndarray
    acted: np.ndarray
    dismissed: np.ndarray
    contradicted: np.ndarray
    co_occurrence: np.ndarray  # (n, n) symmetric link counts, 0 = no link
    link_age_days: np.ndarray  # (n, n)
    true_usefulness: np.ndarray  # latent ground truth, never shown to the scorer
    extras: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"parametric-{self.seed.seed_id:03d}"

    @property
    def record_count(self) -> int:
        return int(self.importance.shape[0])

    def relevant_count(self) -> int:
        return max(3, self.record_count // 3)


def _base_value(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if shape == "uniform":
        return rng.random(n)
    if shape == "clustered":
        centres = rng.random(3)
        return np.clip(centres[rng.integers(0, 3, n)] + rng.normal(0.0, 0.05, n), 0.0, 1.0)
    if shape == "bimodal":
        high = rng.random(n) < 0.5
        return np.where(high, rng.beta(8, 2, n), rng.beta(2, 8, n))
    if shape == "exponential":
        return np.clip(rng.exponential(0.25, n), 0.0, 1.0)
    return np.clip(0.5 + rng.normal(0.0, 0.03, n), 0.0, 1.0)  # flat: importance says little


def _days_since_access(pattern: str, age: np.ndarray, quality: np.ndarray, rng) -> np.ndarray:
    n = age.shape[0]
    recent = rng.random(n) * np.minimum(age, 2.0)
    stale = age * (0.5 + 0.5 * rng.random(n))
    # Useful records are a little more likely to have been touched lately.
    recent_chance = {"all_recent": 1.0, "half_stale": 0.5, "mostly_stale": 0.2, "interleaved": None}[pattern]
    if recent_chance is None:
        is_recent = (np.arange(n) % 2) == 0
    else:
        is_recent = rng.random(n) < np.clip(recent_chance * (0.6 + 0.8 * quality), 0.0, 1.0)
    return np.where(is_recent, recent, stale)


def build_scenario(seed: ScenarioSeed) -> Scenario:
    """Build the records of one scenario; the same seed always gives the same arrays."""
    rng = np.random.default_rng([seed.seed_id, 20260])
    n = seed.record_count
    base = _base_value(seed.importance_shape, n, rng)
    quality = rng.random(n)  # hidden; outcomes and links reveal it, importance does not
    is_noise = rng.random(n) < seed.noise_ratio
    base = np.where(is_noise, 0.1 * rng.random(n), base)
    quality = np.where(is_noise, 0.0, quality)
    importance = np.where(
        is_noise, 0.15 * rng.random(n), np.clip(base + rng.normal(0.0, 0.15, n), 0.15, 1.0)
    )
    age = rng.random(n) * seed.age_spread_days
    true_usefulness = (0.5 * base + 0.5 * quality) * (1.0 + age) ** (-TRUE_DECAY_RATE)
    true_usefulness = np.where(is_noise, 0.0, true_usefulness)

    frequency = seed.outcome_frequency
    acted = rng.poisson(3.0 * frequency * quality)
    dismissed = rng.poisson(2.0 * frequency * (1.0 - quality))
    contradicted = rng.poisson(0.8 * frequency * (1.0 - quality) ** 2 + 0.5 * frequency * is_noise)

    # Useful records co-occur with each other more often than with the rest.
    affinity = 0.3 + 0.7 * np.sqrt(np.outer(quality, quality))
    upper = np.triu(rng.random((n, n)) < seed.link_density * affinity, k=1)
    counts = np.where(upper, 1 + rng.poisson(2.0 * np.outer(quality, quality)), 0)
    co_occurrence = counts + counts.T
    link_age = np.minimum.outer(age, age)
    return Scenario(
        seed=seed,
        importance=importance,
        age_days=age,
        days_since_access=_days_since_access(seed.access_pattern, age, quality, rng),
        acted=acted,
        dismissed=dismissed,
        contradicted=contradicted,
        co_occurrence=co_occurrence,
        link_age_days=link_age,
        true_usefulness=true_usefulness,
    )
