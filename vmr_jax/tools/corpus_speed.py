"""Collection search speed (`python -m vmr_jax.tools.bench --task=corpus`): the Predictor's
top k over random CMHN codes and FVMR embeddings, in JAX and on faiss, against numpy
and faiss's own indexes, and each method's distance from the machine's limits. A
module of its own, without flags, so that tests can import it next to the other
command lines.

The methods, for a batch of S sentences over M moments, top k:
- "JAX": `predictor.make_corpus_top_k` (the Predictor's `search_backend="jax"`) on all
  local devices: every score, then `blockwise_top_k`;
- "faiss (Predictor)": CMHN only, `faiss_index.HammingIndex` (`search_backend="faiss"`,
  the same ranking: equal distances by the cosine);
- "faiss": faiss's `IndexBinaryFlat` (Hamming distance only: equal distances in
  faiss's order) and `IndexFlatIP`;
- "numpy": `np.bitwise_count` of the XOR or a matrix product, `argpartition`.
Each method's scores are checked against JAX's (CMHN's faiss index: its distances).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np


def index_bytes(kind: str, bits: int, dim: int) -> int:
  """Bytes a moment of the Predictor's index holds: CMHN's packed words and unit
  real-valued code (`cmhn.retrieval_moments`), FVMR's float32 embedding."""
  return 4 * (-(-bits // 32) + bits) if kind == "cmhn" else 4 * dim


def machine_limits(megabytes: int = 512, size: int = 2048, steps: int = 5) -> dict[str, float]:
  """What the default device reaches: `read_GBps`, a jitted sum over a float32 array of
  `megabytes` (bytes read a second), and `matmul_GFLOPs`, a float32 `size`^3 product."""
  def rate(fn, *args):
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(steps):
      jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / steps
  big = jnp.ones(megabytes * 2**18, jnp.float32)
  square = jnp.ones((size, size), jnp.float32)
  return {"read_GBps": big.nbytes / rate(jax.jit(jnp.sum), big) / 1e9,
          "matmul_GFLOPs": 2 * size**3 / rate(jax.jit(jnp.matmul), square, square) / 1e9}


def parts(moments: int, per_video: int, bits: int, dim: int, queries: int, k: int,
          steps: int, seed: int = 0) -> dict[str, float]:
  """`{part: seconds}`: where JAX's search time goes, each part of `corpus_comparison`'s
  JAX search jitted alone on one device (a sum stands for the rest of the search), and
  the replaced ways (the einsum over `[V, N, D]`, one `jax.lax.top_k`) beside them."""
  from vmr_jax import blockwise_top_k
  from vmr_jax.layers.hashing import pack_signs, packed_hamming_distance
  from vmr_jax.models import cmhn, common, fvmr
  rng = np.random.default_rng(seed)
  videos = -(-moments // per_video)
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  real, real_queries = (rng.normal(size=shape).astype(np.float32)
                        for shape in ((videos, per_video, bits), (queries, bits)))
  codes = tuple(jnp.asarray(x) for x in (pack_signs(real), unit(real)))
  code_queries = tuple(jnp.asarray(x) for x in (pack_signs(real_queries), unit(real_queries)))
  del real
  vectors = jnp.asarray((rng.normal(size=(videos, per_video, dim)) / np.sqrt(dim))
                        .astype(np.float32))
  vector_queries = jnp.asarray(rng.normal(size=(queries, dim)).astype(np.float32))
  flat = lambda x: x.reshape(queries, -1)
  code_scores = jax.jit(lambda e, q: flat(cmhn.retrieval_score(e, q, None)))(codes, code_queries)
  vector_scores = jax.jit(lambda e, q: flat(fvmr.retrieval_score(e, q, None)))(vectors,
                                                                              vector_queries)
  runs = {
      "CMHN: Hamming distances (XOR, popcount)": (
          lambda e, q: packed_hamming_distance(e[0][None], q[0][:, None, None]).sum(),
          codes, code_queries),
      "CMHN: the cosines (common.collection_products)": (
          lambda e, q: common.collection_products(e[1], q[1]).sum(), codes, code_queries),
      "CMHN: the scores (cmhn.retrieval_score)": (
          lambda e, q: cmhn.retrieval_score(e, q, None).sum(), codes, code_queries),
      "CMHN: jax.lax.top_k of the scores": (lambda s: jax.lax.top_k(s, k), code_scores),
      "CMHN: blockwise_top_k.top_k of the scores": (
          lambda s: blockwise_top_k.top_k(s, k), code_scores),
      "FVMR: the einsum vmd,sd->svm": (
          lambda m, q: jnp.einsum("vmd,sd->svm", m, q).sum(), vectors, vector_queries),
      "FVMR: common.collection_products": (
          lambda m, q: common.collection_products(m, q).sum(), vectors, vector_queries),
      "FVMR: the scores (fvmr.retrieval_score: + sigmoid)": (
          lambda m, q: fvmr.retrieval_score(m, q, None).sum(), vectors, vector_queries),
      "FVMR: jax.lax.top_k of the scores": (lambda s: jax.lax.top_k(s, k), vector_scores),
      "FVMR: blockwise_top_k.top_k of the scores": (
          lambda s: blockwise_top_k.top_k(s, k), vector_scores)}
  seconds = {}
  for name, (fn, *args) in runs.items():
    fn = jax.jit(fn)
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(steps):
      jax.block_until_ready(fn(*args))
    seconds[name] = (time.perf_counter() - start) / steps
  return seconds


def corpus_comparison(moments: int, per_video: int, bits: int, dim: int, queries: int,
                      k: int, steps: int, seed: int = 0) -> dict[str, dict[str, tuple]]:
  """`{"cmhn" | "fvmr": {method: (seconds per batch, top-k scores equal JAX's)}}` of the
  module docstring's methods (faiss's where importable)."""
  from vmr_jax import faiss_index, predictor, sharding
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
  del real_codes
  vectors = (rng.normal(size=(videos, per_video, dim)) / np.sqrt(dim)).astype(np.float32)
  vector_queries = rng.normal(size=(queries, dim)).astype(np.float32)  # p ~ N(0, 1)
  valid = np.ones((videos, per_video), bool)

  def timed(run):
    out = run()  # compiles / warms up
    start = time.perf_counter()
    for _ in range(steps):
      out = run()
    return (time.perf_counter() - start) / steps, out

  def numpy_top_k(scores):
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.sort(np.take_along_axis(scores, part, 1), axis=1)[:, ::-1]

  faiss = __import__("faiss") if faiss_index.available() else None
  results = {}
  for name, model, entries, query, flat_score in (
      ("cmhn", cmhn, code_entries, code_query_entries,
       lambda: -np.bitwise_count(codes.reshape(1, -1, codes.shape[-1])
                                 ^ code_queries[:, None]).sum(-1, dtype=np.int32)),
      ("fvmr", fvmr, vectors, vector_queries,
       lambda: vector_queries @ vectors.reshape(-1, dim).T)):
    top_k = jax.jit(predictor.make_corpus_top_k(model.retrieval_score, None, mesh, k))
    data = sharding.data_sharded(mesh)
    args = (jax.device_put(entries, data), jax.device_put(valid, data), jax.device_put(query))
    seconds, (best, index) = timed(lambda: jax.block_until_ready(top_k(*args)))
    # JAX's FVMR scores are sigmoid(p); its CMHN scores -distance + 0.25 cosine.
    best, index = np.asarray(best), np.asarray(index)
    distances = np.round(best)
    same = lambda got, want: bool(np.allclose(got, want, rtol=1e-5, atol=1e-5))
    sigmoid = lambda p: 1 / (1 + np.exp(-p))
    row = {"JAX": (seconds, True)}
    del args
    if faiss is not None and name == "cmhn":
      host = faiss_index.HammingIndex(entries, valid, cmhn.ranking_score)
      seconds, (got, got_index) = timed(lambda: host.top_k(query, k))
      row["faiss (Predictor)"] = (seconds, same(got, best) and (got_index == index).all())
      del host
    if faiss is not None:
      if name == "cmhn":
        flat = faiss.IndexBinaryFlat(32 * codes.shape[-1])
        flat.add(codes.reshape(-1, codes.shape[-1]).view(np.uint8))
        seconds, (distance, _) = timed(lambda: flat.search(code_queries.view(np.uint8), k))
        row["faiss"] = (seconds, same(-distance.astype(np.float64), distances))
      else:
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors.reshape(-1, dim))
        seconds, (got, _) = timed(lambda: flat.search(vector_queries, k))
        row["faiss"] = (seconds, same(sigmoid(got), best))
      del flat
    seconds, got = timed(lambda: numpy_top_k(flat_score()))
    row["numpy"] = (seconds, same(got, distances) if name == "cmhn" else same(sigmoid(got), best))
    results[name] = row
  return results


def markdown(results: dict, limits: dict[str, float], moments: int, bits: int, dim: int,
             queries: int) -> str:
  """`corpus_comparison`'s `results` as a markdown table per index: each method's time,
  agreement with JAX, and its rates of reading the index and of FLOPs against the
  machine's (`machine_limits`)."""
  words = -(-bits // 32)
  # Bytes of each moment a method reads: JAX reads CMHN's words and unit codes, faiss
  # and numpy the words (the Predictor's faiss index twice: nearest, then within t).
  read = {"cmhn": {"JAX": index_bytes("cmhn", bits, dim), "faiss (Predictor)": 8 * words,
                   "faiss": 4 * words, "numpy": 4 * words},
          "fvmr": dict.fromkeys(results["fvmr"], index_bytes("fvmr", bits, dim))}
  flops = {"cmhn": 2 * queries * moments * bits, "fvmr": 2 * queries * moments * dim}
  lines = [f"The device reads {limits['read_GBps']:.1f} GB/s (a jitted sum) and multiplies "
           f"at {limits['matmul_GFLOPs']:.0f} GFLOP/s (float32, 2048^3)."]
  for kind, title in (("cmhn", f"CMHN, {bits}-bit codes"), ("fvmr", f"FVMR, {dim}-d")):
    lines += ["", f"{title}: index {index_bytes(kind, bits, dim)} bytes a moment", "",
              "| method | ms a batch | same top-k | GB/s of the index read | of the read rate "
              "| GFLOP/s (JAX: the cosines / products) | of the matmul rate |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for method, (seconds, same) in results[kind].items():
      rate = read[kind][method] * moments / seconds / 1e9
      cells = [method, f"{1000 * seconds:.1f}", "yes" if same else "NO", f"{rate:.2f}",
               f"{rate / limits['read_GBps']:.0%}", "-", "-"]
      if kind == "fvmr" or method == "JAX":  # the methods that multiply
        gflops = flops[kind] / seconds / 1e9
        cells[5:] = [f"{gflops:.0f}", f"{gflops / limits['matmul_GFLOPs']:.0%}"]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
