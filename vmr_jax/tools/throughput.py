"""Measures the input pipeline's throughput on a built dataset.

    python -m vmr_jax.tools.throughput --data_dir=OUT [--name=synthetic]
        [--batch_kind=video|query] [--batch_size=32] [--batches=300]

Prints batches/s and examples/s of the training stream (after a warm-up batch) and of
one pass over the eval split.
"""

from __future__ import annotations

import time

from absl import app, flags, logging

from data_pipelines.input_pipeline import DataConfig, Pipeline

_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir.", required=True)
_NAME = flags.DEFINE_string("name", "synthetic", "Dataset name.")
_BUILDER_CONFIG = flags.DEFINE_string("builder_config", None, "Builder config.")
_BATCH_KIND = flags.DEFINE_enum("batch_kind", "video", ["video", "query"], "Batch kind.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Batch size.")
_BATCHES = flags.DEFINE_integer("batches", 300, "Training batches to time.")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 64, "Clips per video.")
_EVAL_SPLIT = flags.DEFINE_string("eval_split", "test", "Split for the eval pass.")


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  pipeline = Pipeline(DataConfig(name=_NAME.value, data_dir=_DATA_DIR.value,
                                 builder_config=_BUILDER_CONFIG.value,
                                 batch_kind=_BATCH_KIND.value, num_clips=_NUM_CLIPS.value))
  it = pipeline.train_iterator(_BATCH_SIZE.value, seed=0)
  next(it)
  start = time.perf_counter()
  for _ in range(_BATCHES.value):
    next(it)
  seconds = time.perf_counter() - start
  print(f"train ({_BATCH_KIND.value}-level, batch {_BATCH_SIZE.value}): "
        f"{_BATCHES.value / seconds:.1f} batches/s, "
        f"{_BATCHES.value * _BATCH_SIZE.value / seconds:.0f} examples/s")
  start = time.perf_counter()
  batches = sum(1 for _ in pipeline.eval_iterator(_EVAL_SPLIT.value, _BATCH_SIZE.value))
  seconds = time.perf_counter() - start
  print(f"eval pass over {_EVAL_SPLIT.value}: {batches} batches in {seconds:.2f} s "
        f"({batches / seconds:.1f} batches/s, including start-up)")


if __name__ == "__main__":
  app.run(main)
