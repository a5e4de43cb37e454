"""`faiss_index.HammingIndex` gives `make_corpus_top_k`'s top k of CMHN codes: the same
indexes in the same order and the same scores, with equal distances (repeated codes)
ordered by the cosine and fewer valid codes than k."""

import jax
import numpy as np
import pytest

from vmr_jax import faiss_index, predictor, sharding
from vmr_jax.layers.hashing import pack_signs
from vmr_jax.models import cmhn

pytestmark = pytest.mark.skipif(not faiss_index.available(), reason="faiss not installed")


def codes(videos: int, per_video: int, bits: int, rng):
  """CMHN's video side of random codes, a quarter of them repeated (equal distances
  to every query, different cosines) and one video's candidates invalid."""
  real = rng.normal(size=(videos, per_video, bits)).astype(np.float32)
  real[:, ::4] = np.sign(real[:, 1::4]) * rng.random(real[:, 1::4].shape) + 0.01 * np.sign(
      real[:, 1::4])
  unit = real / np.linalg.norm(real, axis=-1, keepdims=True)
  valid = np.ones((videos, per_video), bool)
  valid[1] = False
  return (np.asarray(pack_signs(real)), unit), valid


@pytest.mark.parametrize("bits,k,videos", [(64, 20, 30), (96, 7, 9), (32, 500, 4)])
def test_same_top_k_as_jax(bits, k, videos):
  rng = np.random.default_rng(bits + k)
  entries, valid = codes(videos, 40, bits, rng)
  real = rng.normal(size=(5, bits)).astype(np.float32)
  queries = (np.asarray(pack_signs(real)), real / np.linalg.norm(real, axis=-1, keepdims=True))
  mesh = sharding.make_mesh()
  top_k = jax.jit(predictor.make_corpus_top_k(cmhn.retrieval_score, None, mesh, k))
  want_scores, want_index = top_k(entries, valid, queries)
  index = faiss_index.HammingIndex(entries, valid, cmhn.ranking_score)
  scores, got_index = index.top_k(queries, k)
  np.testing.assert_array_equal(got_index, np.asarray(want_index))
  np.testing.assert_allclose(scores, np.asarray(want_scores), rtol=1e-6, atol=1e-6)
  if k > valid.sum():  # the -inf rest
    assert np.isneginf(scores[:, valid.sum():]).all()
