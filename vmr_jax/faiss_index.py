"""Collection search on the host with faiss, where it beats JAX on a CPU.

faiss's `IndexBinaryFlat` scans packed binary codes with the CPU's popcount and a
heap per query, several times faster than XLA's CPU code for the same Hamming
distances (docs/benchmarks.md, "Collection search"). `HammingIndex` gives the
Predictor's search (`predictor.make_corpus_top_k`) the same top k from it: CMHN ranks
by the Hamming distance with equal distances ordered by the cosine of the
real-valued codes (`cmhn.ranking_score`), which faiss does not know, so the search is
1. the k nearest codes of each query (faiss): the k-th distance t;
2. every code within t (faiss's range search), the ties at t among them;
3. `rank(distance, cosine)` of those, ties to the lower index, the top k kept.
`pip install faiss-cpu` (the `faiss` extra); nothing imports faiss unless used.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def available() -> bool:
  try:
    import faiss  # noqa: F401
  except ImportError:
    return False
  return True


class HammingIndex:
  """CMHN's video side `(words [V, N, W] uint32, units [V, N, L])` with `valid [V, N]`,
  searched as `predictor.make_corpus_top_k` searches it (module docstring)."""

  def __init__(self, entries, valid: np.ndarray,
               rank: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    import faiss
    words, units = (np.asarray(x) for x in entries)
    valid = np.asarray(valid).reshape(-1)
    self.ids = np.flatnonzero(valid)  # [n] flat index of each indexed code
    self.invalid = np.flatnonzero(~valid)
    self.units = units.reshape(-1, units.shape[-1])[self.ids]
    self.rank = rank
    self.index = faiss.IndexBinaryFlat(32 * words.shape[-1])
    self.index.add(np.ascontiguousarray(words.reshape(-1, words.shape[-1])[self.ids])
                   .view(np.uint8))

  def top_k(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`(words [S, W], units [S, L])` -> `(scores [S, k'], flat index [S, k'])`, the
    values and order of `make_corpus_top_k` (k' = min(k, V N); fewer than k' valid
    codes: the rest -inf, at the lowest invalid indexes, as its top k of -inf falls)."""
    words, units = (np.asarray(x) for x in queries)
    codes = np.ascontiguousarray(words).view(np.uint8)
    k = min(k, len(self.ids) + len(self.invalid))  # as jax.lax.top_k of V x N scores
    found = min(k, len(self.ids))
    scores = np.full((len(words), k), -np.inf, np.float32)
    index = np.tile(self.invalid[:k - found], (len(words), 1))
    index = np.concatenate([np.zeros((len(words), found), np.int64), index], axis=1)
    if not found:
      return scores, index
    kth = self.index.search(codes, found)[0][:, -1]  # [S] the k-th distance
    limits, distance, position = self.index.range_search(codes, int(kth.max()) + 1)
    for s in range(len(words)):
      d, p = distance[limits[s]:limits[s + 1]], position[limits[s]:limits[s + 1]]
      d, p = d[d <= kth[s]], p[d <= kth[s]]
      score = self.rank(d.astype(np.float32), self.units[p] @ units[s]).astype(np.float32)
      best = np.lexsort((self.ids[p], -score))[:found]
      scores[s, :found], index[s, :found] = score[best], self.ids[p][best]
    return scores, index
