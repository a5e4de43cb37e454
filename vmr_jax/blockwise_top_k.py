"""The exact top k of long rows of scores, through the maxima of blocks.

`jax.lax.top_k` over a row of 10^6 scores is most of a collection search's time on a
CPU (`docs/benchmarks.md`, "Collection search"). `top_k` here splits each row into
blocks of `b` scores, keeps the k blocks of largest maximum (ties to the lower block)
and takes the top k of their k x b scores, in index order: the same values and
indexes as `jax.lax.top_k`, ties to the lower index, from two top-k calls over
about `M / b` and `k b` scores instead of one over `M`.

Why it is exact: let tau be the k-th largest block maximum. Every block left out has
its maximum <= tau, and the k blocks kept hold k scores >= tau (their maxima), each
of a lower index than any score equal to tau in a later block left out (ties between
blocks go to the lower one). So every score of a block left out is beaten by k kept
scores, and the top k of the kept blocks, in index order, is the top k of the row.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def block_size(length: int, k: int) -> int:
  """`b` that makes both top-k calls small: about sqrt(M / k), so M / b ~ k b."""
  return max(1, round(math.sqrt(length / max(k, 1))))


def top_k(scores: jnp.ndarray, k: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """`scores [S, M]` -> `(values [S, k], indexes [S, k])`, exactly `jax.lax.top_k`'s
  (k <= M; NaN-free scores)."""
  rows, length = scores.shape
  b = block_size(length, k)
  blocks = -(-length // b)
  if blocks <= k:  # too few blocks to leave any out
    return jax.lax.top_k(scores, k)
  padded = jnp.pad(scores, ((0, 0), (0, blocks * b - length)), constant_values=-jnp.inf)
  padded = padded.reshape(rows, blocks, b)
  _, kept = jax.lax.top_k(padded.max(axis=-1), k)  # [S, k] blocks
  kept = jnp.sort(kept, axis=-1)  # index order, so that ties go to the lower index
  candidates = jnp.take_along_axis(padded, kept[..., None], axis=1).reshape(rows, k * b)
  values, position = jax.lax.top_k(candidates, k)
  index = jnp.take_along_axis(kept, position // b, axis=1) * b + position % b
  return values, index
