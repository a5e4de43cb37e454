"""Collection search speed (`python -m vmr_jax.tools.bench --task=corpus`): the Predictor's
sharded top-k over random CMHN codes and FVMR embeddings against numpy and, where
installed, faiss. A module of its own, without flags, so that tests can import it
next to the other command lines."""

from __future__ import annotations

import time

import jax
import numpy as np


def corpus_comparison(moments: int, per_video: int, bits: int, dim: int, queries: int,
                      k: int, steps: int, seed: int = 0) -> dict[str, dict[str, tuple]]:
  """`{"cmhn" | "fvmr": {method: (seconds per batch, top-k scores equal JAX's)}}` for
  `corpus` (module docstring): JAX, numpy and (if importable) faiss."""
  from vmr_jax import predictor, sharding
  from vmr_jax.layers.hashing import pack_signs
  from vmr_jax.models import cmhn, fvmr
  mesh = sharding.make_mesh()
  devices = mesh.devices.size
  videos = devices * -(-moments // (per_video * devices))
  rng = np.random.default_rng(seed)
  real_codes = rng.normal(size=(videos, per_video, bits)).astype(np.float32)
  real_queries = rng.normal(size=(queries, bits)).astype(np.float32)
  codes, code_queries = np.asarray(pack_signs(real_codes)), np.asarray(pack_signs(real_queries))
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  # CMHN's entries: packed bits and unit real codes (its ties go by their cosine).
  code_entries = (codes, unit(real_codes))
  code_query_entries = (code_queries, unit(real_queries))
  vectors = (rng.normal(size=(videos, per_video, dim)) / np.sqrt(dim)).astype(np.float32)
  vector_queries = rng.normal(size=(queries, dim)).astype(np.float32)  # p ~ N(0, 1)

  def timed(run):
    out = run()  # compiles / warms up
    start = time.perf_counter()
    for _ in range(steps):
      out = run()
    return (time.perf_counter() - start) / steps, out

  def numpy_top_k(scores):
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.sort(np.take_along_axis(scores, part, 1), axis=1)[:, ::-1]

  results = {}
  for name, model, entries, query, flat_score in (
      ("cmhn", cmhn, code_entries, code_query_entries,
       lambda: -np.bitwise_count(codes.reshape(1, -1, codes.shape[-1])
                                 ^ code_queries[:, None]).sum(-1, dtype=np.int32)),
      ("fvmr", fvmr, vectors, vector_queries,
       lambda: vector_queries @ vectors.reshape(-1, dim).T)):
    top_k = jax.jit(predictor.make_corpus_top_k(model.retrieval_score, None, mesh, k))
    data = sharding.data_sharded(mesh)
    args = (jax.device_put(entries, data),
            jax.device_put(np.ones((videos, per_video), bool), data), jax.device_put(query))
    seconds, (best, _) = timed(lambda: jax.block_until_ready(top_k(*args)))
    # JAX's FVMR scores are sigmoid(p); its CMHN scores -distance + 0.25 cosine.
    best = np.round(best) if name == "cmhn" else np.asarray(best)
    same = lambda got: bool(np.allclose(
        1 / (1 + np.exp(-got)) if name == "fvmr" else got, best, rtol=1e-5, atol=1e-5))
    row = {"JAX": (seconds, True)}
    seconds, got = timed(lambda: numpy_top_k(flat_score()))
    row["numpy"] = (seconds, same(got))
    try:
      import faiss
    except ImportError:
      faiss = None
    if faiss is not None:
      if name == "cmhn":
        index = faiss.IndexBinaryFlat(32 * codes.shape[-1])
        index.add(codes.reshape(-1, codes.shape[-1]).view(np.uint8))
        seconds, (distance, _) = timed(lambda: index.search(code_queries.view(np.uint8), k))
        got = -distance.astype(np.float64)
      else:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors.reshape(-1, dim))
        seconds, (got, _) = timed(lambda: index.search(vector_queries, k))
      row["faiss"] = (seconds, same(got))
    results[name] = row
  return results
