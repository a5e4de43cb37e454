"""Collection search sharded over processes (`vmr_jax.tools.sharded_search`): the
merge of ranked parts (`predictor.merge_ranked`), and the tool on 1 and on 2 processes
(`jax.distributed` on 127.0.0.1, 1 CPU device each) at 4,000 moments: the same top k,
numpy's, with sane sizes. (The tool's module defines flags that `vmr_jax.tools.bench`
also defines, so it runs in subprocesses only.)"""

import subprocess
import sys

import numpy as np
import pytest

from tests.cli import environment
from tests.conftest import REPO

TINY = ["--moments=4000", "--moments_per_video=20", "--chunk_videos=10", "--code_bits=40",
        "--corpus_dim=32", "--corpus_queries=8", "--corpus_k=10", "--steps=2",
        "--check_queries=8"]


def test_merge_ranked_is_a_full_sort_by_score_index_and_position():
  from vmr_jax.predictor import merge_ranked
  rng = np.random.default_rng(0)
  for _ in range(100):
    n = int(rng.integers(1, 40))
    scores = rng.integers(0, 4, (3, n)).astype(np.float32)  # many ties
    scores[rng.random((3, n)) < 0.1] = np.nan  # ranked as -inf
    scores[rng.random((3, n)) < 0.1] = -np.inf
    index = rng.integers(0, 10, (3, n))  # repeated indexes: then the earlier position
    position = np.broadcast_to(np.arange(n), (3, n))
    want = np.lexsort((position, index, -np.where(np.isnan(scores), -np.inf, scores)), axis=-1)
    np.testing.assert_array_equal(merge_ranked(scores, index), want)
    k = int(rng.integers(1, 50))
    np.testing.assert_array_equal(merge_ranked(scores, index, k), want[:, :k])


def test_chunks_are_the_same_wherever_they_are_generated():
  from vmr_jax.tools import random_index
  shape = random_index.Shape(chunk_videos=2, per_video=3, bits=40, dim=8)
  words, units = random_index.chunk_entries("cmhn", shape, 5)
  assert words.shape == (2, 3, 2) and words.dtype == np.uint32
  assert units.shape == (2, 3, 40) and units.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(units, axis=-1), 1, rtol=1e-6)
  assert words.nbytes + units.nbytes == 6 * shape.bytes_per_moment("cmhn") == 6 * 168
  vectors = random_index.chunk_entries("fvmr", shape, 5)
  assert vectors.dtype == np.float32 and vectors.nbytes == 6 * shape.bytes_per_moment("fvmr")
  np.testing.assert_array_equal(vectors, random_index.chunk_entries("fvmr", shape, 5))
  assert not np.array_equal(vectors, random_index.chunk_entries("fvmr", shape, 6))


def rows(processes: int) -> dict[str, list[str]]:
  out = subprocess.run([sys.executable, "-m", "vmr_jax.tools.sharded_search", *TINY,
                        f"--processes={processes}"], cwd=REPO, env=environment(1),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  cells = [[c.strip() for c in line.strip("|").split("|")]
           for line in out.stdout.splitlines() if line.startswith("| CMHN") or
           line.startswith("| FVMR")]
  return {row[0].split()[0]: row for row in cells}


@pytest.mark.xdist_group("multiprocess")
def test_two_processes_find_what_one_process_finds():
  one, two = rows(1), rows(2)
  assert set(one) == set(two) == {"CMHN", "FVMR"}
  for kind, bytes_a_moment in (("CMHN", 4 * (2 + 40)), ("FVMR", 4 * 32)):
    for row, processes in ((one[kind], 1), (two[kind], 2)):
      name, moments, devices, ms, per_moment, index_gb, rss_gb, same, digest = row
      assert moments == "4,000" and devices == f"{processes} x 1 cpu"
      assert float(ms) > 0 and int(per_moment) == bytes_a_moment
      assert len(index_gb.split(", ")) == len(rss_gb.split(", ")) == processes
      assert all(0 < float(gb) < 4 for gb in rss_gb.split(", "))
      assert same == "yes (8 queries)", (kind, processes)
    assert one[kind][-1] == two[kind][-1], kind  # the top k's indexes, in order
