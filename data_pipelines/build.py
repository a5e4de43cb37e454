"""Builds a dataset from its release files.

    python -m data_pipelines.build DATASET --manual_dir=DIR --data_dir=OUT [--config=NAME]
    python -m data_pipelines.build jsonl --annotations=FILE,... --features=DIR_or_FILE,...
        --data_dir=OUT [--splits=NAME,...] [--clip_seconds=2] [--nol2_normalize]

DATASET is one of tacos, activitynet_captions, charades_sta (config vgg|c3d|i3d,
default i3d), synthetic (config default|tiny), tacos_shaped (config default|tiny:
`--manual_dir` holds the real TACoS annotation files, the features are generated;
see data_pipelines/shaped_features.py), qvhighlights (config slowfast_clip|slowfast|
clip: its release files, data_pipelines/builders/qvhighlights.py), qvhighlights_shaped
(config default|tiny: QVHighlights' real annotation files, generated features) or
jsonl: any dataset in Moment-DETR's JSON
lines with one feature file per video (no `--manual_dir`; the flags are described
in data_pipelines/builders/jsonl.py). For synthetic, `--manual_dir` is
where the generated release-format files are written (default:
`OUT/downloads/synthetic_release/<config>`); build `tacos` or
`activitynet_captions` from its `tacos/` or `activitynet_captions/` folder to run
the real builders on it.

Prints TFDS's progress bars, then a summary: videos and queries per split, skipped
and clipped records by reason, the chance level of each metric, and the path of
`build_report.json`, which lists every skipped or clipped record.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Mapping

from absl import app, flags, logging
import tensorflow_datasets as tfds

from data_pipelines import annotations
from data_pipelines.builders import BUILDERS
from data_pipelines.builders.base import REPORT_FILE

_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Folder with the release files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where TFDS writes the dataset.",
                                required=True)
_CONFIG = flags.DEFINE_string("config", None, "Builder config (see module docstring).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild if the dataset exists.")
_ANNOTATIONS = flags.DEFINE_list(
    "annotations", [], "jsonl: the JSON-lines annotation files, one per split.")
_FEATURES = flags.DEFINE_list(
    "features", [], "jsonl: folders of <vid>.npz or HDF5 files, concatenated in order.")
_SPLITS = flags.DEFINE_list(
    "splits", [], "jsonl: a split name per annotation file (default: from the names).")
_CLIP_SECONDS = flags.DEFINE_float("clip_seconds", 2.0, "jsonl: seconds per feature clip.")
_L2_NORMALIZE = flags.DEFINE_bool(
    "l2_normalize", True, "jsonl: L2-normalize each feature source's clips.")


def build(dataset: str, data_dir: str, manual_dir: str | None = None,
          config: str | None = None, overwrite: bool = False,
          jsonl: Mapping[str, Any] | None = None):
  """Builds one dataset; returns its TFDS builder (already prepared).

  `jsonl`: the `jsonl` builder's source arguments (`annotations`, `features`, and
  optionally `splits`, `clip_seconds`, `l2_normalize`; paths may start with ~).
  """
  if dataset not in BUILDERS:
    raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(BUILDERS)}")
  data_dir = os.path.expanduser(data_dir)
  manual_dir = os.path.expanduser(manual_dir) if manual_dir else manual_dir
  kwargs = {"data_dir": data_dir, "config": config}
  download_config = tfds.download.DownloadConfig(
      download_mode=(tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
                     else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  if dataset == "jsonl" and not jsonl:
    raise ValueError("jsonl needs --annotations=FILE,... and --features=DIR_or_FILE,...")
  if dataset != "jsonl" and jsonl:
    raise ValueError(f"--annotations and --features are for the jsonl dataset; {dataset} "
                     "reads --manual_dir")
  if dataset == "jsonl":
    kwargs.update(jsonl, **{k: [os.path.expanduser(p) for p in jsonl[k]]
                            for k in ("annotations", "features")})
    for flag in ("annotations", "features"):
      for path in kwargs[flag]:
        if not os.path.exists(path):
          raise FileNotFoundError(f"--{flag} {path}: no such file or folder")
  elif dataset == "synthetic":
    kwargs["release_dir"] = manual_dir
  else:
    if not manual_dir:
      raise ValueError(f"{dataset} needs --manual_dir, the folder of its release files")
    if not os.path.isdir(manual_dir):
      raise FileNotFoundError(f"--manual_dir {manual_dir} is not a folder")
    download_config.manual_dir = manual_dir
  builder = BUILDERS[dataset](**kwargs)
  builder.download_and_prepare(download_config=download_config)
  return builder


def summary(builder) -> str:
  """Human-readable closing summary of a prepared builder."""
  with open(os.path.join(builder.data_dir, REPORT_FILE)) as f:
    report = json.load(f)
  meta = builder.info.metadata
  lines = [f"{builder.info.full_name} in {builder.data_dir}",
           f"  feature dim {meta['feature_dim']}"]
  lines += [f"  {split}: {c['videos']} videos, {c['queries']} queries"
            for split, c in report["kept"].items()]
  for action in ("skipped", "clipped"):
    total = sum(report[action].values())
    lines.append(f"  {action}: {total} records" + ("" if total else " (none)"))
    lines += [f"    {n:6d}  {reason}" for reason, n in sorted(report[action].items())]
  chance = meta["chance"]
  for split, values in chance["by_split"].items():
    lines.append(f"  chance on {split} (a uniformly random moment of a "
                 f"{chance['num_clips']}-clip grid): "
                 + " | ".join(f"{k} {100 * v:.2f}" for k, v in values.items()))
  lines.append(f"  every skipped/clipped record: {os.path.join(builder.data_dir, REPORT_FILE)}")
  return "\n".join(lines)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError(f"usage: python -m data_pipelines.build DATASET --data_dir=OUT "
                         f"[--manual_dir=DIR] [--config=NAME]; DATASET in {', '.join(BUILDERS)}"
                         " (jsonl: --annotations=FILE,... --features=DIR_or_FILE,...)")
  logging.set_verbosity(logging.ERROR)  # TFDS's info/deprecation lines; bars stay
  start = time.time()
  jsonl = None
  if _ANNOTATIONS.value or _FEATURES.value:
    jsonl = {"annotations": _ANNOTATIONS.value, "features": _FEATURES.value,
             "splits": _SPLITS.value or None, "clip_seconds": _CLIP_SECONDS.value,
             "l2_normalize": _L2_NORMALIZE.value}
  try:
    builder = build(argv[1], _DATA_DIR.value, _MANUAL_DIR.value, _CONFIG.value,
                    _OVERWRITE.value, jsonl)
  except (annotations.FormatError, FileNotFoundError, FileExistsError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(summary(builder))
  print(f"  built in {time.time() - start:.1f} s")


if __name__ == "__main__":
  app.run(main)
