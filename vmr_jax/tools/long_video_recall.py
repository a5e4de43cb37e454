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

from vmr_jax.tools.spliced_videos import long_videos

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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  from vmr_jax import metrics
  from vmr_jax.predictor import Predictor
  from vmr_jax.search_inputs import read_annotations, read_collection, stores_normalized
  try:
    lengths = [int(x) for x in _LENGTHS.value]
    videos = read_annotations(_ANNOTATIONS.value, _FORMAT.value)
    durations = {v.video_id: v.duration for v in videos}
    predictor = Predictor.load(_EXPORT.value)
    features, durations = read_collection(_FEATURES.value, None, durations,
                                          stores_normalized(predictor.config))
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
