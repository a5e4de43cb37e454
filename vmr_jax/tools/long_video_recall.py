"""Recall of short events in generated long videos: one resampled pass against
windows (`Predictor.encode(window=...)`, `vmr_jax.long_videos`).

    python -m vmr_jax.tools.long_video_recall --export=WORKDIR/export \\
        --features=FEATURES --annotations=SPLIT --annotation_format=jsonl \\
        --lengths=500,2000 --window_clips=32 [--window_stride=16] [--queries=50]

Each annotated query's event (the clips of its first window in its own video, the
features' clips at the video's `duration / clips` seconds a clip) is spliced at a
random place into a background, one long video of `L` clips per query at each of
`--lengths`: `--background=own` (default) the rest of its own video (the clips before
and after the event, as two pieces in random order, repeated to the length: the
scene goes on, the event happens once), `others` the other videos of the collection
(whole, in random order, cut to the length: a model may find the query in them).
The query is localized in it (`localize`, top 10) with one resampled pass and with
windows. Prints a markdown table of R@1 and R@10
at IoU 0.5 (`metrics.grounding_metrics`) per length and way; `--lengths` may
hold 0: the source videos themselves. Inputs as `python -m vmr_jax.search` reads
them (`--features`: a comma list of HDF5 files and npz folders).
"""

from __future__ import annotations

from absl import app, flags, logging
import numpy as np

_EXPORT = flags.DEFINE_string("export", None, "A model export.", required=True)
_FEATURES = flags.DEFINE_string("features", None, "Clip features (as vmr_jax.search).",
                                required=True)
_ANNOTATIONS = flags.DEFINE_string("annotations", None, "A split file: the events.",
                                   required=True)
_FORMAT = flags.DEFINE_enum("annotation_format", "jsonl", ["activitynet", "tacos", "jsonl"],
                            "--annotations' format.")
_LENGTHS = flags.DEFINE_list("lengths", ["500", "2000"], "Long videos' clips (0: the "
                             "source videos).")
_WINDOW = flags.DEFINE_integer("window_clips", 32, "Window clips.")
_STRIDE = flags.DEFINE_integer("window_stride", None, "Window stride (clips).")
_QUERIES = flags.DEFINE_integer("queries", 50, "Queries (events) used, the first ones.")
_SEED = flags.DEFINE_integer("seed", 0, "Background and placement seed.")
_BACKGROUND = flags.DEFINE_enum("background", "own", ["own", "others"], "The long "
                                "videos' other clips: the rest of the event's video, or "
                                "the other videos.")


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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  from vmr_jax import metrics
  from vmr_jax.predictor import Predictor
  from vmr_jax.search_inputs import read_annotations, read_collection
  try:
    lengths = [int(x) for x in _LENGTHS.value]
    videos = read_annotations(_ANNOTATIONS.value, _FORMAT.value)
    durations = {v.video_id: v.duration for v in videos}
    predictor = Predictor.load(_EXPORT.value)
    # Clips L2-normalized for a jsonl-trained export, as that builder stores them.
    features, durations = read_collection(_FEATURES.value, None, durations,
                                          predictor.config.data.name == "jsonl")
  except (OSError, ValueError) as e:
    raise app.UsageError(str(e).strip().partition("\n")[0] or type(e).__name__) from None
  predictor.warn = False
  seen, queries = set(), []
  for v in videos:
    for q in v.queries:
      if (v.video_id, q.index) not in seen:  # a query's first window
        seen.add((v.video_id, q.index))
        queries.append((v.video_id, q.sentence, (q.start, q.end)))
  queries = queries[:_QUERIES.value]
  print(f"{len(queries)} queries, window {_WINDOW.value} clips, stride "
        f"{_STRIDE.value or max(1, _WINDOW.value // 2)}, background {_BACKGROUND.value}, "
        f"model {predictor.config.model} ({predictor.config.data.num_clips} clips)\n")
  print("| clips a video | search | R@1,IoU=0.5 | R@10,IoU=0.5 |")
  print("|---:|---|---:|---:|")
  for length in lengths:
    rng = np.random.default_rng(_SEED.value)
    feats, seconds, gts = long_videos(features, durations, queries, length, rng,
                                      _BACKGROUND.value)
    names = list(feats) if length else [q[0] for q in queries]
    for way, window in (("one resampled pass", None), ("windows", _WINDOW.value)):
      predictor.encode(feats, seconds, window=window,
                       stride=_STRIDE.value if window else None)
      ranked = [predictor.localize(name, [q[1]], 10)[0] for name, q in zip(names, queries)]
      result = metrics.grounding_metrics(ranked, gts, (1, 10), (0.5,))
      print(f"| {length or 'source'} | {way} | {100 * result['R@1,IoU=0.5']:.1f} | "
            f"{100 * result['R@10,IoU=0.5']:.1f} |")


if __name__ == "__main__":
  app.run(main)
