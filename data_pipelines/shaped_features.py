"""TACoS- and QVHighlights-shaped data: the real annotations with generated clip
features whose annotated spans carry a signal derived from their sentences' words.

The closest thing to the papers' data these machines can hold: the real sentences,
video lengths, query density and span distribution of the public release (2D-TAN's
`train.json`, `val.json`, `test.json`), and C3D-sized features made here, since the
real ones (several GB) cannot be downloaded. `write_release` copies the three
annotation files and writes `tall_c3d_features.hdf5` beside them, so the `tacos`
builder reads the result like the real release.

The signal, fixed and simple (not tuned to any model):
- each word w (`split_words`) has a fixed random unit vector e_w in R^D, drawn from
  a generator seeded by the word itself (so it does not depend on the vocabulary);
- a sentence's vector s_q is the unit-normalized sum of e_w over its distinct words;
- a video of duration T gets `clips` feature rows; row t covers [t T / clips,
  (t + 1) T / clips) and holds N(0, noise^2) noise plus amplitude x sum_q c_qt s_q,
  where c_qt in [0, 1] is the fraction of the row's interval inside query q's span.
A projection onto a sentence's direction sees noise of std `noise` per row and a
signal of `amplitude` per row inside its span: words must be read and composed to
find the span, and the many overlapping TACoS annotations mix their signals as real
scenes share objects and actions.

QVHighlights-shaped data (`write_qvhighlights_release`, read by the `qvhighlights`
builder like the real release): the same signal on the release's grid, rows of 2 s
(a 150-s video has 75), in two feature types (SlowFast- and CLIP-like, each with word
vectors of its own), every window of a query carrying its sentence, plus the
sentences of a few other queries of the split at their own windows
(`QvhighlightsShapedSpec.distractors`): one query a video would otherwise be found
without reading it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil

import h5py
import numpy as np

from data_pipelines.words import split_words

SPLITS = ("train", "val", "test")
FEATURES_FILE = "tall_c3d_features.hdf5"


@dataclasses.dataclass(frozen=True)
class TacosShapedSpec:
  """Everything the features depend on; the same spec and annotations give the same
  bytes."""
  seed: int = 0
  clips: int = 128  # feature rows per video
  feature_dim: int = 4096  # C3D's
  # Set once, before any model ran on the data, so that the bag-of-words baseline
  # (`vmr_jax.tools.bow_baseline`) is well above chance (docs/results.md, TACoS-shaped
  # data).
  amplitude: float = 2.0
  noise: float = 1.0


@functools.lru_cache(maxsize=None)
def word_vector(word: str, dim: int, seed: int) -> np.ndarray:
  """The fixed unit vector e_w `[dim]` of `word` (read-only)."""
  digest = hashlib.sha256(f"{seed}:{word}".encode()).digest()
  v = np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(size=dim)
  v /= np.linalg.norm(v)
  v.flags.writeable = False
  return v


def sentence_vector(sentence: str, dim: int, seed: int) -> np.ndarray:
  """s_q `[dim]`: the unit-normalized sum of the word vectors of its distinct words."""
  words = sorted(set(split_words(sentence)))
  v = np.sum([word_vector(w, dim, seed) for w in words], axis=0)
  return v / np.linalg.norm(v)


def coverage(spans_seconds: np.ndarray, duration: float, clips: int) -> np.ndarray:
  """`[Q, 2]` spans in seconds -> `[Q, clips]` fraction of each row inside each span."""
  return _coverage(spans_seconds, np.linspace(0.0, duration, clips + 1))


def _coverage(spans_seconds: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """`[Q, 2]` spans, `[R + 1]` equally spaced row edges -> `[Q, R]` coverage."""
  start = np.maximum(spans_seconds[:, :1], edges[None, :-1])
  end = np.minimum(spans_seconds[:, 1:], edges[None, 1:])
  return np.clip(end - start, 0.0, None) / (edges[1] - edges[0])


def video_features(entry: dict, spec: TacosShapedSpec, rng: np.random.Generator
                   ) -> np.ndarray:
  """`[clips, feature_dim]` float32 features of one TACoS annotation entry."""
  fps = float(entry["fps"])
  duration = float(entry["num_frames"]) / fps
  spans = np.asarray(entry["timestamps"], np.float64).reshape(-1, 2) / fps
  spans = np.sort(np.clip(spans, 0.0, duration), axis=1)
  signals = np.stack([sentence_vector(s, spec.feature_dim, spec.seed)
                      for s in entry["sentences"]])
  feats = spec.noise * rng.normal(size=(spec.clips, spec.feature_dim))
  feats += spec.amplitude * coverage(spans, duration, spec.clips).T @ signals
  return feats.astype(np.float32)


def write_release(annotation_dir: str, out_dir: str, spec: TacosShapedSpec) -> dict[str, int]:
  """Copies `{train,val,test}.json` from `annotation_dir` into `out_dir` and writes
  the generated `tall_c3d_features.hdf5`; returns the number of videos per split."""
  os.makedirs(out_dir, exist_ok=True)
  counts = {}
  with h5py.File(os.path.join(out_dir, FEATURES_FILE), "w") as f:
    for index, split in enumerate(SPLITS):
      source = os.path.join(annotation_dir, f"{split}.json")
      if not os.path.isfile(source):
        raise FileNotFoundError(f"{annotation_dir}: no {split}.json (the TACoS release's "
                                "annotation files, 2D-TAN's data/TACoS)")
      shutil.copyfile(source, os.path.join(out_dir, f"{split}.json"))
      with open(source) as src:
        entries = json.load(src)
      rng = np.random.default_rng([spec.seed, index])
      for vid in sorted(entries):
        f[vid] = video_features(entries[vid], spec, rng)
      counts[split] = len(entries)
  return counts


def row_coverage(windows_seconds: np.ndarray, rows: int, row_seconds: float) -> np.ndarray:
  """`[W, 2]` windows in seconds -> `[W, rows]` fraction of each fixed-length row
  (row t covers [t c, (t + 1) c), c = `row_seconds`) inside each window."""
  return _coverage(windows_seconds, np.arange(rows + 1) * row_seconds)


@dataclasses.dataclass(frozen=True)
class QvhighlightsShapedSpec:
  """QVHighlights-shaped features (`write_qvhighlights_release`); the same spec and
  annotations give the same bytes."""
  seed: int = 0
  row_seconds: float = 2.0  # the release's clip length
  # The two feature types of the release (SlowFast 2304-d, CLIP 512-d), narrower:
  # each has word vectors of its own.
  dims: tuple[int, ...] = (128, 64)
  # Set once, before any model ran on the data, so that the bag-of-words baseline
  # is well above chance (docs/results.md, QVHighlights-shaped data).
  amplitude: float = 1.0
  noise: float = 1.0
  # Other queries' sentences laid over each video at their own windows: a video of
  # QVHighlights has one query, so without them "where is there any signal" would
  # find it without reading the sentence.
  distractors: int = 2


def qvhighlights_features(lines: list[dict], others: list[dict],
                          spec: QvhighlightsShapedSpec, rng: np.random.Generator
                          ) -> list[np.ndarray]:
  """One video's features, a `[rows, dims[i]]` float32 array per feature type.

  `lines`: the video's JSON lines (`duration`, `query`, `relevant_windows`);
  `others`: the split's lines, from which `spec.distractors` are drawn. Rows:
  ceil(duration / row_seconds); each holds N(0, noise^2) plus amplitude x the sum of
  the sentence vectors s_q of the video's queries and distractors, each weighted by
  the row's coverage by that sentence's windows (clipped to the video).
  """
  duration = float(lines[0]["duration"])
  rows = int(np.ceil(duration / spec.row_seconds - 1e-6))
  placed = list(lines) + [others[i] for i in rng.choice(len(others), spec.distractors)]
  weights = np.stack([
      row_coverage(np.clip(np.asarray(line["relevant_windows"], np.float64).reshape(-1, 2),
                           0.0, duration), rows, spec.row_seconds).sum(0)
      for line in placed])  # [S, rows]
  out = []
  for source, dim in enumerate(spec.dims):
    signals = np.stack([sentence_vector(line["query"], dim, spec.seed + source)
                        for line in placed])
    feats = spec.noise * rng.normal(size=(rows, dim)) + spec.amplitude * weights.T @ signals
    out.append(feats.astype(np.float32))
  return out


QVHIGHLIGHTS_FEATURE_DIRS = ("slowfast_features", "clip_features")


def write_qvhighlights_release(annotation_dir: str, out_dir: str,
                               spec: QvhighlightsShapedSpec) -> dict[str, int]:
  """Copies QVHighlights' `highlight_{train,val}_release.jsonl` from `annotation_dir`
  into `out_dir` and writes generated `slowfast_features/` and `clip_features/`
  (`<vid>.npz`, key `features`) beside them, the release's layout; returns the number
  of videos per split."""
  counts = {}
  for index, split in enumerate(("train", "val")):
    name = f"highlight_{split}_release.jsonl"
    source = os.path.join(annotation_dir, name)
    if not os.path.isfile(source):
      raise FileNotFoundError(f"{annotation_dir}: no {name} (QVHighlights' annotation "
                              "files, Moment-DETR's data/)")
    os.makedirs(out_dir, exist_ok=True)
    shutil.copyfile(source, os.path.join(out_dir, name))
    with open(source) as f:
      lines = [json.loads(line) for line in f if line.strip()]
    by_video: dict[str, list[dict]] = {}
    for line in lines:
      by_video.setdefault(line["vid"], []).append(line)
    rng = np.random.default_rng([spec.seed, index])
    for vid in sorted(by_video):
      for folder, feats in zip(QVHIGHLIGHTS_FEATURE_DIRS,
                               qvhighlights_features(by_video[vid], lines, spec, rng)):
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
        np.savez(os.path.join(out_dir, folder, f"{vid}.npz"), features=feats)
    counts[split] = len(by_video)
  return counts
