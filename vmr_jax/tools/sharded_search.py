"""Collection search sharded over processes, measured.

    python -m vmr_jax.tools.sharded_search --moments=10000000 --processes=2
        [--kind=cmhn,fvmr] [--moments_per_video=200 --chunk_videos=500] [--code_bits=64
        --corpus_dim=256 --corpus_queries=64 --corpus_k=100 --steps=10 --check_queries=8]

For each `--kind`, starts `--processes` processes on this machine (`jax.distributed` over
a free port of 127.0.0.1 where there are several; gloo between CPUs; `--cpu_devices`
CPU devices each), each holding only its own part of a random collection
(`vmr_jax.tools.random_index`: chunks of `--chunk_videos` videos, process p the
p-th run of about chunks / processes of them, each generated from its own seed, so the
collection is the same for any number of processes). A search of a batch of
`--corpus_queries` queries: each process runs `predictor.make_corpus_top_k` (over its
local devices) on each of its chunks, merges the chunks' `--corpus_k` best, the
processes' lists travel to all (`process_allgather`) and are merged
(`predictor.merge_ranked`: score, then collection order, as one process holding the
whole collection ranks them).

Prints a markdown row per kind: milliseconds a batch (the whole search, merges and the
gather included, timed on process 0 over `--steps` batches after one warm-up, from a
barrier), the index's bytes a moment, each process's index size and peak RSS
(`getrusage`, before the check: its generation, index and search), whether the top k of the first
`--check_queries` queries are numpy's (each process scores its chunks in float64; the
scores, and numpy's scores at the returned indexes, within 1e-5: the same k best up to
ties closer than that), and a digest of the top k's indexes, in order: equal digests on
1 and on N processes are the same k best moments of every query, in the same order.
(With the same devices a process, the scores are equal bit for bit too: each chunk is
scored by the same program; `--cpu_devices` changes the shape each device scores, and
so the float32 rounding of a score, which could reorder moments whose scores differ by
about 1e-7.)
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import subprocess
import sys
import time

from absl import app, flags
import numpy as np

from vmr_jax.tools import random_index

_MOMENTS = flags.DEFINE_integer("moments", 1_000_000, "Moments in the collection (rounded "
                                "up to whole chunks).")
_PER_VIDEO = flags.DEFINE_integer("moments_per_video", 200, "Candidates a video.")
_CHUNK_VIDEOS = flags.DEFINE_integer("chunk_videos", 500, "Videos a chunk: the unit of "
                                     "generation, scoring and division between processes.")
_PROCESSES = flags.DEFINE_integer("processes", 1, "Processes the collection is split over.")
_KIND = flags.DEFINE_list("kind", list(random_index.KINDS), "Indexes searched, one "
                          "run of processes each: cmhn, fvmr.")
_CODE_BITS = flags.DEFINE_integer("code_bits", 64, "CMHN code length.")
_CORPUS_DIM = flags.DEFINE_integer("corpus_dim", 256, "FVMR common-space width.")
_QUERIES = flags.DEFINE_integer("corpus_queries", 64, "Queries a batch.")
_K = flags.DEFINE_integer("corpus_k", 100, "Moments kept a query.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed batches.")
_CHECK = flags.DEFINE_integer("check_queries", 8, "Queries checked against numpy (0: none).")
_SEED = flags.DEFINE_integer("seed", 0, "The collection's seed.")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 1, "CPU devices a process "
                                    "(JAX_NUM_CPU_DEVICES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Set by the launcher: this "
                                   "process's index (unset: start the processes).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Set by the launcher.")
_CONNECT_TIMEOUT = flags.DEFINE_integer("connect_timeout", 300, "Seconds the processes "
                                        "wait for each other at start.")

KIND_NAMES = {"cmhn": "CMHN {bits}-bit codes", "fvmr": "FVMR {dim}-d float32"}


def header() -> str:
  return ("| index | moments | processes | ms a batch | bytes a moment | index GB a process "
          "| peak RSS GB a process | top-k = numpy's | top-k digest |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def launch(kind: str, argv: list[str]) -> int:
  """Runs `--processes` processes of this command for `kind`; their exit status (the
  first failure's; the others are killed 30 s after a failure)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(_CPU_DEVICES.value))
  procs = [subprocess.Popen([sys.executable, "-m", __spec__.name, *argv, f"--kind={kind}",
                             f"--process_id={i}", f"--coordinator_address=127.0.0.1:{port}"],
                            env=env)
           for i in range(_PROCESSES.value)]
  failed_at = None
  while any(p.poll() is None for p in procs):
    if failed_at is None and any(p.poll() not in (None, 0) for p in procs):
      failed_at = time.monotonic()
    if failed_at is not None and time.monotonic() > failed_at + 30:
      for p in procs:
        if p.poll() is None:
          p.kill()
    time.sleep(0.2)
  return next((p.returncode for p in procs if p.returncode), 0)


def shape_and_chunks() -> tuple[random_index.Shape, int]:
  """The flags' chunk shape and the collection's chunks (`--moments` rounded up)."""
  shape = random_index.Shape(_CHUNK_VIDEOS.value, _PER_VIDEO.value, _CODE_BITS.value,
                             _CORPUS_DIM.value)
  chunks = -(-_MOMENTS.value // shape.chunk_moments)
  if chunks < _PROCESSES.value:
    raise app.UsageError(f"{chunks} chunks of {shape.chunk_moments:,} moments do not "
                         f"split over {_PROCESSES.value} processes: lower --chunk_videos")
  if shape.chunk_moments < _K.value:
    raise app.UsageError(f"a chunk holds {shape.chunk_moments} moments, fewer than "
                         f"--corpus_k={_K.value}")
  if chunks * shape.chunk_moments >= 2**31:
    raise app.UsageError(f"{chunks * shape.chunk_moments:,} moments: indexes must fit int32")
  return shape, chunks


def own_chunks(chunks: int, processes: int, process: int) -> range:
  """Process `process`'s chunks: `[p chunks // P, (p + 1) chunks // P)`."""
  return range(process * chunks // processes, (process + 1) * chunks // processes)


def make_search(kind: str, shape: random_index.Shape, mine: range, k: int, queries):
  """`(index, search)`: this process's chunks on its devices and `search() ->
  (best [S, k] float32, collection index [S, k] int32)` of `queries` (host,
  `random_index.queries`) over every process's chunks (collective)."""
  import jax
  from jax.experimental import multihost_utils
  from vmr_jax import predictor, sharding
  mesh = sharding.make_mesh(jax.local_devices())
  top_k = jax.jit(predictor.make_corpus_top_k(random_index.score_fn(kind), None, mesh, k))
  data = sharding.data_sharded(mesh)
  index = [jax.device_put(random_index.chunk_entries(kind, shape, c, _SEED.value), data)
           for c in mine]
  valid = jax.device_put(np.ones((shape.chunk_videos, shape.per_video), bool), data)
  queries = jax.device_put(queries, sharding.replicated(mesh))
  offsets = np.asarray(mine, np.int32)[:, None, None] * shape.chunk_moments  # [C, 1, 1]

  def merged(best, flat):  # [S, n] -> the k best [S, k]
    position = predictor.merge_ranked(best, flat, k)
    return np.take_along_axis(best, position, 1), np.take_along_axis(flat, position, 1)

  def search():
    parts = jax.device_get([top_k(entries, valid, queries) for entries in index])
    best = np.concatenate([b for b, _ in parts], 1)  # [S, C k], chunk order
    flat = np.concatenate(np.asarray([i for _, i in parts]) + offsets, 1)
    best, flat = merged(best, flat)
    if jax.process_count() > 1:  # [P, S, k]: every process's k best, process order
      best, flat = (np.concatenate(list(x), 1)
                    for x in multihost_utils.process_allgather((best, flat)))
      best, flat = merged(best, flat)
    return best, flat
  return index, search


def numpy_check(kind, index, mine, shape, queries, best, flat) -> list:
  """This process's part of the numpy check of `best`, `flat` `[q, k]`: numpy's k best
  scores over its chunks `[q, k]` and its scores at the indexes in its chunks (NaN
  elsewhere), as lists."""
  import jax
  k = best.shape[1]
  top, at = np.full((len(best), 0), -np.inf), np.full(best.shape, np.nan)
  for c, entries in zip(mine, index):
    scores = random_index.numpy_scores(kind, jax.device_get(entries), queries)
    top = np.concatenate([top, -np.partition(-scores, k - 1, 1)[:, :k]], 1)
    here = flat // shape.chunk_moments == c
    at[here] = scores[np.nonzero(here)[0], flat[here] % shape.chunk_moments]
  return [np.sort(top, 1)[:, ::-1][:, :k].tolist(), at.tolist()]


def worker(kind: str) -> None:
  """One process's part: its index, the timed search, its check; process 0 prints the row."""
  from vmr_jax import distributed
  processes = _PROCESSES.value
  if processes > 1:
    distributed.initialize(_COORDINATOR.value, processes, _PROCESS_ID.value,
                           timeout_s=_CONNECT_TIMEOUT.value)
  import jax
  shape, chunks = shape_and_chunks()
  if shape.chunk_videos % jax.local_device_count():
    raise app.UsageError(f"--chunk_videos={shape.chunk_videos} does not split over "
                         f"{jax.local_device_count()} devices")
  k = _K.value
  mine = own_chunks(chunks, processes, jax.process_index())
  queries = random_index.queries(kind, shape, _QUERIES.value, _SEED.value)
  index, search = make_search(kind, shape, mine, k, queries)
  search()  # compiles, warms up
  distributed.barrier("timed")
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    best, flat = search()
  seconds = (time.perf_counter() - start) / _STEPS.value
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
  checked = min(_CHECK.value, len(best))
  check = (numpy_check(kind, index, mine, shape,
                       jax.tree.map(lambda x: x[:checked], queries),
                       best[:checked], flat[:checked]) if checked else None)
  index_bytes = sum(x.nbytes for x in jax.tree.leaves(index))
  parts = distributed.gather_json([index_bytes, peak, check])
  if jax.process_index():
    return
  name = KIND_NAMES[kind].format(bits=shape.bits, dim=shape.dim)
  gb = lambda values: ", ".join(f"{v / 1e9:.2f}" for v in values)
  if checked:
    top = np.sort(np.concatenate([np.asarray(p[2][0]) for p in parts], 1), 1)[:, ::-1][:, :k]
    at = np.nanmax(np.stack([np.asarray(p[2][1]) for p in parts]), 0)
    close = lambda x: np.allclose(best[:checked], x, rtol=1e-5, atol=1e-5)
    same = f"{'yes' if close(top) and close(at) else 'NO'} ({checked} queries)"
  else:
    same = "not checked"
  digest = hashlib.sha256(flat.astype("<i4").tobytes())
  devices = f"{processes} x {jax.local_device_count()} {jax.local_devices()[0].platform}"
  print(f"| {name} | {chunks * shape.chunk_moments:,} | {devices} | {1000 * seconds:.1f} | "
        f"{shape.bytes_per_moment(kind)} | {gb(p[0] for p in parts)} | "
        f"{gb(p[1] for p in parts)} | {same} | {digest.hexdigest()[:16]} |", flush=True)


def main(argv):
  del argv
  if unknown := set(_KIND.value) - set(random_index.KINDS):
    raise app.UsageError(f"--kind: {sorted(unknown)} not among {random_index.KINDS}")
  if _PROCESS_ID.value is not None:
    if len(_KIND.value) != 1:
      raise app.UsageError("a process (--process_id) searches one --kind")
    worker(_KIND.value[0])
    return
  shape_and_chunks()
  print(f"collection search over {_PROCESSES.value} process(es): {_QUERIES.value} queries "
        f"a batch, top {_K.value}, {_PER_VIDEO.value} moments a video, chunks of "
        f"{_CHUNK_VIDEOS.value} videos, {_STEPS.value} timed batches", flush=True)
  print(header(), flush=True)
  for kind in _KIND.value:
    if code := launch(kind, sys.argv[1:]):
      sys.exit(code)


if __name__ == "__main__":
  app.run(main)
