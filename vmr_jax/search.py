"""Search the videos of an HDF5 feature file for sentences, with a model export.

    python -m vmr_jax.search --export=WORKDIR/export --features=FILE.hdf5 \
        --durations=DURATIONS --query="the person opens the door" [--query=...] \
        [--top_n=10] [--output=FILE.jsonl]
    python -m vmr_jax.search --export=... --features=... --annotations=SPLIT.json \
        --annotation_format=activitynet|tacos|jsonl --evaluate

Features: `f[video_id]` -> `[clips, D]` (TACoS, Charades-STA), or
`f[video_id][NAME]` with `--feature_dataset=NAME` (ActivityNet's `c3d_features`), as
the dataset builders read them (`data_pipelines.features`); or, as the `jsonl`
builder's `--features`, a folder of `<vid>.npz` or several sources, comma-separated,
concatenated (`data_pipelines.features.open_sources`). `--l2_normalize` normalizes
each source's clips as that builder does; its default is on for an export trained on
a `jsonl` dataset (the builder's default) and off otherwise.
Durations (seconds), one of: `--annotations` (a release split file: ActivityNet
Captions' `duration`, TACoS' `num_frames / fps`, Moment-DETR JSON lines' `duration`,
with `--annotation_format=jsonl`; a query with several windows is scored on its first
by `--evaluate`), `--durations` (JSON
`{video_id: seconds}`), or each video's HDF5 attribute `duration`. The collection is
the videos of `--annotations` or `--durations`, or else every video of the file.
`--evaluate` searches every sentence of `--annotations` in the whole collection and
prints the corpus metrics (`metrics.corpus_metrics`: the right video and moment at
IoU >= m among the top k). `--output`: one JSON line per sentence, `{"qid", "query",
"pred": [[video_id, start, end, score], ...]}`, and with `--evaluate` its `vid`,
`duration` and `relevant_windows` too. No TensorFlow is imported.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

from absl import app, flags, logging
import numpy as np
from tqdm import tqdm

_EXPORT = flags.DEFINE_string("export", None, "A model export (vmr_jax.export).",
                              required=True)
_FEATURES = flags.DEFINE_string("features", None, "HDF5 clip features, or folders of "
                                 "<vid>.npz / HDF5 files, comma-separated.", required=True)
_FEATURE_DATASET = flags.DEFINE_string("feature_dataset", None, "The dataset name inside "
                                       "each video's group (e.g. c3d_features).")
_ANNOTATIONS = flags.DEFINE_string("annotations", None, "A release split file.")
_FORMAT = flags.DEFINE_enum("annotation_format", "activitynet",
                            ["activitynet", "tacos", "jsonl"], "--annotations' format.")
_L2_NORMALIZE = flags.DEFINE_bool("l2_normalize", None, "L2-normalize each feature "
                                  "source's clips (default: for a jsonl-trained export).")
_DURATIONS = flags.DEFINE_string("durations", None, "JSON {video_id: seconds}.")
_QUERY = flags.DEFINE_multi_string("query", [], "A sentence (repeat for more).")
_EVALUATE = flags.DEFINE_bool("evaluate", False, "Search every sentence of "
                              "--annotations; print the corpus metrics.")
_TOP_N = flags.DEFINE_integer("top_n", 10, "Moments per sentence.")
_OUTPUT = flags.DEFINE_string("output", None, "JSON lines of the ranked moments.")


def read_collection(path: str, dataset: str | None, durations: Mapping[str, float] | None,
                    l2_normalize: bool = False
                    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
  """The features of the videos of `durations` (every video of the file if None) and
  their durations (else each video's HDF5 attribute `duration`). `path`: one HDF5
  file, or (without `dataset`) folders of `.npz` / HDF5 files, comma-separated."""
  from data_pipelines.features import FeatureFile, open_sources, problem
  paths = path.split(",")
  one_file = len(paths) == 1 and not os.path.isdir(path) and not l2_normalize
  with FeatureFile(path, dataset) if one_file or dataset else open_sources(
      paths, l2_normalize) as f:
    first = f if one_file or dataset else f.sources[0]
    videos = (list(durations) if durations is not None
              else [v for v in first.video_ids() if v in f])
    features, seconds = {}, {}
    for video in videos:
      feats = f.read(video)
      reason = problem(feats)
      if reason is not None:
        raise ValueError(f"{path}: video {video!r}: {reason}")
      features[video] = feats
      if durations is not None:
        seconds[video] = float(durations[video])
      elif (isinstance(first, FeatureFile)
            and first.attribute(video, "duration") is not None):
        seconds[video] = float(first.attribute(video, "duration"))
      else:
        raise ValueError(f"{path}: video {video!r} has no duration attribute; give "
                         "--durations or --annotations")
  return features, seconds


def read_annotations(path: str, kind: str):
  """Release split file -> videos (`data_pipelines.annotations.Video`), as the builders
  read them."""
  from data_pipelines import annotations
  read = {"activitynet": annotations.read_activitynet, "tacos": annotations.read_tacos,
          "jsonl": annotations.read_jsonl}[kind]
  videos = read(path, "search", annotations.BuildReport())
  if kind == "jsonl":  # a query with several windows is one Query per window: the first
    for video in videos:
      first = {}
      for query in video.queries:
        first.setdefault(query.index, query)
      video.queries = list(first.values())
  return videos


def read_durations(path: str) -> dict[str, float]:
  """A JSON file `{video_id: seconds}`."""
  try:
    with open(path) as f:
      durations = json.load(f)
    return {str(k): float(v) for k, v in durations.items()}
  except (OSError, ValueError, TypeError, AttributeError) as e:
    raise ValueError(f"--durations {path} is not a readable JSON object {{video_id: "
                     f"seconds}} ({e})") from None


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
      queries = [(v.video_id, v.duration, q) for v in videos for q in v.queries]
      sentences = [q.sentence for _, _, q in queries]
    else:
      sentences, queries = list(_QUERY.value), None
    if not sentences:
      raise app.UsageError("give --query='a sentence' (or --evaluate with --annotations)")
    wordless = [s for s in sentences if not split_words(s)]
    if wordless:
      raise app.UsageError(f"sentence {wordless[0]!r} has no words")
    if _OUTPUT.value and not os.path.isdir(os.path.dirname(os.path.abspath(_OUTPUT.value))):
      raise app.UsageError(f"--output {_OUTPUT.value}: no such directory")
    predictor = Predictor.load(_EXPORT.value)
    predictor.warn = not _EVALUATE.value  # --annotations' sentences are cut as in evaluation
    l2_normalize = _L2_NORMALIZE.value
    if l2_normalize is None:  # as the jsonl builder stores them by default
      l2_normalize = predictor.config.data.name == "jsonl"
    predictor.encode(*read_collection(_FEATURES.value, _FEATURE_DATASET.value, durations,
                                      l2_normalize))
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
    for record, (video, duration, query) in zip(records, queries):
      record.update(vid=video, duration=duration, relevant_windows=[[query.start, query.end]])
    thresholds = predictor.config.eval.iou_thresholds or (0.5, 0.7)
    ks = sorted({1, 5, 10, _TOP_N.value} & set(range(1, _TOP_N.value + 1)))
    result = metrics.corpus_metrics(
        [r["pred"] for r in records], [r["vid"] for r in records],
        np.array([r["relevant_windows"][0] for r in records]), ks, thresholds)
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
