"""2D moment maps: every span of clips as one candidate (CLEAR Sec. III-B; 2D-TAN).

A map over L clips holds the N = L(L+1)/2 spans (i, j), 0 <= i <= j < L, inclusive
clip indices; span (i, j) of a video of duration T covers [i T/L, (j + 1) T/L).
Candidates are stored packed, ordered by length then start: span (i, i + k) has index
k L - k(k - 1)/2 + i. The packed layout holds no i > j cell, so nothing needs masking
there; `span_index` maps back to the (start, end) grid, with -1 below the diagonal.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def num_spans(num_clips: int) -> int:
  return num_clips * (num_clips + 1) // 2


def dense_spans(num_clips: int) -> np.ndarray:
  """`[N, 2]` (start, end) clip indices, inclusive, in packed order."""
  return np.array([(i, i + k) for k in range(num_clips) for i in range(num_clips - k)],
                  dtype=np.int32).reshape(-1, 2)


def span_index(num_clips: int) -> np.ndarray:
  """`[L, L]` packed index of span (start, end); -1 where start > end."""
  grid = np.full((num_clips, num_clips), -1, dtype=np.int32)
  spans = dense_spans(num_clips)
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
