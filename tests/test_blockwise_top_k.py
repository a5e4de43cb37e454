"""`blockwise_top_k.top_k` equals `jax.lax.top_k`: values and indexes, ties included."""

import jax
import numpy as np
import pytest

from vmr_jax import blockwise_top_k


@pytest.mark.parametrize("length,k,kind", [
    (10_000, 10, "normal"), (10_007, 10, "ties"), (5_000, 100, "ties"),
    (4_000, 7, "masked"), (3_001, 3, "equal"), (50, 50, "normal"), (900, 1, "ties")])
def test_equals_lax_top_k(length, k, kind):
  rng = np.random.default_rng(length + k)
  if kind == "normal":
    scores = rng.normal(size=(6, length))
  elif kind == "ties":  # few distinct values: most of the top k are ties
    scores = -rng.integers(0, 12, size=(6, length)).astype(np.float64)
  elif kind == "masked":  # most scores -inf, some rows fewer than k finite ones
    scores = np.where(rng.random((6, length)) < 0.001, rng.normal(size=(6, length)), -np.inf)
  else:
    scores = np.zeros((6, length))
  scores = scores.astype(np.float32)
  blocks = -(-length // blockwise_top_k.block_size(length, k))
  assert (blocks > k) == (length > k)  # the blockwise path, but where k = M
  want_values, want_index = jax.lax.top_k(scores, k)
  values, index = jax.jit(blockwise_top_k.top_k, static_argnums=1)(scores, k)
  np.testing.assert_array_equal(np.asarray(index), np.asarray(want_index))
  np.testing.assert_array_equal(np.asarray(values), np.asarray(want_values))
