import jax
import jax.numpy as jnp
import numpy as np

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
