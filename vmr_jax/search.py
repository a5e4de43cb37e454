"""Search the videos of feature files for sentences, with a model export.

    python -m vmr_jax.search --export=WORKDIR/export --features=FILE.hdf5 \
        --durations=DURATIONS --query="the person opens the door" [--query=...] \
        [--top_n=10] [--output=FILE.jsonl] [--window_clips=64 [--window_stride=32]]
    python -m vmr_jax.search --export=... --features=... --annotations=SPLIT.json \
        --annotation_format=activitynet|tacos|jsonl --evaluate

Features (`data_pipelines.features`, as the dataset builders read them): a comma list
of flat HDF5 files (`f[video_id]` -> `[clips, D]`: TACoS, Charades-STA) and folders of
`<video_id>.npz` (Moment-DETR's, the array under "features"), several joined along D
per video (`open_sources`); or one HDF5 file of groups, `f[video_id][NAME]` with
`--feature_dataset=NAME` (ActivityNet's `c3d_features`). `--l2_normalize` normalizes
each file's clips as the `jsonl` builder stores them (its default); it is on by
default for an export trained on a `jsonl` dataset (or QVHighlights), off otherwise.
Durations (seconds), one of: `--annotations` (a release split file: ActivityNet
Captions' `duration`, TACoS' `num_frames / fps`, Moment-DETR JSON lines' `duration`),
`--durations` (JSON `{video_id: seconds}`), or each video's HDF5 attribute
`duration`. The collection is the videos of `--annotations` or `--durations`, or
else every video of the files.
`--evaluate` searches every sentence of `--annotations` in the whole collection and
prints the corpus metrics (`metrics.corpus_metrics`: the right video and a moment at
IoU >= m with one of the query's windows among the top k; a JSON-lines query has
all its `relevant_windows`). `--output`: one JSON line per sentence, `{"qid",
"query", "pred": [[video_id, start, end, score], ...]}`, and with `--evaluate` its
`vid`, `duration` and `relevant_windows` too (a JSON-lines query keeps its `qid`).
`--window_clips=W`: each video of more than W feature clips is searched in windows of
W clips every `--window_stride` clips (W // 2 by default), their moments merged by NMS
(`vmr_jax.long_videos`): moments of the whole video, each video once.
`--search_backend=jax|faiss|auto`: the Predictor's (CMHN's codes on faiss or JAX).
No TensorFlow is imported.
"""

from __future__ import annotations

import json
import os

from absl import app, flags, logging
from tqdm import tqdm

from vmr_jax.search_inputs import (evaluation_queries, read_annotations, read_collection,
                                   read_durations, stores_normalized)

_EXPORT = flags.DEFINE_string("export", None, "A model export (vmr_jax.export).",
                              required=True)
_FEATURES = flags.DEFINE_string("features", None, "Clip features: a comma list of HDF5 "
                                 "files and folders of <video_id>.npz.", required=True)
_FEATURE_DATASET = flags.DEFINE_string("feature_dataset", None, "The dataset name inside "
                                       "each video's group (e.g. c3d_features).")
_ANNOTATIONS = flags.DEFINE_string("annotations", None, "A release split file.")
_FORMAT = flags.DEFINE_enum("annotation_format", "activitynet",
                            ["activitynet", "tacos", "jsonl"],
                            "--annotations' format (jsonl: Moment-DETR JSON lines).")
_DURATIONS = flags.DEFINE_string("durations", None, "JSON {video_id: seconds}.")
_QUERY = flags.DEFINE_multi_string("query", [], "A sentence (repeat for more).")
_EVALUATE = flags.DEFINE_bool("evaluate", False, "Search every sentence of "
                              "--annotations; print the corpus metrics.")
_TOP_N = flags.DEFINE_integer("top_n", 10, "Moments per sentence.")
_OUTPUT = flags.DEFINE_string("output", None, "JSON lines of the ranked moments.")
_WINDOW = flags.DEFINE_integer("window_clips", None, "Search each video longer than this "
                               "many feature clips in overlapping windows of as many "
                               "(default: one resampled pass a video).")
_STRIDE = flags.DEFINE_integer("window_stride", None, "Clips between windows' starts "
                               "(default: window_clips // 2).")
_BACKEND = flags.DEFINE_enum("search_backend", "auto", ["auto", "jax", "faiss"],
                             "How CMHN's collection is ranked (Predictor's search_backend): "
                             "auto takes faiss on a CPU where it is installed.")
