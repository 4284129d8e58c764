"""The acceptance suite's example: float32 embeddings against int8-quantised ones (numpy only).

A corpus of 4,000 unit vectors in 384 dimensions (clustered, like sentence embeddings) and 200
queries, generated from a seed. The optimised side stores each vector as int8 codes with one
float32 scale per vector (symmetric per-vector quantisation); searches score every vector and
keep the top 10. Each function is called with the repeat's seed and returns its metrics; the
suite's harness times the call and measures its peak memory.

- ``index_float32`` / ``index_int8``: build the index from the raw vectors (peak memory).
- ``search_float32`` / ``search_int8``: score all queries and take each one's top 10 (time).
  numpy has no int8 matrix product (an integer product does not use BLAS and is far slower), so
  the int8 search decodes blocks of codes to float32 and scores them; it saves memory, not time.
- ``quality_float32`` / ``quality_int8``: how the int8 top 10 agrees with exact float32 search
  and how far its similarities are from the exact ones (float32 against itself: 1 and 0).

The corpus and the exact results of a seed are cached, so warm-up calls pay for generating them
and measured calls time only the work named.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

VECTORS, DIMENSIONS, QUERIES, TOP_K = 4000, 384, 200, 10
CLUSTERS, SPREAD = 64, 1.0
BLOCK = 32  # rows quantised or decoded at a time: the temporaries stay small beside the index


@lru_cache(maxsize=4)
def corpus(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw corpus vectors, unit-length queries) of a seed, float32; read-only."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIMENSIONS), dtype=np.float32)
    vectors = centres[rng.integers(0, CLUSTERS, VECTORS)]
    vectors += SPREAD * rng.standard_normal((VECTORS, DIMENSIONS), dtype=np.float32)
    queries = vectors[rng.integers(0, VECTORS, QUERIES)] / np.linalg.norm(vectors, axis=1).mean()
    queries = queries + 0.5 * SPREAD * rng.standard_normal(queries.shape, dtype=np.float32) / np.sqrt(DIMENSIONS)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for array in (vectors, queries):
        array.flags.writeable = False
    return vectors, queries


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float32 copy: the float32 index."""
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and one float32 scale per unit-length vector, block by block."""
    codes = np.empty(vectors.shape, dtype=np.int8)
    scales = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), BLOCK):
        block = normalise(vectors[start:start + BLOCK])
        scale = np.abs(block).max(axis=1) / 127.0
        scales[start:start + BLOCK] = scale
        codes[start:start + BLOCK] = np.rint(block / scale[:, None])
    return codes, scales


@lru_cache(maxsize=4)
def float32_index(seed: int) -> np.ndarray:
    return normalise(corpus(seed)[0])


@lru_cache(maxsize=4)
def int8_index(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return quantise(corpus(seed)[0])


def top_k(scores: np.ndarray) -> np.ndarray:
    """Indices of each row's TOP_K highest scores (in no particular order)."""
    return np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]


def float32_scores(seed: int) -> np.ndarray:
    return corpus(seed)[1] @ float32_index(seed).T


def int8_scores(seed: int) -> np.ndarray:
    codes, scales = int8_index(seed)
    queries = corpus(seed)[1]
    scores = np.empty((len(queries), len(codes)), dtype=np.float32)
    step = 1024
    for start in range(0, len(codes), step):
        decoded = codes[start:start + step].astype(np.float32) * scales[start:start + step, None]
        scores[:, start:start + step] = queries @ decoded.T
    return scores


def index_float32(seed: int) -> dict:
    index = normalise(corpus(seed)[0])
    return {"index_bytes": index.nbytes}


def index_int8(seed: int) -> dict:
    codes, scales = quantise(corpus(seed)[0])
    return {"index_bytes": codes.nbytes + scales.nbytes}


def search_float32(seed: int) -> None:
    top_k(float32_scores(seed))


def search_int8(seed: int) -> None:
    top_k(int8_scores(seed))


@lru_cache(maxsize=4)
def exact(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact float32 scores of every (query, vector) and each query's exact top 10."""
    scores = float32_scores(seed)
    return scores, top_k(scores)


def _quality(seed: int, scores: np.ndarray) -> dict:
    exact_scores, exact_top = exact(seed)
    found = top_k(scores)
    agreement = np.mean([np.intersect1d(a, b).size / TOP_K for a, b in zip(found, exact_top)])
    error = np.abs(np.take_along_axis(scores, found, 1) - np.take_along_axis(exact_scores, found, 1)).mean()
    return {"top10_agreement": float(agreement), "cosine_error": float(error)}


def quality_float32(seed: int) -> dict:
    return _quality(seed, float32_scores(seed))


def quality_int8(seed: int) -> dict:
    return _quality(seed, int8_scores(seed))
