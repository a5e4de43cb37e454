"""Long videos made from annotated ones, each query's event spliced once into a
background (`python -m vmr_jax.tools.long_video_recall` measures search on them); no
flags, so tests can import it beside any tool."""

from __future__ import annotations

import numpy as np


def splice(event: np.ndarray, background: list[np.ndarray], length: int,
           rng: np.random.Generator) -> tuple[np.ndarray, int]:
  """`event [E, D]` put at a random clip of `length - E` background clips (the
  `background` videos' `[T_i, D]` clips, shuffled, repeated as needed) -> the long
  video `[max(length, E), D]` and the event's first clip."""
  need = max(length - len(event), 0)
  parts, have = [], 0
  while have < need:
    for i in rng.permutation(len(background)):
      parts.append(background[i])
      have += len(background[i])
      if have >= need:
        break
  rest = np.concatenate(parts)[:need] if parts else np.zeros((0, event.shape[1]), event.dtype)
  at = int(rng.integers(0, need + 1))
  return np.concatenate([rest[:at], event, rest[at:]]).astype(np.float32), at


def long_videos(features, durations, queries, length: int, rng, background: str = "own"):
  """Per query `(video_id, sentence, [start, end])`, one generated video: features,
  durations and each query's ground truth `[Q, 2]` seconds."""
  out, seconds, gts = {}, {}, []
  for q, (video, _, (start, end)) in enumerate(queries):
    clips = features[video]
    per_clip = durations[video] / len(clips)
    first = min(int(np.floor(start / per_clip)), len(clips) - 1)
    last = max(int(np.ceil(end / per_clip)), first + 1)
    if length == 0:
      name, out_clips, at = video, clips, 0
      gts.append([start, end])
    else:
      rest = [part for part in (clips[:first], clips[last:]) if len(part)]
      others = [f for v, f in features.items() if v != video]
      pieces = (rest if background == "own" else others) or rest or others or [clips]
      out_clips, at = splice(clips[first:last], pieces, length, rng)
      gts.append([at * per_clip, (at + last - first) * per_clip])
      name = f"q{q}"
    out[name], seconds[name] = out_clips, len(out_clips) * per_clip
  return out, seconds, np.asarray(gts, np.float64)