_L2_NORMALIZE = flags.DEFINE_bool("l2_normalize", None, "L2-normalize each feature "
                                  "file's clips, as the jsonl builder does (default: for "
                                  "an export trained on a dataset it built: jsonl, "
                                  "QVHighlights).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  from data_pipelines.words import split_words
  from vmr_jax import metrics
  from vmr_jax.predictor import Predictor
  try:  # the inputs: a bad one is one line naming it
    videos = read_annotations(_ANNOTATIONS.value, _FORMAT.value) if _ANNOTATIONS.value else None
    if videos is not None:
      durations = {v.video_id: v.duration for v in videos}
    elif _DURATIONS.value:
      durations = read_durations(_DURATIONS.value)
    else:
      durations = None
    if _EVALUATE.value:
      if videos is None:
        raise app.UsageError("--evaluate needs --annotations")
      queries = evaluation_queries(videos, _FORMAT.value)
      sentences = [q[2] for q in queries]
    else:
      sentences, queries = list(_QUERY.value), None
    if not sentences:
      raise app.UsageError("give --query='a sentence' (or --evaluate with --annotations)")
    wordless = [s for s in sentences if not split_words(s)]
    if wordless:
      raise app.UsageError(f"sentence {wordless[0]!r} has no words")
    if _OUTPUT.value and not os.path.isdir(os.path.dirname(os.path.abspath(_OUTPUT.value))):
      raise app.UsageError(f"--output {_OUTPUT.value}: no such directory")
    if _WINDOW.value is not None and _WINDOW.value < 1:
      raise app.UsageError(f"--window_clips={_WINDOW.value}: give a number of clips >= 1")
    if _STRIDE.value is not None:
      if _WINDOW.value is None:
        raise app.UsageError("--window_stride needs --window_clips")
      if not 1 <= _STRIDE.value <= _WINDOW.value:
        raise app.UsageError(f"--window_stride={_STRIDE.value}: give a number of clips in "
                             f"[1, --window_clips={_WINDOW.value}]")
    predictor = Predictor.load(_EXPORT.value, search_backend=_BACKEND.value)
    predictor.warn = not _EVALUATE.value  # --annotations' sentences are cut as in evaluation
    l2_normalize = _L2_NORMALIZE.value
    if l2_normalize is None:  # as the jsonl builder stores them by default
      l2_normalize = stores_normalized(predictor.config)
    predictor.encode(*read_collection(_FEATURES.value, _FEATURE_DATASET.value, durations,
                                      l2_normalize),
                     window=_WINDOW.value, stride=_STRIDE.value)
  except (OSError, ValueError) as e:
    raise app.UsageError(str(e).strip().partition("\n")[0] or type(e).__name__) from None
  ranked, size = [], predictor.config.eval.batch_size
  for begin in tqdm(range(0, len(sentences), size), desc="search", unit="batch",
                    leave=False, disable=len(sentences) <= size):
    ranked += predictor.search(sentences[begin:begin + size], _TOP_N.value)
  records = [{"qid": i, "query": s, "pred": [[m.video_id, m.start, m.end, m.score]
                                             for m in moments]}
             for i, (s, moments) in enumerate(zip(sentences, ranked))]
  if queries is not None:
    for record, (video, duration, _, windows, qid) in zip(records, queries):
      record.update(vid=video, duration=duration, relevant_windows=windows)
      if qid is not None:
        record["qid"] = qid
    thresholds = predictor.config.eval.iou_thresholds or (0.5, 0.7)
    ks = sorted({1, 5, 10, _TOP_N.value} & set(range(1, _TOP_N.value + 1)))
    result = metrics.corpus_metrics(
        [r["pred"] for r in records], [r["vid"] for r in records],
        [r["relevant_windows"] for r in records], ks, thresholds)
    print(f"{len(records)} queries, {len(predictor.video_ids)} videos")
    for name, value in result.items():
      print(f"{name:24s} {100 * value:6.2f}")
  else:
    for record in records:
      print(record["query"])
      for video, start, end, score in record["pred"]:
        print(f"  {video:24s} {start:8.2f} - {end:8.2f} s   score {score:.3f}")
  if _OUTPUT.value:
    with open(_OUTPUT.value, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
  app.run(main)
