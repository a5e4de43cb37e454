import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax.layers import moment_map


def test_dense_spans_order_and_index():
  spans = moment_map.dense_spans(4)
  assert len(spans) == moment_map.num_spans(4) == 10
  assert spans.tolist() == [[0, 0], [1, 1], [2, 2], [3, 3], [0, 1], [1, 2], [2, 3],
                            [0, 2], [1, 3], [0, 3]]
  grid = moment_map.span_index(4)
  assert grid.tolist() == [[0, 4, 7, 9], [-1, 1, 5, 8], [-1, -1, 2, 6], [-1, -1, -1, 3]]
  for k, (i, j) in enumerate(spans):  # k L - k(k - 1)/2 + i
    assert grid[i, j] == k == (j - i) * 4 - (j - i) * (j - i - 1) // 2 + i


def test_max_pool_map_equals_brute_force_max_over_every_span():
  x = np.random.default_rng(0).normal(size=(3, 9, 5)).astype(np.float32)
  got = np.asarray(jax.jit(moment_map.max_pool_map)(jnp.asarray(x)))
  want = np.stack([x[:, i:j + 1].max(axis=1) for i, j in moment_map.dense_spans(9)], 1)
  assert got.shape == (3, 45, 5)
  np.testing.assert_array_equal(got, want)


def test_max_pool_map_gradient_reaches_the_argmax_clip():
  x = jnp.array([[[1.0], [3.0], [2.0]]])  # spans (0,0),(1,1),(2,2),(0,1),(1,2),(0,2)
  grad = jax.grad(lambda v: moment_map.max_pool_map(v).sum())(x)
  # clip 0 is the max of (0,0) only; clip 1 of (1,1),(0,1),(1,2),(0,2); clip 2 of (2,2)
  np.testing.assert_array_equal(np.asarray(grad)[0, :, 0], [1, 4, 1])


def two_d_tan_rule(num_clips):
  """2D-TAN's valid cells written as a rule over (start, length): spans of up to 16
  clips at every start; longer ones where start and length are multiples of the step
  2^ceil(log2(length / 16))."""
  cells = set()
  for start in range(num_clips):
    for length in range(1, num_clips - start + 1):
      step = 1 if length <= 16 else 2 ** int(np.ceil(np.log2(length / 16)))
      if start % step == 0 and length % step == 0:
        cells.add((start, start + length - 1))
  return cells


@pytest.mark.parametrize("num_clips,scale_layers,count", [
    (16, [16], 136),  # Charades-STA: every span
    (64, [16, 8, 8], 1104),  # ActivityNet Captions
    (128, [16, 8, 8, 8], 2548),  # TACoS
])
def test_sparse_spans_equal_the_2d_tan_rule(num_clips, scale_layers, count):
  spans = [tuple(s) for s in moment_map.sparse_spans(num_clips, scale_layers).tolist()]
  assert len(spans) == len(set(spans)) == count
  assert set(spans) == two_d_tan_rule(num_clips)


def test_sparse_max_pool_map_equals_brute_force_max():
  x = np.random.default_rng(1).normal(size=(2, 64, 3)).astype(np.float32)
  spans = moment_map.sparse_spans(64, [16, 8, 8])
  got = np.asarray(jax.jit(lambda v: moment_map.sparse_max_pool_map(v, (16, 8, 8)))(x))
  want = np.stack([x[:, i:j + 1].max(axis=1) for i, j in spans], axis=1)
  np.testing.assert_array_equal(got, want)


def test_sparse_schedule_that_pools_past_the_clips_is_an_error():
  with pytest.raises(ValueError, match="pool past the 16 clips"):
    moment_map.sparse_spans(16, [16, 8])
