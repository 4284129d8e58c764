"""Load-sweep summaries on hand-made aggregates: best configurations, frontier, error-rate guard."""
import pandas as pd

from benchmark_assets.kinds.load_sweep.analysis import Objective, summarise_sweep

OBJECTIVES = [Objective("request_throughput_avg", True), Objective("time_to_first_token_p99", False)]


def aggregates(points: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    rows = []
    for key, (throughput, ttft, errors) in points.items():
        for metric, mean in (("request_throughput_avg", throughput), ("time_to_first_token_p99", ttft),
                             ("error_rate", errors)):
            rows.append({"sweep_point": key, "metric": metric, "n": 3, "n_failed": 0, "mean": mean, "std": 0.1,
                         "min": mean, "max": mean, "cv": 0.0, "se": 0.0, "t_low": mean, "t_high": mean,
                         "bootstrap_low": mean, "bootstrap_high": mean, "single_run": False})
    return pd.DataFrame(rows)


def summarise(points, **options):
    keys = list(points)
    return summarise_sweep(aggregates(points), {k: {"concurrency": int(k.split("=")[1])} for k in keys}, OBJECTIVES,
                           latency_column="time_to_first_token_p99", failures=pd.DataFrame(columns=["sweep_point", "trial", "error"]),
                           metadata={}, **options)


def test_a_point_that_fails_many_requests_fast_is_not_ranked():
    # concurrency=32 looks best on both axes only because 30 % of its requests fail at once.
    points = {"concurrency=1": (10, 22, 0.0), "concurrency=8": (50, 40, 0.0), "concurrency=32": (60, 15, 0.3)}
    guarded = summarise(points, max_error_rate=0.01)
    assert guarded["pareto_sweep_points"] == ["concurrency=1", "concurrency=8"]
    assert guarded["best_configurations"]["best_throughput"]["sweep_point"] == "concurrency=8"
    assert guarded["best_configurations"]["best_latency_p99"]["sweep_point"] == "concurrency=1"
    assert guarded["not_ranked_for_errors"] == {"concurrency=32": 0.3}
    unguarded = summarise(points)
    assert unguarded["pareto_sweep_points"] == ["concurrency=32"]


def test_trends_along_the_swept_parameter():
    points = {"concurrency=1": (10, 22, 0.0), "concurrency=4": (34, 27, 0.0), "concurrency=16": (83, 44, 0.0),
              "concurrency=64": (82, 620, 0.0)}
    trends = {t["metric"]: t for t in summarise(points)["trends"]["concurrency"]}
    assert trends["request_throughput_avg"]["direction"] == "peaks" and trends["request_throughput_avg"]["extreme_at"] == 16
    assert trends["time_to_first_token_p99"]["direction"] == "increasing"
