"""How far apart evaluations are, given that a split's queries come in videos.

    python -m vmr_jax.tools.significance A/eval/test_predictions.jsonl \
        [B/eval/test_predictions.jsonl] [--metric=R@1,IoU=0.5]

A split's queries are not independent draws: those of one video share its features
(and, on the generated data of `data_pipelines.shaped_features`, its noise), so a model
that misreads a video misses many of its queries at once. The spread of a recall over
splits like this one is set by the number of videos (25 in TACoS's test split) more
than by the number of queries (4,001). So each figure here carries the
cluster-robust standard error of a ratio estimator, clustered by video: with v_q a
query's value (1 or 0 for a hit at R@n,IoU=m; the top-1 IoU for mIoU), s_i the sum of
v over video i's n_i queries, k videos and N = sum n_i queries,

    R = sum s_i / N,    SE(R)^2 = k / (k - 1) x sum_i (s_i - R n_i)^2 / N^2,

beside the sqrt(variance / N) that independent queries would give (binomial for a
recall). Given two prediction files of the same queries (two runs, two checkpoints),
it prints their difference A - B with the same standard error of the per-query
differences (paired: the two runs' misses on a hard video cancel). These errors
measure the noise of the test sample, not of training: two seeds of one config can
differ by more (docs/results.md, "JAX and its PyTorch twin"), so a claim about a
model needs both.

The files are `--mode=eval`'s `<split>_predictions.jsonl` (`vmr_jax.evaluate.write`:
one line per query with "video", "query_index", "gt" and the ranked "pred").
`--merge_duplicates` scores both files as `data.duplicate_sentences = "merge"` does
(`merge_duplicates`), so a run on merged queries (CMHN's released TACoS reading) pairs
with one on every annotation.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from absl import app, flags
import numpy as np

from vmr_jax import metrics

_METRIC = flags.DEFINE_string("metric", "R@1,IoU=0.5", "R@n,IoU=m or mIoU.")
_MERGE = flags.DEFINE_bool("merge_duplicates", False,
                           "Score a video's repeated sentences as one query (all windows).")


EXPECTED = ("a predictions jsonl (--mode=eval's <split>_predictions.jsonl: one JSON "
            "object a line with video, query_index, gt and pred)")


def read_records(path: str) -> dict[tuple[str, int], dict]:
  """A predictions jsonl -> its records keyed by (video, query_index); a file of other
  lines is a ValueError naming the first such line and what the file should be."""
  records = {}
  try:
    with open(path) as f:
      lines = f.readlines()
  except UnicodeDecodeError:
    raise ValueError(f"{path} is not a text file: expected {EXPECTED}") from None
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError:
      raise ValueError(f"{path}: line {number} is not JSON: expected {EXPECTED}") from None
    if not (isinstance(record, dict) and {"video", "query_index", "pred"} <= set(record)
            and ({"gt", "gt_windows"} & set(record))):
      keys = f"its keys are {', '.join(record)}" if isinstance(record, dict) else "not an object"
      raise ValueError(f"{path}: line {number} is not a prediction record ({keys}): "
                       f"expected {EXPECTED}")
    records[(record["video"], int(record["query_index"]))] = record
  if not records:
    raise ValueError(f"{path}: no prediction records: expected {EXPECTED}")
  return records


def merge_duplicates(records: Mapping[tuple[str, int], Mapping]
                     ) -> dict[tuple[str, int], dict]:
  """The records of one sentence in one video -> that of its first query (lowest
  query_index), with `gt_windows` every window of the group, distinct, in query
  order: the predictions of the first occurrence, scored on the best window.
  Already merged records are left as they are."""
  groups: dict[tuple[str, str], list] = {}
  for key in sorted(records):
    groups.setdefault((key[0], records[key]["sentence"]), []).append(records[key])
  merged = {}
  for group in groups.values():
    windows = [w for r in group for w in metrics.record_windows(r)]
    first = {**group[0], "gt_windows": metrics.distinct_windows(windows)}
    merged[(first["video"], first["query_index"])] = first
  return merged


def query_values(records: Sequence[Mapping], metric: str) -> np.ndarray:
  """`[Q]` each record's value of `metric` (`metrics.per_query`): R@n at IoU m from
  a record's `pred_at[m]` where it has one (`eval.nms_offset`, as
  `evaluate.metrics_of_records` scores it), everything else from `pred`."""
  recall = metrics.parse_recall(metric)
  key = None if recall is None else metrics.threshold_key(recall[1])
  preds = [r["pred_at"][key] if key and "pred_at" in r else r["pred"] for r in records]
  return metrics.per_query([np.asarray(p).reshape(-1, 3) for p in preds],
                           [metrics.record_windows(r) for r in records], metric)


def clustered_mean(values: np.ndarray, videos: Sequence[str]) -> tuple[float, float]:
  """The mean of `values [Q]` and its standard error clustered by `videos [Q]`."""
  values = np.asarray(values, np.float64)
  _, cluster = np.unique(np.asarray(videos), return_inverse=True)
  k = cluster.max() + 1
  if k < 2:
    raise ValueError("a clustered standard error needs queries of at least 2 videos")
  sums = np.bincount(cluster, values, minlength=k)
  counts = np.bincount(cluster, minlength=k)
  mean = sums.sum() / counts.sum()
  return float(mean), float(np.sqrt(k / (k - 1) * np.sum((sums - mean * counts) ** 2))
                            / counts.sum())


def compare(a: Mapping[tuple[str, int], Mapping], b: Mapping[tuple[str, int], Mapping] | None,
            metric: str) -> dict[str, float]:
  """`metric` of records `a` (and `b`, which must hold the same queries) with its
  standard errors, and the paired difference a - b. Fractions, not percent."""
  keys = sorted(a)
  videos = [video for video, _ in keys]
  values_a = query_values([a[k] for k in keys], metric)
  out = dict(zip(("a", "a_se"), clustered_mean(values_a, videos)),
             queries=len(keys), videos=len(set(videos)))
  out["a_se_independent"] = float(np.std(values_a) / np.sqrt(len(keys)))
  if b is not None:
    if set(b) != set(a):
      raise ValueError(f"the two files hold different queries ({len(set(a) - set(b))} only "
                       f"in the first, {len(set(b) - set(a))} only in the second)")
    values_b = query_values([b[k] for k in keys], metric)
    out.update(zip(("b", "b_se"), clustered_mean(values_b, videos)))
    out.update(zip(("difference", "difference_se"), clustered_mean(values_a - values_b, videos)))
  return out


def report(result: Mapping[str, float], metric: str, names: Sequence[str]) -> str:
  """Lines of `compare`'s result in percent."""
  pct = lambda x: f"{100 * x:.2f}"
  lines = [f"{names[0]}: {metric} {pct(result['a'])} +- {pct(result['a_se'])} "
           f"({result['videos']} videos, {result['queries']} queries; "
           f"+- {pct(result['a_se_independent'])} if the queries were independent)"]
  if "b" in result:
    lines.append(f"{names[1]}: {metric} {pct(result['b'])} +- {pct(result['b_se'])}")
    lines.append(f"difference (first - second, paired by video): "
                 f"{100 * result['difference']:+.2f} +- {pct(result['difference_se'])}")
  return "\n".join(lines)


def main(argv):
  paths = argv[1:]
  if len(paths) not in (1, 2):
    raise app.UsageError("one or two predictions jsonl files")
  try:
    records = [read_records(p) for p in paths]
    if _MERGE.value:
      records = [merge_duplicates(r) for r in records]
    result = compare(records[0], records[1] if len(records) == 2 else None, _METRIC.value)
  except (OSError, ValueError) as e:
    raise app.UsageError(str(e)) from None
  print(report(result, _METRIC.value, paths))


if __name__ == "__main__":
  app.run(main)
