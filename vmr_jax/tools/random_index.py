"""Random collection indexes, generated a chunk at a time (`vmr_jax.tools.sharded_search`).

A collection is `chunks` chunks of `Shape.chunk_videos` videos x `Shape.per_video`
moments each; chunk c is drawn from its own seed `(seed, kind, 0, c)` (the queries:
`(seed, kind, 1, 0)`), so a process
generates its own chunks alone and the union over processes is the same collection for
any number of processes. What each kind's index stores, as the Predictor keeps it
(`registry.Retrieval.moments`):
- `cmhn`: a moment's `bits`-bit code packed into uint32 words (`hashing.pack_signs`)
  and its real-valued code of unit norm (for `cmhn.ranking_score`'s ties), scored by
  `cmhn.retrieval_score`; queries likewise;
- `fvmr`: a moment's `dim`-d float32 embedding, N(0, 1 / dim) a coordinate, scored by
  `fvmr.retrieval_score` (sigmoid of the inner product) against N(0, 1) queries.
Flag-free, float32 throughout (no float64 copy of a chunk but `numpy_scores`').
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("cmhn", "fvmr")


@dataclasses.dataclass(frozen=True)
class Shape:
  chunk_videos: int  # videos a chunk
  per_video: int  # moments a video
  bits: int  # CMHN code length
  dim: int  # FVMR embedding width

  @property
  def chunk_moments(self) -> int:
    return self.chunk_videos * self.per_video

  def bytes_per_moment(self, kind: str) -> int:
    """Index bytes a moment: CMHN's packed words and unit code, FVMR's embedding."""
    return 4 * (-(-self.bits // 32) + self.bits) if kind == "cmhn" else 4 * self.dim


def score_fn(kind: str):
  """The kind's `registry.Retrieval.score`: `(entries [V, N, ...], queries) -> [S, V, N]`."""
  from vmr_jax.models import cmhn, fvmr
  return {"cmhn": cmhn.retrieval_score, "fvmr": fvmr.retrieval_score}[kind]


def _codes(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Real codes `[..., L]` -> packed words `[..., ceil(L / 32)]` uint32, unit codes `[..., L]`."""
  from vmr_jax.layers.hashing import pack_signs
  real /= np.linalg.norm(real, axis=-1, keepdims=True)  # in place: the signs are kept
  return np.asarray(pack_signs(real)), real


def chunk_entries(kind: str, shape: Shape, chunk: int, seed: int = 0):
  """Chunk `chunk`'s index: CMHN `(words [Vc, N, W], units [Vc, N, L])`, FVMR `[Vc, N, D]`."""
  rng = np.random.default_rng([seed, KINDS.index(kind), 0, chunk])
  size = (shape.chunk_videos, shape.per_video, shape.bits if kind == "cmhn" else shape.dim)
  values = rng.standard_normal(size, dtype=np.float32)
  if kind == "cmhn":
    return _codes(values)
  values /= np.float32(np.sqrt(shape.dim))
  return values


def queries(kind: str, shape: Shape, count: int, seed: int = 0):
  """`count` queries, the same on every process: CMHN `([S, W], [S, L])`, FVMR `[S, D]`."""
  rng = np.random.default_rng([seed, KINDS.index(kind), 1, 0])
  values = rng.standard_normal((count, shape.bits if kind == "cmhn" else shape.dim),
                               dtype=np.float32)
  return _codes(values) if kind == "cmhn" else values


def numpy_scores(kind: str, entries, queries) -> np.ndarray:
  """`[S, Vc * N]` float64 scores of a chunk's moments, computed by numpy as the kind's
  `score_fn` defines them (CMHN: -Hamming distance + 0.25 cosine; FVMR: sigmoid)."""
  if kind == "cmhn":
    (words, units), (query_words, query_units) = entries, queries
    words, units = words.reshape(-1, words.shape[-1]), units.reshape(-1, units.shape[-1])
    distance = np.bitwise_count(query_words[:, None] ^ words[None]).sum(-1, dtype=np.int64)
    return -distance + 0.25 * _products(units, query_units)
  return 1 / (1 + np.exp(-_products(entries.reshape(-1, entries.shape[-1]), queries)))


def _products(moments: np.ndarray, queries: np.ndarray) -> np.ndarray:
  """`[M, D]`, `[S, D]` -> `[S, M]` float64 inner products."""
  return (moments.astype(np.float64) @ queries.T.astype(np.float64)).T
