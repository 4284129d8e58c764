"""``kind: load_sweep``: sweep the load on an LLM server; per-point intervals, best configurations, Pareto frontier."""
from benchmark_assets.kinds.load_sweep.kind import LoadSweepKind
from benchmark_assets.kinds.load_sweep.spec import LoadSweepSpec, LoadSweepStudy

KIND = LoadSweepKind()

__all__ = ["KIND", "LoadSweepKind", "LoadSweepSpec", "LoadSweepStudy"]
