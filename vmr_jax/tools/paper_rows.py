"""The papers' own rows of their main results tables, as data (percent).

Each row is the implemented model's line of its paper's comparison table on one
dataset, transcribed from the plain-text copies in `../shared/papers/` (index:
`../shared/papers/README.md`), with the metrics under this project's names
(`vmr_jax.metrics.metric_name`: "R@1,IoU=0.5"; "mIoU"). `vmr_jax.tools.versus_paper`
prints a run's test metrics beside them.

Keys are "model/dataset" with the model's registry name and the dataset's
`config.data.name` (tacos, activitynet_captions, charades_sta); Charades-STA rows
add the features, "model/charades_sta/<features>" (`config.data.builder_config`:
vgg, c3d or i3d), since FVMR reports one row per feature type.

Transcription notes:
- CLEAR (000) Tables I and II: the text copy's header repeats the column labels
  (12 labels for 6 values and a p-value); the 6 values are read as R@1 at IoU
  0.7 / 0.5 / 0.3, then R@5 at IoU 0.7 / 0.5 / 0.3: the order of CMHN's Table III
  (001), whose header is clean and whose MCN ... ABLR rows are the same numbers,
  and the only order in which every row's values fall as IoU rises.
- HSCNet (003) Table 1 reports "R@IoU=m" for paragraph grounding: one span per
  sentence, so it is R@1,IoU=m here; mIoU as printed.
- Nothing in these rows was ambiguous beyond the CLEAR header; no value is skipped.
  CMHN's Table II (accuracy against code length L) is garbled in the text copy and
  is not a main-table row: not used (its L=128 TACoS line matches Table IV's CMHN).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class PaperRow:
  model: str  # the registry name (config.model)
  dataset: str  # config.data.name
  features: str | None  # Charades-STA's feature type; None elsewhere
  source: str  # paper file, table number and row label
  values: Mapping[str, float]  # metric name -> percent

  @property
  def key(self) -> str:
    parts = [self.model, self.dataset] + ([self.features] if self.features else [])
    return "/".join(parts)


def _row(model, dataset, source, values, features=None) -> PaperRow:
  return PaperRow(model, dataset, features, source, dict(values))


_ROWS = [
    # --- CLEAR: 000_7faeb18bb164af92.txt (Hu et al., IEEE TIP 2021) ---
    _row("clear", "activitynet_captions",
         '000_7faeb18bb164af92.txt, Table I (ActivityNet Captions), row "CLEAR"',
         {"R@1,IoU=0.7": 28.05, "R@1,IoU=0.5": 45.33, "R@1,IoU=0.3": 59.96,
          "R@5,IoU=0.7": 62.13, "R@5,IoU=0.5": 77.26, "R@5,IoU=0.3": 85.83}),
    _row("clear", "tacos",
         '000_7faeb18bb164af92.txt, Table II (TACoS), row "CLEAR"',
         {"R@1,IoU=0.7": 15.54, "R@1,IoU=0.5": 30.27, "R@1,IoU=0.3": 42.18,
          "R@5,IoU=0.7": 26.75, "R@5,IoU=0.5": 51.76, "R@5,IoU=0.3": 63.61}),
    # --- CMHN: 001_431336e088fcd6c8.txt (Hu et al., IEEE TIP 2021) ---
    _row("cmhn", "activitynet_captions",
         '001_431336e088fcd6c8.txt, Table III (ActivityNet Captions, val_2), row "CMHN"',
         {"R@1,IoU=0.7": 24.02, "R@1,IoU=0.5": 43.47, "R@1,IoU=0.3": 62.49,
          "R@5,IoU=0.7": 53.16, "R@5,IoU=0.5": 73.42, "R@5,IoU=0.3": 85.37}),
    _row("cmhn", "tacos",
         '001_431336e088fcd6c8.txt, Table IV (TACoS), row "CMHN"',
         {"R@1,IoU=0.7": 18.44, "R@1,IoU=0.5": 25.58, "R@1,IoU=0.3": 30.04,
          "R@5,IoU=0.7": 28.24, "R@5,IoU=0.5": 35.23, "R@5,IoU=0.3": 44.05}),
    # --- FVMR: 002_c4c595ef28d44908.txt (Gao and Xu, ICCV 2021) ---
    _row("fvmr", "tacos",
         '002_c4c595ef28d44908.txt, Table 2 (TACoS), row "FVMR"',
         {"R@1,IoU=0.1": 53.12, "R@1,IoU=0.3": 41.48, "R@1,IoU=0.5": 29.12,
          "R@5,IoU=0.1": 78.12, "R@5,IoU=0.3": 64.53, "R@5,IoU=0.5": 50.00}),
    _row("fvmr", "activitynet_captions",
         '002_c4c595ef28d44908.txt, Table 3 (ANetCap), row "FVMR"',
         {"R@1,IoU=0.3": 60.63, "R@1,IoU=0.5": 45.00, "R@1,IoU=0.7": 26.85,
          "R@5,IoU=0.3": 86.11, "R@5,IoU=0.5": 77.42, "R@5,IoU=0.7": 61.04}),
    _row("fvmr", "charades_sta",
         '002_c4c595ef28d44908.txt, Table 4 (Charades-STA), row "FVMR", features "VGG"',
         {"R@1,IoU=0.5": 42.36, "R@1,IoU=0.7": 24.14,
          "R@5,IoU=0.5": 83.97, "R@5,IoU=0.7": 50.15}, features="vgg"),
    _row("fvmr", "charades_sta",
         '002_c4c595ef28d44908.txt, Table 4 (Charades-STA), row "FVMR", features "C3D"',
         {"R@1,IoU=0.5": 38.16, "R@1,IoU=0.7": 18.22,
          "R@5,IoU=0.5": 82.18, "R@5,IoU=0.7": 44.96}, features="c3d"),
    _row("fvmr", "charades_sta",
         '002_c4c595ef28d44908.txt, Table 4 (Charades-STA), row "FVMR", features "I3D"',
         {"R@1,IoU=0.5": 55.01, "R@1,IoU=0.7": 33.74,
          "R@5,IoU=0.5": 89.17, "R@5,IoU=0.7": 57.24}, features="i3d"),
    # --- HSCNet: 003_073b681e96528ae2.txt (Tan et al., CVPR 2023); paragraph
    # grounding, "R@IoU=m" of the one span per sentence = R@1,IoU=m ---
    _row("hscnet", "activitynet_captions",
         '003_073b681e96528ae2.txt, Table 1 (ActivityNet-Captions columns), row "HSCNet"',
         {"R@1,IoU=0.3": 81.89, "R@1,IoU=0.5": 66.57, "R@1,IoU=0.7": 44.03,
          "mIoU": 59.71}),
    _row("hscnet", "tacos",
         '003_073b681e96528ae2.txt, Table 1 (TACoS columns), row "HSCNet"',
         {"R@1,IoU=0.1": 76.28, "R@1,IoU=0.3": 59.74, "R@1,IoU=0.5": 42.00,
          "mIoU": 40.61}),
    # --- FIAN: 004_1a1e9dd93f974437.txt (Qu et al., ACM MM 2020) ---
    _row("fian", "activitynet_captions",
         '004_1a1e9dd93f974437.txt, Table 1 (ActivityNet Captions), row "FIAN"',
         {"R@1,IoU=0.3": 64.10, "R@1,IoU=0.5": 47.90, "R@1,IoU=0.7": 29.81,
          "R@5,IoU=0.3": 87.59, "R@5,IoU=0.5": 77.64, "R@5,IoU=0.7": 59.66}),
    _row("fian", "tacos",
         '004_1a1e9dd93f974437.txt, Table 2 (TACoS), row "FIAN"',
         {"R@1,IoU=0.1": 39.55, "R@1,IoU=0.3": 33.87, "R@1,IoU=0.5": 28.58,
          "R@5,IoU=0.1": 56.14, "R@5,IoU=0.3": 47.76, "R@5,IoU=0.5": 39.16}),
    _row("fian", "charades_sta",
         '004_1a1e9dd93f974437.txt, Table 3 (Charades-STA, I3D features: Sec. 4.3), '
         'row "FIAN"',
         {"R@1,IoU=0.5": 58.55, "R@1,IoU=0.7": 37.72,
          "R@5,IoU=0.5": 87.80, "R@5,IoU=0.7": 63.52}, features="i3d"),
]

ROWS: dict[str, PaperRow] = {row.key: row for row in _ROWS}

# Short dataset names `--paper` also accepts.
DATASET_ALIASES = {"activitynet": "activitynet_captions", "anet": "activitynet_captions",
                   "charades": "charades_sta"}

# `data_pipelines/builders/charades_sta.py`'s DEFAULT_BUILDER_CONFIG_NAME: the
# features of a Charades-STA run whose config names none.
CHARADES_DEFAULT_FEATURES = "i3d"


def key_of(model: str, dataset: str, features: str | None = None) -> str:
  """The `ROWS` key of a run: features count on Charades-STA only."""
  dataset = DATASET_ALIASES.get(dataset, dataset)
  if dataset == "charades_sta":
    return f"{model}/{dataset}/{features or CHARADES_DEFAULT_FEATURES}"
  return f"{model}/{dataset}"


def lookup(key: str) -> PaperRow:
  """The row of "model/dataset[/features]" (dataset aliases allowed); a ValueError
  with a one-line message listing the rows otherwise."""
  parts = key.strip().lower().split("/")
  if len(parts) >= 2:
    parts[1] = DATASET_ALIASES.get(parts[1], parts[1])
  normalized = "/".join(parts)
  if normalized in ROWS:
    return ROWS[normalized]
  raise ValueError(f"no paper row for {key}; available: {', '.join(sorted(ROWS))}")
