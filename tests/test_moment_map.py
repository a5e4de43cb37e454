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


def _dense_grown_stack(grid, valid, kernels, biases, pad):
  """2D-TAN's predictor as its release computes it: the first convolution padded by
  `pad`, the rest unpadded, each ReLU'd and multiplied by 1 / (mask count in its
  window), the mask growing to where that count is positive."""
  x = jnp.asarray(grid)[None]  # [1, L, L, D]
  mask = jnp.asarray(valid, jnp.float32)[None, :, :, None]
  for layer, (kernel, bias) in enumerate(zip(kernels, biases)):
    padding = [(pad, pad)] * 2 if layer == 0 else [(0, 0)] * 2
    conv = lambda v, w: jax.lax.conv_general_dilated(
        v, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)
    count = conv(mask, jnp.ones(kernel.shape[:2] + (1, 1)))
    weight = jnp.where(count > 0, 1.0 / jnp.maximum(count, 1), 0.0)
    x = jax.nn.relu(conv(x, kernel) + bias) * weight
    mask = (count > 0).astype(jnp.float32)
  return np.asarray(x[0])


def test_grown_layout_map_conv_equals_the_dense_growing_mask_stack():
  rng = np.random.default_rng(0)
  clips, kernel, layers, dim = 16, 3, 3, 4
  spans = moment_map.sparse_spans(clips, (8, 4))
  valid = np.zeros((clips, clips), bool)
  valid[spans[:, 0], spans[:, 1]] = True
  valid[0, 1:] = False  # CLEAR's release: row 0 counted nowhere, but it has features
  inputs = np.full((clips, clips), len(spans))  # every other position: one shared row
  inputs[spans[:, 0], spans[:, 1]] = np.arange(len(spans))
  rows = rng.normal(size=(len(spans) + 1, dim)).astype(np.float32)
  grid = rows[inputs]
  outputs = np.argwhere(valid)
  kernels = [rng.normal(size=(kernel, kernel, dim, dim)).astype(np.float32)
             for _ in range(layers)]
  biases = [rng.normal(size=dim).astype(np.float32) for _ in range(layers)]
  want = _dense_grown_stack(grid, valid, kernels, biases, pad=layers)[
      outputs[:, 0], outputs[:, 1]]
  x = jnp.asarray(rows)[None]
  for (neighbours, counts), k, b in zip(
      moment_map.grown_layout(clips, inputs, valid, outputs, kernel, layers), kernels, biases):
    conv = moment_map.MapConv(dim, kernel)
    x = jax.nn.relu(conv.apply({"params": {"kernel": k, "bias": b}}, x, neighbours, counts))
  np.testing.assert_allclose(np.asarray(x[0]), want, rtol=1e-4, atol=1e-5)
  # One fixed mask (MapConv on the cells alone at every layer) computes another function.
  cells = jnp.asarray(rows[inputs[outputs[:, 0], outputs[:, 1]]])[None]
  neighbours = moment_map.cell_neighbours(clips, outputs, kernel)
  for k, b in zip(kernels, biases):
    cells = jax.nn.relu(moment_map.MapConv(dim, kernel).apply(
        {"params": {"kernel": k, "bias": b}}, cells, neighbours))
  assert np.abs(np.asarray(cells[0]) - want).max() > 0.1
