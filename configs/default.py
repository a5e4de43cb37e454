"""Defaults every model config starts from; see each field's comment."""

import dataclasses
import os
from typing import Any, Mapping, Sequence

import ml_collections

from data_pipelines.data_config import DataConfig
from vmr_jax.text import encoders


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = ""  # a name in vmr_jax.registry
  config.seed = 0

  # The input pipeline (data_pipelines.input_pipeline.DataConfig): dataset name,
  # TFDS data dir ("" = ~/tensorflow_datasets), clips, queries per example, ...
  config.data = ml_collections.ConfigDict(dataclasses.asdict(DataConfig()))
  config.data.builder_config = ml_collections.FieldReference(None, field_type=str)

  config.text = encoders.default_config()

  config.train = ml_collections.ConfigDict({
      "batch_size": 32,  # global, over all devices
      "num_steps": 1000,
      "optimizer": "adam",  # adam | adamw | sgd
      "learning_rate": 1e-4,
      "schedule": "constant",  # constant | cosine | warmup_cosine | multistep
      "warmup_steps": 0,
      "decay_steps": (),  # multistep: the learning rate times decay_factor at each
      "decay_factor": 0.1,
      "weight_decay": 0.0,
      "grad_clip_norm": 0.0,  # 0: no clipping
      # Activations' dtype: float32 | bfloat16 (vmr_jax.precision); params, optimizer
      # state and losses are float32 either way.
      "compute_dtype": "float32",
      "log_every": 50,
      "eval_every": 500,  # also saves the best checkpoint by eval.best_metric
      "checkpoint_every": 500,
      "keep_checkpoints": 2,
  })

  config.eval = ml_collections.ConfigDict({
      "batch_size": 32,
      "val_split": "val",  # evaluated during training, picks the best checkpoint
      "test_split": "test",  # evaluated with the best checkpoint at the end
      # The protocol (vmr_jax.evaluate): 2D-TAN's, every candidate ranked, greedy
      # NMS down the ranking keeping max(recall_at), R@n,IoU=m and mIoU.
      "top_k": 0,  # moments per query kept on device before NMS; 0 = every candidate
      "tie_order": "index",  # equal scores: index (lower candidate first) | 2dtan
      "nms_threshold": 0.5,  # suppressed when IoU > this
      # >= 0: CMHN's released protocol, R@n at IoU m after NMS at m - nms_offset
      # (0.05); negative = off (NMS at nms_threshold for every m).
      "nms_offset": -1.0,
      "recall_at": (1, 5),
      "iou_thresholds": (),  # () = the dataset's (from its build metadata)
      "best_metric": "R@1,IoU=0.5",
      # Also Moment-DETR's standalone_eval metrics (MR-full-mAP, MR-full-R1@0.5, ...;
      # vmr_jax.metrics.moment_detr_metrics), from the top 10 moments; always on for
      # the jsonl builder's datasets.
      "moment_detr_metrics": False,
  })
  return config


def use_synthetic(config: ml_collections.ConfigDict) -> None:
  """Points `config` at the synthetic benchmark built in ~/tensorflow_datasets and its
  GloVe-format word vectors (`--config.data.data_dir=DIR` moves both), with the demos'
  32 clips and schedule: 1,500 steps of 16 videos at lr 1e-3, a validation every 500,
  a checkpoint every 250, R@n at IoU 0.1 to 0.7."""
  data_dir = ml_collections.FieldReference(os.path.expanduser("~/tensorflow_datasets"))
  config.data.name = "synthetic"
  config.data.data_dir = data_dir
  config.data.num_clips = 32
  config.text.encoder = "glove"
  config.text.glove_file = (
      data_dir + "/downloads/synthetic_release/default/glove.synthetic.50d.txt")
  config.train.batch_size = 16
  config.train.num_steps = 1500
  config.train.learning_rate = 1e-3
  config.train.eval_every = 500
  config.train.checkpoint_every = 250
  config.eval.iou_thresholds = (0.1, 0.3, 0.5, 0.7)


SIZES = ("tiny", "small")


def parse_arg(arg: str, readings: Sequence[str] = ()) -> tuple[str, str]:
  """A demo config's `get_config` argument -> (size, reading).

  `arg` is "", "READING", "SIZE" or "SIZE,READING" (`--config=configs/clear_synthetic.py:
  tiny,paper`): SIZE one of `SIZES` ("" = the demo's own sizes), READING one of the
  model's `readings` (default: the first; "" for a model with one).
  """
  size, reading = "", readings[0] if readings else ""
  for token in filter(None, arg.split(",")):
    if token in SIZES:
      size = token
    elif token in readings:
      reading = token
    else:
      raise ValueError(f"config argument {token!r}: a size ({', '.join(SIZES)})"
                       + (f" or a reading ({', '.join(readings)})" if readings else ""))
  return size, reading


def shrink(config: ml_collections.ConfigDict, size: str, reading: str,
           sizes: Mapping[str, Mapping[str, Any]]) -> None:
  """Shrinks a synthetic demo config to `size`, then sets the model's own fields of that
  size: `sizes[size]`, then `sizes["SIZE/READING"]` (dotted paths -> values).

  - tiny: the `synthetic/tiny` build (`python -m data_pipelines.build synthetic
    --config=tiny`): 16 clips, a 12-step schedule; a CLI run takes seconds. The tests'
    trained models.
  - small: random word vectors (no files): the tests' models on random batches.
  """
  if size == "tiny":
    release = config.data.get_ref("data_dir") + "/downloads/synthetic_release/tiny/"
    config.data.builder_config = "tiny"
    config.data.num_clips = 16
    config.data.shuffle_buffer = 32
    config.text.glove_file = release + "glove.synthetic.8d.txt"
    if config.data.srl_file:
      config.data.srl_file = release + "srl.jsonl"
    config.train.update(batch_size=8, num_steps=12, log_every=4, eval_every=6,
                        checkpoint_every=3)
    config.eval.batch_size = 8
  elif size == "small":
    config.text.vectors, config.text.glove_dim = "random", 6
    config.train.batch_size = 4
    config.eval.top_k = 6
  elif size:
    raise ValueError(f"size {size!r}: one of {SIZES}")
  set_fields(config, {**sizes.get(size, {}), **sizes.get(f"{size}/{reading}", {})})


def set_fields(config: ml_collections.ConfigDict, fields: Mapping[str, Any]) -> None:
  """Sets `{"section.field": value}` in `config`."""
  for path, value in fields.items():
    section, field = path.split(".")
    config[section][field] = value


def use_qvhighlights(config: ml_collections.ConfigDict) -> None:
  """Points a model's ActivityNet config at QVHighlights (`data_pipelines/builders/
  qvhighlights.py`): 150-s videos of 75 two-second clips, SlowFast + CLIP features,
  one query a video with up to 25 windows (merged into one query: `gt_windows`), and
  Moment-DETR's metrics. Its test annotations are withheld, so the best checkpoint is
  scored on val, the split Moment-DETR's tables report."""
  config.data.name = "qvhighlights"
  config.data.builder_config = "slowfast_clip"
  config.data.duplicate_sentences = "merge"
  config.data.max_windows = 32
  config.eval.iou_thresholds = (0.5, 0.7)  # Moment-DETR's R1@0.5, R1@0.7
  config.eval.moment_detr_metrics = True
  config.eval.test_split = "val"
