"""``kind: ratchet``: propose keep/change for tiered constants, with held-out validation and corrected intervals."""
from benchmark_assets.kinds.ratchet.kind import RatchetKind
from benchmark_assets.kinds.ratchet.spec import RatchetSpec, RatchetStudy

KIND = RatchetKind()

__all__ = ["KIND", "RatchetKind", "RatchetSpec", "RatchetStudy"]
