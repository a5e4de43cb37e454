"""2D moment maps: spans of clips as candidates (CLEAR Sec. III-B; 2D-TAN).

A dense map over L clips holds the N = L(L+1)/2 spans (i, j), 0 <= i <= j < L,
inclusive clip indices; span (i, j) of a video of duration T covers
[i T/L, (j + 1) T/L). Candidates are stored packed, ordered by length then start:
span (i, i + k) has index k L - k(k - 1)/2 + i. The packed layout holds no i > j cell,
so nothing needs masking there; `span_index` maps back to the (start, end) grid, with
-1 below the diagonal.

A sparse map (2D-TAN, Zhang et al. AAAI 2020) holds only the spans its pooling
schedule reaches (`sparse_spans`, `sparse_max_pool_map`): all short spans, and longer
ones at coarser start/length steps. 2D-TAN convolves the map on its (start, end)
grid, masked to the cells; `MapConv` computes the same convolution on the cells
alone, through each cell's window neighbours (`cell_neighbours`). 2D-TAN's released
predictor instead grows its mask after every convolution; `grown_layout` gives
`MapConv` the tables of that stack, computed at the positions its outputs need.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


def num_spans(num_clips: int) -> int:
  return num_clips * (num_clips + 1) // 2


def dense_spans(num_clips: int) -> np.ndarray:
  """`[N, 2]` (start, end) clip indices, inclusive, in packed order."""
  return np.array([(i, i + k) for k in range(num_clips) for i in range(num_clips - k)],
                  dtype=np.int32).reshape(-1, 2)


def span_index(num_clips: int, spans: np.ndarray | None = None) -> np.ndarray:
  """`[L, L]`: the index in `spans [M, 2]` (default: `dense_spans`, the packed index)
  of span (start, end); -1 where no span is (start > end, or a sparse map's gaps)."""
  spans = dense_spans(num_clips) if spans is None else np.asarray(spans)
  grid = np.full((num_clips, num_clips), -1, dtype=np.int32)
  grid[spans[:, 0], spans[:, 1]] = np.arange(len(spans), dtype=np.int32)
  return grid


def max_pool_map(x: jnp.ndarray) -> jnp.ndarray:
  """Max pooling over every span (CLEAR, Sec. III-B1): `[B, L, D]` -> `[B, N, D]`,
  entry (i, j) = max over clips i..j, in `dense_spans` order.

  A running maximum over lengths: the length-k maxima are the length-(k - 1) maxima
  shifted against the clips, `m_k[i] = max(m_{k-1}[i], x[i + k])`. Memory: the
  packed output, N x D per video (L(L+1)/2 x D, half a dense L x L x D grid), plus
  one L x D row; no L x L x D intermediate is built. L sequential steps.
  """
  rows, running = [x], x
  for k in range(1, x.shape[1]):
    running = jnp.maximum(running[:, :-1], x[:, k:])
    rows.append(running)
  return jnp.concatenate(rows, axis=1)


def sparse_schedule(num_clips: int, scale_layers: Sequence[int]):
  """2D-TAN's pooling schedule as (kernel, stride) ops, grouped by scale: scale 0
  starts with the identity (1, 1), every later scale with (3, 2); the other ops of a
  scale are (2, 1). Checks that every op has clips left to pool."""
  if not scale_layers or min(scale_layers) < 1:
    raise ValueError(f"scale_layers must be positive counts, got {list(scale_layers)}")
  length, ops = num_clips, []
  for scale, layers in enumerate(scale_layers):
    for op in [(1, 1) if scale == 0 else (3, 2)] + [(2, 1)] * (layers - 1):
      if length < op[0]:
        raise ValueError(f"scale_layers {list(scale_layers)} pool past the {num_clips} "
                         "clips")
      length = (length - op[0]) // op[1] + 1
      ops.append(op)
  return ops


def _pool(x, kernel: int, stride: int, combine):
  """Pools `x [B, T, ...]` along T: `combine` of the `kernel` shifted strided views."""
  count = (x.shape[1] - kernel) // stride + 1
  views = [x[:, k:k + stride * (count - 1) + 1:stride] for k in range(kernel)]
  out = views[0]
  for view in views[1:]:
    out = combine(out, view)
  return out


def sparse_spans(num_clips: int, scale_layers: Sequence[int]) -> np.ndarray:
  """`[M, 2]` (start, end) inclusive spans of 2D-TAN's sparse map, in the order its
  ops write them (`sparse_max_pool_map`'s order).

  Each op pools the previous op's spans: op (k, s) turns spans x into
  (x[s j].start, x[s j + k - 1].end). Every span an op produces is a cell.
  """
  spans = np.stack([np.arange(num_clips)] * 2, axis=-1)[None]  # [1, L, 2]
  cells = []
  for kernel, stride in sparse_schedule(num_clips, scale_layers):
    spans = _pool(spans, kernel, stride,
                  lambda a, b: np.stack([a[..., 0], b[..., 1]], axis=-1))
    cells.append(spans[0])
  return np.concatenate(cells).astype(np.int32)


def sparse_max_pool_map(x: jnp.ndarray, scale_layers: Sequence[int]) -> jnp.ndarray:
  """2D-TAN's sparse max-pool map: `[B, L, D]` -> `[B, M, D]`, cell m = the max over
  the clips of `sparse_spans(L, scale_layers)[m]`. Memory: the M cells plus one
  L x D row."""
  cells = []
  for kernel, stride in sparse_schedule(x.shape[1], scale_layers):
    x = _pool(x, kernel, stride, jnp.maximum)
    cells.append(x)
  return jnp.concatenate(cells, axis=1)


def cell_neighbours(num_clips: int, spans: np.ndarray, kernel_size: int) -> np.ndarray:
  """`[M, k * k]`: for each cell of `spans [M, 2]`, the index of the cell at every
  position of the `kernel_size`-square window centred on it on the (start, end) grid,
  row-major (the order of a `[k, k, ...]` kernel), M where there is no cell."""
  if kernel_size % 2 != 1:
    raise ValueError(f"a map convolution needs an odd kernel, got {kernel_size}")
  pad = kernel_size // 2
  index = np.pad(span_index(num_clips, spans), pad, constant_values=-1)
  windows = np.lib.stride_tricks.sliding_window_view(index, (kernel_size, kernel_size))
  neighbours = windows[spans[:, 0], spans[:, 1]].reshape(len(spans), -1)
  return np.where(neighbours >= 0, neighbours, len(spans)).astype(np.int32)


class MapConv(nn.Module):
  """2D-TAN's masked convolution over the map's (start, end) grid, computed on its
  cells only: `cells [N, M, D]` (the M cells of `spans`) -> `[N, M, features]`.

  Equal to a `kernel_size`-square "SAME" convolution of the grid holding the cells
  (zero elsewhere) read back at the cells: each output sums, over the window
  positions that hold a cell (`cell_neighbours`), that cell times the kernel at its
  position. With `normalize` each output is divided by the number of cells in its
  window (2D-TAN's re-weighting by the valid count). The work is M k^2 D features
  instead of L^2 k^2 D: 2,548 of 16,384 grid positions on TACoS's 128-clip map.
  Params `kernel [k, k, D, features]` and `bias`, as `nn.Conv`'s.

  Two orders of the same sum, by width: a wide output gathers each window
  position's neighbours `[N, M, D]` and multiplies them by that position's kernel
  (k^2 gathers of D features per cell, and their scatter-add transposes); an output
  narrower than D / 2 multiplies every cell by all k^2 kernels first and gathers the
  products (k^2 x features numbers per cell: FVMR's kernel-9 gated convolution to 2
  channels moves 32 times less). The window sums are float32 whatever the compute
  dtype; the output has the dtype of `cells`.
  """
  features: int
  kernel_size: int
  normalize: bool = True

  @nn.compact
  def __call__(self, cells: jnp.ndarray, neighbours: np.ndarray,
               counts: np.ndarray | None = None) -> jnp.ndarray:
    """`neighbours [M_out, k * k]` index `cells`' M rows (M: none); `counts [M_out]`,
    the divisor of `normalize` (default: each window's neighbours)."""
    k, dim = self.kernel_size, cells.shape[-1]
    empty = cells.shape[1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, dim, self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    padded = jnp.concatenate([cells, jnp.zeros_like(cells[:, :1])], axis=1)  # [N, M + 1, D]
    kernel = kernel.reshape(k * k, dim, self.features)
    if 2 * self.features < dim:
      products = jnp.einsum("ncd,pdf->ncpf", padded, kernel,
                            preferred_element_type=jnp.float32)  # [N, M + 1, k^2, F]
      flat = products.reshape(padded.shape[0], -1, self.features)
      out = bias + flat[:, neighbours * k * k + np.arange(k * k)].sum(2)  # cell p x kernel p
    else:
      out = bias.astype(jnp.float32)
      for position in range(k * k):
        column = neighbours[:, position]
        if (column < empty).any():  # some cell has a neighbour here
          out = out + jnp.matmul(padded[:, column], kernel[position],
                                 preferred_element_type=jnp.float32)
    if self.normalize:
      counts = (neighbours < empty).sum(-1) if counts is None else np.asarray(counts)
      out = out / counts[:, None].astype(out.dtype)
    return out.astype(cells.dtype)


def grown_layout(num_clips: int, inputs: np.ndarray, valid: np.ndarray,
                 outputs: np.ndarray, kernel_size: int, num_layers: int):
  """The tables of 2D-TAN's map predictor (`MapConv` stack) on a growing mask.

  2D-TAN (github.com/microsoft/2D-TAN `MapConv`, and CLEAR's release) pads the first
  of `num_layers` kernel-k convolutions by R = (k - 1) num_layers / 2 and no other,
  so the grid keeps its L x L size at the end, and divides each ReLU'd output by the
  number of mask positions in its window, where the mask grows after every layer:
  S_0 = `valid`, S_l = the positions whose window meets S_(l-1); values outside S_l
  are 0. Only the positions the `outputs` need are computed: T_n = `outputs`,
  T_(l-1) = S_(l-1) within reach of T_l.

  Args:
    inputs: `[L, L]` int, the row of the first layer's input holding each grid
      position (-1: zero), e.g. a cell's row, or one shared row for every
      off-cell position of an unmasked map.
    valid: `[L, L]` bool, S_0, the positions the first layer counts.
    outputs: `[M, 2]` (start, end) positions of the last layer's output.
  Returns:
    per layer l = 1..n, (`neighbours [|T_l|, k * k]` into layer l's input rows, the
    count of S_(l-1) in each window `[|T_l|]`); the last layer's rows are `outputs`.
  """
  reach = kernel_size // 2
  pad = reach * num_layers
  size = num_clips + 2 * pad

  def window(grid, fill):  # [size, size] -> [size, size, k, k]
    return np.lib.stride_tricks.sliding_window_view(
        np.pad(grid, reach, constant_values=fill), (kernel_size, kernel_size))

  outputs = np.asarray(outputs) + pad
  grown = [np.pad(np.asarray(valid, bool), pad)]  # S_0 .. S_n
  for _ in range(num_layers):
    grown.append(window(grown[-1], False).any((-2, -1)))
  last = np.zeros((size, size), bool)
  last[outputs[:, 0], outputs[:, 1]] = True
  wanted = [last]  # T_n, then down to T_1
  for layer in range(num_layers - 1, 0, -1):
    wanted.append(window(wanted[-1], False).any((-2, -1)) & grown[layer])
  wanted = wanted[::-1]
  rows = np.pad(np.asarray(inputs), pad, constant_values=-1)  # layer 1's input rows
  layers = []
  for layer in range(1, num_layers + 1):
    starts, ends = outputs.T if layer == num_layers else np.nonzero(wanted[layer - 1])
    empty = rows.max() + 1
    neighbours = window(np.where(rows >= 0, rows, empty), empty)[starts, ends]
    counts = window(grown[layer - 1], False)[starts, ends].sum((-2, -1))
    layers.append((neighbours.reshape(len(starts), -1).astype(np.int32),
                   counts.astype(np.int32)))
    rows = np.full((size, size), -1)
    rows[starts, ends] = np.arange(len(starts))
  return layers


class MapPredictor(nn.Module):
  """2D-TAN's score predictor (github.com/microsoft/2D-TAN `Predictor`, as CLEAR's
  release has it): `num_layers` kernel-k `MapConv`s, each followed by ReLU and its
  division by the window's count on the growing mask, then a 1x1 convolution to one
  logit. `rows [N, R, D]` are the first layer's input rows and `layout` the tables of
  `grown_layout` (its `inputs` index `rows`) -> logits `[N, M]` at its `outputs`.
  Params `convs_<i>` and `pred`, the release's names."""
  features: int
  kernel_size: int

  @nn.compact
  def __call__(self, rows: jnp.ndarray, layout) -> jnp.ndarray:
    x = rows
    for i, (neighbours, counts) in enumerate(layout):
      # relu(z) / n = relu(z / n) for the count n >= 1 of every computed position.
      x = nn.relu(MapConv(self.features, self.kernel_size, name=f"convs_{i}")(
          x, neighbours, counts))
    return nn.Dense(1, name="pred")(x)[..., 0]
