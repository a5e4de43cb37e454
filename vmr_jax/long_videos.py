"""Videos longer than a model's clip budget, searched in overlapping windows.

A model sees `data.num_clips` clips: `Predictor.encode` resamples a video of any
length to them, so in a 2-hour video one model clip averages minutes of features
and a short event is diluted past finding. With a window of `window` clips
(`Predictor.encode(..., window=W, stride=S)`, `python -m vmr_jax.search
--window_clips=W --window_stride=S`) a video of T > W clips is instead indexed as
its windows, pieces of W clips starting every S clips, the last one ending at
clip T (`window_starts`, `split`); each piece is a video of its own to the model
(resampled to its grid as any video is), of `W * duration / T` seconds. A piece's
moments are shifted by its offset into the video's seconds (`to_video_time`) and
the pieces' moments are merged by the evaluation's greedy NMS
(`vmr_jax.metrics.nms`, `eval.nms_threshold`) across the windows (`merge`), so a
moment that two overlapping windows both find is returned once. A video of T <= W
clips is one piece, the whole video at offset 0: with W >= every video's length,
the results are those of the single resampled pass.

Clips are the input features' clips (rows of the `[T, D]` array), not the
model's; `seconds per clip = duration / T`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from vmr_jax import metrics


@dataclasses.dataclass(frozen=True)
class Piece:
  """A window of a video: `features [min(W, T), D]` = the video's clips
  `[start, start + len(features))`, `offset` = the seconds of the video at clip
  `start`, `duration` = the piece's seconds."""
  features: np.ndarray
  start: int
  offset: float
  duration: float


def default_stride(window: int) -> int:
  """Half a window (at least 1 clip)."""
  return max(1, window // 2)


def check_window(window: int, stride: int | None = None) -> tuple[int, int]:
  """`(window, stride)` as ints, the stride defaulted (`default_stride`);
  `ValueError` for a window or stride < 1 or a stride > window (clips no window sees)."""
  if isinstance(window, bool) or int(window) != window or window < 1:
    raise ValueError(f"window {window!r} must be a whole number of clips >= 1")
  window = int(window)
  stride = default_stride(window) if stride is None else stride
  if isinstance(stride, bool) or int(stride) != stride or not 1 <= stride <= window:
    raise ValueError(f"window stride {stride!r} must be a whole number of clips in "
                     f"[1, window = {window}]")
  return window, int(stride)


def window_starts(num_clips: int, window: int, stride: int | None = None) -> np.ndarray:
  """`[P]` first clips of the windows of a `num_clips`-clip video: 0, stride,
  2 stride, ... while a window ends before the last clip, then `num_clips - window`
  (the last window ends at clip T); `[0]` where `num_clips <= window`."""
  window, stride = check_window(window, stride)
  if num_clips <= window:
    return np.zeros(1, np.int64)
  starts = list(range(0, num_clips - window, stride)) + [num_clips - window]
  return np.asarray(starts, np.int64)


def overlap(window: int, stride: int | None = None) -> int:
  """A bound on the windows one clip lies in: ceil(window / stride), plus one for the
  last window (which ends at the video's last clip, off the stride's grid)."""
  window, stride = check_window(window, stride)
  return math.ceil(window / stride) + 1


def split(features: np.ndarray, duration: float, window: int, stride: int | None = None
          ) -> list[Piece]:
  """A video's clip features `[T, D]` of `duration` seconds -> its windows (`Piece`s,
  in order; `window_starts`). `T <= window`: one piece, the video itself (its
  features and duration as given, offset 0)."""
  features = np.asarray(features)
  if features.ndim != 2 or not len(features):
    raise ValueError(f"clip features must be [clips >= 1, D], got shape {features.shape}")
  num = len(features)
  starts = window_starts(num, window, stride)
  if num <= window:
    return [Piece(features, 0, 0.0, float(duration))]
  per_clip = float(duration) / num
  return [Piece(features[s:s + window], int(s), s * per_clip, window * per_clip)
          for s in starts]


def to_video_time(moments: np.ndarray, offset: float) -> np.ndarray:
  """A piece's moments `[..., 3]` (start, end, score; seconds of the piece) ->
  the same moments in seconds of the video (float64; offset 0 changes no value)."""
  moments = np.array(moments, dtype=np.float64)
  moments[..., :2] += offset
  return moments


def merge(moments: Sequence[np.ndarray], offsets: Sequence[float], threshold: float,
          top_n: int | None = None) -> np.ndarray:
  """The pieces' ranked moments (per piece `[K_p, 3]`, seconds of the piece) and
  their `offsets [P]` -> `[K, 3]` the video's moments, best first: shifted into the
  video's seconds, concatenated in piece order and NMS'd together
  (`metrics.nms(threshold, top_n)`: equal scores keep piece order). Non-finite
  scores (padding candidates) are dropped."""
  if len(moments) != len(offsets):
    raise ValueError(f"{len(moments)} pieces' moments and {len(offsets)} offsets")
  shifted = [to_video_time(np.asarray(m).reshape(-1, 3), o) for m, o in zip(moments, offsets)]
  every = np.concatenate(shifted) if shifted else np.zeros((0, 3))
  return metrics.nms(every[np.isfinite(every[:, 2])], threshold, top_n)
