"""Sliding-window candidates over a clip sequence and the 1-D convolutions that score
them (CMHN Eq. 2: every window size at stride 1; FIAN Sec. 3.4: multi-size windows at
a stride proportional to the size).

A window of size w at stride s starts at 0, s, 2s, ... while it fits in the T clips.
When (T - w) is not a multiple of s the last clips would be seen by no window of that
size, so one more window is aligned to the end: [T - w, T). `window_spans` lists the
candidates in the order `window_conv` emits them: by size (in the given order), then by
start, the tail window last. `tail=False` leaves it out (CMHN's released code: a size
covers only the windows its strided convolution produces).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


def window_starts(num_clips: int, window: int, stride: int, tail: bool = True
                  ) -> np.ndarray:
  """Start clips of the windows of one size, the tail window included if `tail`."""
  if not 1 <= window <= num_clips:
    raise ValueError(f"window {window} does not fit in {num_clips} clips")
  if stride < 1:
    raise ValueError(f"window stride must be >= 1, got {stride}")
  starts = np.arange(0, num_clips - window + 1, stride)
  if tail and starts[-1] != num_clips - window:
    starts = np.append(starts, num_clips - window)
  return starts


def window_spans(num_clips: int, windows: Sequence[int], strides: Sequence[int],
                 tail: bool = True) -> np.ndarray:
  """`[N, 2]` clip spans [start, end) of every window, in `window_conv`'s order."""
  if len(windows) != len(strides):
    raise ValueError(f"{len(windows)} window sizes but {len(strides)} strides")
  return np.concatenate([
      np.stack([starts, starts + w], axis=1)
      for w, s in zip(windows, strides)
      for starts in [window_starts(num_clips, w, s, tail)]]).astype(np.int32)


def ratio_strides(windows: Sequence[int], ratio: float) -> tuple[int, ...]:
  """Strides round(w * ratio), at least 1 (FIAN: "stride size as 0.125 of kernel size")."""
  return tuple(max(1, int(round(w * ratio))) for w in windows)


def window_conv(x: jnp.ndarray, features: int, windows: Sequence[int],
                strides: Sequence[int], prefix: str, tail: bool = True,
                index_names: bool = False) -> jnp.ndarray:
  """One convolution per window size, kernel = window, over `x [B, T, D]` ->
  `[B, N, features]`: output n is the convolution of the span `window_spans(...)[n]`.

  Call it inside a compact module: it adds the `nn.Conv` submodules `<prefix>_<w>`
  (`<prefix>_<i>`, the i-th size, with `index_names`) to that module (a tail window
  reuses its size's kernel).
  """
  num_clips = x.shape[1]
  outputs = []
  for i, (w, s) in enumerate(zip(windows, strides)):
    starts = window_starts(num_clips, w, s, tail)
    conv = nn.Conv(features, (w,), strides=(s,), padding="VALID",
                   name=f"{prefix}_{i if index_names else w}")
    regular = conv(x)
    outputs.append(regular)
    if len(starts) > regular.shape[1]:  # the tail window
      outputs.append(conv(x[:, num_clips - w:]))
  return jnp.concatenate(outputs, axis=1)
