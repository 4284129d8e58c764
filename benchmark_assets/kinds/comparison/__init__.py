"""``kind: comparison``: control vs candidate on shared seeds, with intervals, t-tests, power and variance."""
from benchmark_assets.kinds.comparison.kind import ComparisonKind
from benchmark_assets.kinds.comparison.spec import ComparisonSpec, ComparisonStudy

KIND = ComparisonKind()

__all__ = ["KIND", "ComparisonKind", "ComparisonSpec", "ComparisonStudy"]
