"""``kind: estimator_benchmark``: treatment-effect estimators ranked on a template catalog."""
from benchmark_assets.kinds.estimator_benchmark.kind import EstimatorBenchmarkKind

KIND = EstimatorBenchmarkKind()

__all__ = ["KIND", "EstimatorBenchmarkKind"]
