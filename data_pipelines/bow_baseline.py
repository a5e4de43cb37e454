"""A simple baseline to read the models' numbers against: a bag-of-words ridge
regression from clip features, fitted on the training split.

    python -m data_pipelines.bow_baseline --name=tacos_shaped --data_dir=DIR \
        [--num_clips=128] [--ridge=100] [--workdir=W]

1. Fit (training split): ridge regression W `[D, V]` from a clip's features to the
   words of the sentences whose spans cover it: target row t = sum over queries q of
   c_qt x bag-of-words(q) / |words(q)|, c_qt the fraction of clip t inside q's span.
2. Score (any split): a query's clip relevance r_t = mean over its words w of
   (x_t W)_w, standardized within the video (z_t); the span (i, j) of the clip grid
   scores sum_{t=i..j} (z_t - c), the most relevant stretch of clips. The offset c is
   the one of `OFFSETS` with the best training R@1,IoU=0.5.
Prints R@1 and R@5 (after NMS 0.5) at the dataset's IoU thresholds and mIoU, with the
models' evaluation code (`vmr_jax.evaluate`), which with `--workdir` also writes the
val and test predictions as theirs (`vmr_jax.significance` compares them).
"""

from __future__ import annotations

from absl import app, flags, logging
import numpy as np

from data_pipelines.data_config import DataConfig
from data_pipelines.input_pipeline import Pipeline
from vmr_jax import evaluate, metrics
from vmr_jax.layers.moment_map import dense_spans

OFFSETS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)

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


def bags(tokens: np.ndarray, mask: np.ndarray, vocab_size: int) -> np.ndarray:
  """`[Q, L]` word ids -> `[Q, V]` bags of words, each row summing to 1."""
  out = np.zeros((len(tokens), vocab_size), np.float32)
  for q, (ids, m) in enumerate(zip(tokens, mask)):
    np.add.at(out[q], ids[m], 1.0)
  return out / np.maximum(out.sum(1, keepdims=True), 1.0)


def clip_coverage(gt: np.ndarray, duration: float, clips: int) -> np.ndarray:
  """`[Q, 2]` seconds -> `[Q, clips]` fraction of each clip inside each span."""
  edges = np.linspace(0.0, duration, clips + 1)
  inter = np.minimum(gt[:, 1:], edges[None, 1:]) - np.maximum(gt[:, :1], edges[None, :-1])
  return np.clip(inter, 0.0, None) / (duration / clips)


def fit(batches, vocab_size: int, ridge: float) -> np.ndarray:
  """The ridge regression `[D, V]` of clip word targets on clip features."""
  x = np.concatenate([b["video_feats"][0] for b in batches]).astype(np.float64)
  y = []
  for b in batches:
    valid = b["query_valid"][0]
    y.append(clip_coverage(b["gt_times"][0][valid], float(b["duration"][0]),
                           b["video_feats"].shape[1]).T
             @ bags(b["query_tokens"][0][valid], b["query_mask"][0][valid], vocab_size))
  y = np.concatenate(y).astype(np.float64)
  return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)


def rank(batches, w: np.ndarray, offset: float, top_n: int) -> list[dict]:
  """Prediction records (`vmr_jax.evaluate.prediction_records`: the top 50 spans by
  score, then NMS 0.5, `top_n` kept) of every query of `batches`."""
  records = []
  for batch in batches:
    feats = batch["video_feats"][0]
    clips, duration = len(feats), float(batch["duration"][0])
    spans = dense_spans(clips)
    times = np.stack([spans[:, 0], spans[:, 1] + 1], 1) * duration / clips
    relevance = feats @ w  # [T, V]
    ranked = np.full(batch["query_valid"].shape + (50, 3), -np.inf)  # [1, Q, 50, 3]
    for q in np.flatnonzero(batch["query_valid"][0]):
      r = relevance[:, batch["query_tokens"][0, q][batch["query_mask"][0, q]]].mean(1)
      z = (r - r.mean()) / max(r.std(), 1e-9) - offset
      cumulative = np.concatenate([[0.0], np.cumsum(z)])
      score = cumulative[spans[:, 1] + 1] - cumulative[spans[:, 0]]
      best = np.argsort(-score, kind="stable")[:50]
      ranked[0, q] = np.concatenate([times[best], score[best, None]], 1)
    records += evaluate.prediction_records(batch, ranked, 0.5, top_n)
  return records


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  pipeline = Pipeline(DataConfig(name=_NAME.value, data_dir=_DATA_DIR.value,
                                 builder_config=_BUILDER_CONFIG.value,
                                 num_clips=_NUM_CLIPS.value, max_queries=512))
  train = read_split(pipeline, "train")
  w = fit(train, len(pipeline.vocab), _RIDGE.value)
  thresholds = tuple(pipeline.metadata["iou_thresholds"])
  scores = {c: evaluate.metrics_of_records(rank(train, w, c, 1), (1,), (0.5,))["R@1,IoU=0.5"]
            for c in OFFSETS}
  offset = max(OFFSETS, key=lambda c: scores[c])
  print(f"offset c = {offset} (train R@1,IoU=0.5 by c: "
        + ", ".join(f"{c}: {100 * s:.2f}" for c, s in scores.items()) + ")")
  for split in ("val", "test"):
    records = rank(read_split(pipeline, split), w, offset, 5)
    result = evaluate.metrics_of_records(records, (1, 5), thresholds)
    print(f"{split} ({result['num_queries']} queries): {metrics.summarize(result)}")
    if _WORKDIR.value:
      evaluate.write(_WORKDIR.value, split, result, records)


if __name__ == "__main__":
  app.run(main)
