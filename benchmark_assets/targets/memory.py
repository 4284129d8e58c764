"""A vectorised model of an agent memory store that ranks records for retrieval, scored by ~20 constants."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark_assets.scenarios.parametric import Scenario

METRICS = ("ndcg_5", "ndcg_10", "precision_5", "precision_10", "mrr")
METRIC_BOUNDS = dict.fromkeys(METRICS, (0.0, 1.0))

# The names the scorer reads. Their values live in the study file, never here.
CONSTANTS = frozenset(
    {
        # tier 1: core scoring
        "decay_rate",
        "recency_weight",
        "recency_half_life_days",
        "write_filter_threshold",
        "surfacing_threshold",
        "initial_confidence",
        "confidence_weight",
        # tier 2: outcome signals and reinforcement cycles
        "acted_confidence_signal",
        "dismissed_confidence_signal",
        "contradicted_confidence_signal",
        "cycle_strengthen_factor",
        "cycle_weaken_factor",
        "confidence_floor",
        "max_confidence",
        # tier 3: co-occurrence links and spreading activation
        "link_initial_weight",
        "link_delta",
        "link_decay_factor",
        "link_decay_per_hop",
        "link_activation_weight",
        "link_seed_count",
    }
)
INTEGER_CONSTANTS = frozenset({"link_seed_count"})


@dataclass(frozen=True, eq=False)
class ScenarioBatch:
    """Scenarios padded to one (scenarios x records) layout so a sweep point is one array pass."""

    present: np.ndarray  # bool (S, N)
    importance: np.ndarray
    age_days: np.ndarray
    days_since_access: np.ndarray
    acted: np.ndarray
    dismissed: np.ndarray
    contradicted: np.ndarray
    co_occurrence: np.ndarray  # (S, N, N)
    link_age_weeks: np.ndarray  # (S, N, N)
    gain: np.ndarray  # graded relevance of the relevant records, 0 elsewhere
    relevant: np.ndarray  # bool (S, N)
    ideal_dcg_5: np.ndarray
    ideal_dcg_10: np.ndarray
    jitter: np.ndarray  # tiny seeded tie-breaker

    @classmethod
    def from_scenarios(cls, scenarios: list[Scenario], seeds: list[int] | None = None) -> ScenarioBatch:
        if not scenarios:
            raise ValueError("no scenarios to evaluate")
        s_count = len(scenarios)
        width = max(sc.record_count for sc in scenarios)
        seeds = list(seeds) if seeds is not None else [sc.seed.seed_id for sc in scenarios]

        def pad(attr: str, fill=0.0) -> np.ndarray:
            out = np.full((s_count, width), fill, dtype=float)
            for i, sc in enumerate(scenarios):
                values = getattr(sc, attr)
                out[i, : values.shape[0]] = values
            return out

        present = np.zeros((s_count, width), dtype=bool)
        co_occurrence = np.zeros((s_count, width, width))
        link_age = np.zeros((s_count, width, width))
        relevant = np.zeros((s_count, width), dtype=bool)
        gain = np.zeros((s_count, width))
        jitter = np.zeros((s_count, width))
        for i, sc in enumerate(scenarios):
            n = sc.record_count
            present[i, :n] = True
            co_occurrence[i, :n, :n] = sc.co_occurrence
            link_age[i, :n, :n] = sc.link_age_days / 7.0
            truth = sc.true_usefulness
            top = np.argsort(-truth, kind="stable")[: sc.relevant_count()]
            relevant[i, top] = True
            peak = truth[top].max()
            gain[i, top] = truth[top] / peak if peak > 0 else 1.0
            jitter[i, :n] = np.random.default_rng(seeds[i]).random(n) * 1e-9
        ideal = -np.sort(-gain, axis=1)
        discounts = 1.0 / np.log2(np.arange(2, width + 2))
        return cls(
            present=present,
            importance=pad("importance"),
            age_days=pad("age_days"),
            days_since_access=pad("days_since_access"),
            acted=pad("acted"),
            dismissed=pad("dismissed"),
            contradicted=pad("contradicted"),
            co_occurrence=co_occurrence,
            link_age_weeks=link_age,
            gain=gain,
            relevant=relevant,
            ideal_dcg_5=(ideal[:, :5] * discounts[: min(5, width)]).sum(axis=1),
            ideal_dcg_10=(ideal[:, :10] * discounts[: min(10, width)]).sum(axis=1),
            jitter=jitter,
        )


def score_records(batch: ScenarioBatch, params: dict) -> np.ndarray:
    """Retrieval score of every record; records that are never stored or surfaced get -inf."""
    p = params
    age_term = (1.0 + batch.age_days) ** (-p["decay_rate"])
    recency = np.exp(-batch.days_since_access * np.log(2.0) / p["recency_half_life_days"])
    base = batch.importance * age_term * (1.0 + p["recency_weight"] * recency)

    confidence = (
        p["initial_confidence"]
        + batch.acted * p["acted_confidence_signal"]
        - batch.dismissed * p["dismissed_confidence_signal"]
        - batch.contradicted * p["contradicted_confidence_signal"]
    )
    confidence = confidence * p["cycle_strengthen_factor"] ** np.minimum(batch.acted, 3.0)
    confidence = confidence * p["cycle_weaken_factor"] ** np.minimum(batch.dismissed + batch.contradicted, 3.0)
    confidence = np.clip(confidence, p["confidence_floor"], p["max_confidence"])
    score = base * confidence ** p["confidence_weight"]

    stored = batch.present & (batch.importance >= p["write_filter_threshold"])
    score = np.where(stored, score, 0.0)

    # Spreading activation from the top records over co-occurrence links, two hops.
    links = np.where(
        batch.co_occurrence > 0,
        (p["link_initial_weight"] + p["link_delta"] * (batch.co_occurrence - 1.0))
        * p["link_decay_factor"] ** batch.link_age_weeks,
        0.0,
    )
    links = links * stored[:, :, None] * stored[:, None, :]
    seed_count = int(p["link_seed_count"])
    peak = score.max(axis=1, keepdims=True)
    safe_peak = np.where(peak > 0, peak, 1.0)
    if seed_count > 0:
        threshold = -np.sort(-score, axis=1)[:, min(seed_count, score.shape[1]) - 1 : min(seed_count, score.shape[1])]
        sources = np.where(score >= threshold, score / safe_peak, 0.0)
        hop1 = np.matmul(links, sources[:, :, None])
        hop2 = np.matmul(links, hop1)
        hop1, hop2 = hop1[:, :, 0], hop2[:, :, 0]
        activation = p["link_decay_per_hop"] * hop1 + p["link_decay_per_hop"] ** 2 * hop2
        norm = activation.max(axis=1, keepdims=True)
        activation = activation / np.where(norm > 0, norm, 1.0)
        score = score + p["link_activation_weight"] * activation * safe_peak

    surfaced = stored & (score >= p["surfacing_threshold"] * score.max(axis=1, keepdims=True))
    return np.where(surfaced, score + batch.jitter, -np.inf)


def ranking_metrics(batch: ScenarioBatch, scores: np.ndarray) -> dict[str, np.ndarray]:
    """nDCG@5/10, precision@5/10 and MRR of each scenario's ranking, as arrays over scenarios."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked_scores = np.take_along_axis(scores, order, axis=1)
    retrieved = np.isfinite(ranked_scores)
    ranked_gain = np.take_along_axis(batch.gain, order, axis=1) * retrieved
    ranked_relevant = np.take_along_axis(batch.relevant, order, axis=1) & retrieved
    width = scores.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, width + 2))
    out = {}
    for k in (5, 10):
        dcg = (ranked_gain[:, :k] * discounts[: min(k, width)]).sum(axis=1)
        ideal = batch.ideal_dcg_5 if k == 5 else batch.ideal_dcg_10
        out[f"ndcg_{k}"] = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)
        out[f"precision_{k}"] = ranked_relevant[:, :k].sum(axis=1) / k
    first_hit = np.argmax(ranked_relevant, axis=1)
    has_hit = ranked_relevant.any(axis=1)
    out["mrr"] = np.where(has_hit, 1.0 / (first_hit + 1.0), 0.0)
    return out


