"""A simple baseline to read the models' numbers against: a bag-of-words ridge
regression from clip features, fitted on the training split
(`vmr_jax.tools.word_regression` has the method).

    python -m vmr_jax.tools.bow_baseline --name=tacos_shaped --data_dir=DIR \
        [--num_clips=128] [--ridge=100] [--workdir=W]

Prints the offset it chose and R@1 and R@5 (after NMS 0.5) at the dataset's IoU
thresholds and mIoU on val and test (those the dataset has), and Moment-DETR's
metrics where its build asks for them (`moment_detr_metrics`: QVHighlights, jsonl),
with the models' evaluation code
(`vmr_jax.evaluate`), which with `--workdir` also writes the val and test
predictions as theirs (`vmr_jax.tools.significance` compares them).
"""

from __future__ import annotations

import dataclasses

from absl import app, flags, logging
import numpy as np

from vmr_jax.tools import word_regression
from data_pipelines.data_config import DataConfig
from data_pipelines.input_pipeline import Pipeline, load_builder
from vmr_jax import evaluate, metrics

_NAME = flags.DEFINE_string("name", "tacos_shaped", "Dataset name.")
_BUILDER_CONFIG = flags.DEFINE_string("builder_config", None, "Builder config.")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data dir.")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 128, "Clips per video.")
_RIDGE = flags.DEFINE_float("ridge", 100.0, "Ridge penalty.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Also write DIR/eval/<split>_metrics.json "
                               "and _predictions.jsonl, as a model's evaluation does.")


def read_split(pipeline: Pipeline, split: str) -> list[dict[str, np.ndarray]]:
  """The split's host batches of one video each (`Pipeline.eval_iterator`)."""
  return list(pipeline.eval_iterator(split, 1))


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  config = DataConfig(name=_NAME.value, data_dir=_DATA_DIR.value,
                      builder_config=_BUILDER_CONFIG.value, num_clips=_NUM_CLIPS.value,
                      max_queries=512)
  most = load_builder(config).info.metadata.get("max_windows_per_query", 1)
  if most > 1:  # several windows a query: one query, all its windows
    config = dataclasses.replace(config, duplicate_sentences="merge", max_windows=most)
  pipeline = Pipeline(config)
  train = read_split(pipeline, "train")
  w = word_regression.fit(train, len(pipeline.vocab), _RIDGE.value)
  offset, scores = word_regression.choose_offset(train, w)
  print(f"offset c = {offset} (train R@1,IoU=0.5 by c: "
        + ", ".join(f"{c}: {100 * s:.2f}" for c, s in scores.items()) + ")")
  thresholds = tuple(pipeline.metadata["iou_thresholds"])
  moment_detr = bool(pipeline.metadata.get("moment_detr_metrics", False))
  for split in [s for s in ("val", "test") if s in pipeline.builder.info.splits]:
    records = word_regression.rank(read_split(pipeline, split), w, offset,
                                   10 if moment_detr else 5)
    result = evaluate.metrics_of_records(records, (1, 5), thresholds, moment_detr)
    print(f"{split} ({result['num_queries']} queries): {metrics.summarize(result)}")
    if _WORKDIR.value:
      evaluate.write(_WORKDIR.value, split, result, records)


if __name__ == "__main__":
  app.run(main)
