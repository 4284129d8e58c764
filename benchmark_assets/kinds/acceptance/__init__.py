"""``kind: acceptance``: baseline vs optimised benchmarks judged against bands on intervals."""
from benchmark_assets.kinds.acceptance.kind import AcceptanceKind
from benchmark_assets.kinds.acceptance.spec import AcceptanceSpec, AcceptanceStudy

KIND = AcceptanceKind()

__all__ = ["KIND", "AcceptanceKind", "AcceptanceSpec", "AcceptanceStudy"]