def check_params(params: dict) -> None:
    missing = sorted(CONSTANTS - params.keys())
    unknown = sorted(params.keys() - CONSTANTS)
    if missing or unknown:
        raise ValueError(f"memory target: missing constants {missing}, unknown constants {unknown}")


def evaluate_batch(scenarios: list[Scenario], params: dict, seeds: list[int]) -> list[dict[str, float]]:
    """Evaluate one parameter setting on many scenarios in one vectorised pass."""
    check_params(params)
    batch = ScenarioBatch.from_scenarios(scenarios, seeds)
    return evaluate_prepared(batch, params)


def evaluate_prepared(batch: ScenarioBatch, params: dict) -> list[dict[str, float]]:
    """Like ``evaluate_batch`` for a batch that is already padded (reuse it across sweep points)."""
    metrics = ranking_metrics(batch, score_records(batch, params))
    return [
        {name: float(values[i]) for name, values in metrics.items()}
        for i in range(batch.present.shape[0])
    ]


def evaluate(scenario: Scenario, params: dict, seed: int) -> dict[str, float]:
    """The target interface: one scenario, one parameter setting, one seed -> metrics."""
    return evaluate_batch([scenario], params, [seed])[0]


evaluate.constants = CONSTANTS
evaluate.integer_constants = INTEGER_CONSTANTS
evaluate.metrics = METRICS
evaluate.metric_bounds = METRIC_BOUNDS
evaluate.prepare_batch = ScenarioBatch.from_scenarios
evaluate.evaluate_prepared = evaluate_prepared
