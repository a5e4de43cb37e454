"""Sharded evaluation: ranked moments on device, NMS and metrics on the host.

Each process reads its share of the split (`Pipeline.eval_iterator`), every process
runs the same number of batches (the last ones padded and masked), and the model's
`decode` runs jit-compiled over the `data`-sharded mesh. A model's `eval_stats`
(`registry.ModelSpec`) are averaged over the valid queries and reported with the
metrics.
With several processes each sends its records to all (`distributed.gather_json`), so
every process computes the metrics from every query, each counted exactly once, and
process 0 writes the files: the same metrics and files on any number of devices or
processes.

The protocol is the field's (2D-TAN's `lib/core/eval.py` and
`moment_localization/train.py:get_proposal_results`):
- every candidate of a query is ranked by score (`eval.top_k = 0`; a positive top_k
  keeps only that many on device, which can leave fewer than max(`recall_at`)
  moments after NMS); rows with a non-finite score are no moments;
- `eval.tie_order`: "index" ranks equal scores by candidate index (`jax.lax.top_k`);
  "2dtan" reorders them as 2D-TAN's argsort of its raveled `[T, T]` map does
  (`metrics.map_order`, T = the map's clips: `map_clips`);
- greedy NMS down the whole ranking (`metrics.nms`: suppressed when IoU >
  `eval.nms_threshold`), keeping up to max(`recall_at`) moments;
- R@n,IoU=m (a hit at IoU >= m) and mIoU of the top-1 (`metrics.grounding_metrics`).
With `eval.nms_offset` >= 0 (CMHN's released `utils/tools.py` `Evaluate.start`:
0.05), R@n at each IoU threshold m uses its own NMS at threshold m - nms_offset
(the records' `pred_at`), mIoU the top-1; `pred` keeps the fixed-threshold NMS.

With `eval.moment_detr_metrics`, or on a dataset whose build metadata asks for them
(the `jsonl` builder's), also Moment-DETR's standalone_eval metrics
(`metrics.moment_detr_metrics`: MR-full-mAP over IoU 0.5:0.95, MR-full-R1@0.5/0.7,
...) from each query's `pred`, which then keeps up to max(max(`recall_at`),
`metrics.MAP_TOP_K` = 10) moments, the ten that standalone_eval reads.

With a `workdir`, writes `workdir/eval/<split>_metrics.json`,
`workdir/eval/<split>_predictions.jsonl` (one line per query: video, query_index,
sentence, duration, gt [s, e], pred [[s, e, score], ...], times in seconds, with
`data.duplicate_sentences = "merge"` gt_windows [[s, e], ...] (a hit on any), with
`eval.nms_offset` pred_at {"m": [[s, e, score], ...]}, and on a `jsonl` dataset the
release's qid), sorted by video and query index, and the same predictions in the
field's form (Moment-DETR's standalone_eval, Lighthouse) as
`workdir/eval/<split>_submission.jsonl` (`field_record`).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

import jax
from jax.experimental import multihost_utils
import numpy as np
from tqdm import tqdm

from data_pipelines.data_config import PER_QUERY_KEYS
from vmr_jax import distributed, metrics, precision, registry, sharding


class Evaluator:
  """Evaluates parameters of one model on any split of its pipeline."""

  def __init__(self, model: registry.Model, spec: registry.ModelSpec, config, pipeline,
               mesh):
    self.config, self.pipeline, self.mesh = config, pipeline, mesh
    self.thresholds = tuple(config.eval.iou_thresholds
                            or pipeline.metadata["iou_thresholds"])
    self.recall_at = tuple(config.eval.recall_at)
    self.batch_size = sharding.check_batch_size(config.eval.batch_size, mesh)
    self.protocol = protocol_options(config, self.thresholds)
    self.moment_detr = moment_detr_on(config, pipeline.metadata)
    self.top_n = moments_kept(self.recall_at, self.moment_detr)

    self.predict = jax.jit(make_predict_fn(model, spec, config),
                           in_shardings=(sharding.replicated(mesh), sharding.data_sharded(mesh)),
                           out_shardings=sharding.data_sharded(mesh))

  def run(self, variables, split: str, workdir: str | None = None) -> dict[str, float]:
    """Metrics of `split` (plus `num_queries`) for the model's `variables`
    (`TrainState.variables`); files too if `workdir` is given."""
    count = self.pipeline.count_examples(split)
    counts = multihost_utils.process_allgather(np.array(count))
    num_batches = int(math.ceil(int(np.max(counts)) / self.batch_size))
    rows = slice(jax.process_index() * self.batch_size,
                 (jax.process_index() + 1) * self.batch_size)
    records, stat_sums = [], {}
    batches = tqdm(self.pipeline.eval_iterator(split, self.batch_size, num_batches),
                   total=num_batches, desc=split, leave=False,
                   disable=jax.process_index() != 0)
    for batch in batches:
      ranked, stats = sharding.global_to_host(
          self.predict(variables, sharding.host_to_global(batch, self.mesh)))
      records += prediction_records(batch, np.asarray(ranked)[rows],
                                    self.config.eval.nms_threshold, self.top_n,
                                    **self.protocol)
      valid = query_validity(batch)
      for name, values in stats.items():
        values = np.asarray(values)[rows].reshape(valid.shape)
        stat_sums[name] = stat_sums.get(name, 0.0) + float(values[valid].sum())
    if jax.process_count() > 1:
      records = [r for part in distributed.gather_json(records) for r in part]
      parts = distributed.gather_json(stat_sums)
      stat_sums = {name: sum(part[name] for part in parts) for name in stat_sums}
    records.sort(key=lambda r: (r["video"], r["query_index"]))
    result = metrics_of_records(records, self.recall_at, self.thresholds,
                                moment_detr=self.moment_detr)
    result.update({name: total / max(len(records), 1) for name, total in stat_sums.items()})
    if workdir is not None and distributed.is_main():
      write(workdir, split, result, records)
    return result


def make_forward_fn(model: registry.Model, config):
  """`(variables, batch) -> outputs`: the eval forward pass in
  `config.train.compute_dtype` (`vmr_jax.precision`), outputs in float32."""
  dtype = precision.compute_dtype(config)

  def forward(variables, batch):
    return precision.to_float32(model.module.apply(
        precision.cast_variables(variables, dtype), precision.cast_batch(batch, dtype),
        train=False))
  return forward


def make_predict_fn(model: registry.Model, spec: registry.ModelSpec, config):
  """`(variables, batch) -> (ranked [B, (Q,) K, 3], {stat: [B, (Q)]})`: the eval
  forward pass (`make_forward_fn`), the model's decode and its `eval_stats` in
  float32 (pure, to be jit-compiled)."""
  forward = make_forward_fn(model, config)

  def predict(variables, batch):
    outputs = forward(variables, batch)
    stats = spec.eval_stats(outputs, batch, config) if spec.eval_stats else {}
    return spec.decode(outputs, batch, config), dict(stats)
  return predict


def query_validity(batch: Mapping[str, np.ndarray]) -> np.ndarray:
  """`[B, Q]` (video-level) or `[B, 1]` (query-level) real queries of a host batch."""
  if "query_valid" in batch:
    return batch["query_valid"] & batch["example_valid"][:, None]
  return batch["example_valid"][:, None]


TIE_ORDERS = ("index", "2dtan")


def map_clips(config) -> int:
  """The clips T of the model's 2D map (`metrics.map_order`): `data.num_clips`, or
  the model's own (`ModelSpec.map_clips`, e.g. a pooled frame layer's)."""
  spec = registry.for_config(config)
  return spec.map_clips(config) if spec.map_clips else config.data.num_clips


def protocol_options(config, thresholds: Sequence[float]) -> dict[str, Any]:
  """`prediction_records`' protocol keywords from `config.eval` (absent fields, as in
  older exported configs: "index" order, no NMS offset)."""
  return {"tie_order": config.eval.get("tie_order", "index"),
          "num_clips": map_clips(config),
          "nms_offset": config.eval.get("nms_offset", None),
          "thresholds": tuple(float(m) for m in thresholds)}


def moment_detr_on(config, metadata: Mapping[str, Any]) -> bool:
  """Whether evaluation adds Moment-DETR's metrics: `eval.moment_detr_metrics` (absent
  in older exported configs: False), or the dataset's metadata asks for them."""
  return bool(config.eval.get("moment_detr_metrics", False)
              or metadata.get("moment_detr_metrics", False))


def moments_kept(recall_at: Sequence[int], moment_detr: bool) -> int:
  """Moments a record's `pred` keeps: max(recall_at), with Moment-DETR's metrics at
  least the `metrics.MAP_TOP_K` its mAP reads."""
  return max(max(recall_at), metrics.MAP_TOP_K if moment_detr else 0)


def offset_on(nms_offset: float | None) -> bool:
  """Whether `eval.nms_offset` selects the per-threshold NMS (None or < 0: off)."""
  return nms_offset is not None and nms_offset >= 0


def prediction_records(batch: Mapping[str, np.ndarray], ranked: np.ndarray,
                       nms_threshold: float, top_n: int, *, tie_order: str = "index",
                       num_clips: int | None = None, nms_offset: float | None = None,
                       thresholds: Sequence[float] = ()) -> list[dict[str, Any]]:
  """One record per valid query of a host batch; `ranked [B, (Q,) K, 3]` best first
  (rows with a non-finite score are not moments).

  `pred`: NMS at `nms_threshold` down the whole ranking, up to `top_n` moments.
  `tie_order` "2dtan" first reorders each query's moments as 2D-TAN's argsort of its
  `num_clips`-clip map (`metrics.map_order`). With `nms_offset` >= 0 also
  `pred_at[metrics.threshold_key(m)]` for each m in `thresholds`: NMS at m - nms_offset.
  """
  if tie_order not in TIE_ORDERS:
    raise ValueError(f"eval.tie_order is one of {TIE_ORDERS}, got {tie_order!r}")
  if tie_order == "2dtan" and not num_clips:
    raise ValueError("tie_order 2dtan needs the map's num_clips")
  per_threshold = offset_on(nms_offset)
  if per_threshold and not len(thresholds):
    raise ValueError("eval.nms_offset needs the IoU thresholds")
  valid = query_validity(batch)
  if "query_valid" not in batch:  # query-level: add the Q axis
    batch = {k: v[:, None] if k in PER_QUERY_KEYS else v for k, v in batch.items()}
    ranked = ranked[:, None]
  rows = lambda kept: [[float(x) for x in row] for row in kept]
  records = []
  for b, q in zip(*np.nonzero(valid)):
    moments = ranked[b, q]
    moments = moments[np.isfinite(moments[:, 2])]
    duration = float(batch["duration"][b])
    if tie_order == "2dtan":
      moments = metrics.map_order(moments, duration, num_clips)
    sort = tie_order == "index"  # map_order's rows are ranked already
    record = {
        "video": batch["video_id"][b].decode(),
        "query_index": int(batch["query_index"][b, q]),
        "sentence": batch["sentence"][b, q].decode(),
        "duration": duration,
        "gt": [float(t) for t in batch["gt_times"][b, q]],
        "pred": rows(metrics.nms(moments, nms_threshold, top_n, sort=sort)),
    }
    if "gt_windows" in batch:
      record["gt_windows"] = metrics.distinct_windows(batch["gt_windows"][b, q])
    if "qid" in batch:
      record["qid"] = json.loads(batch["qid"][b, q].decode())
    if per_threshold:
      record["pred_at"] = {
          metrics.threshold_key(m):
              rows(metrics.nms(moments, m - nms_offset, top_n, sort=sort))
          for m in thresholds}
    records.append(record)
  return records


def metrics_of_records(records: Sequence[Mapping[str, Any]], recall_at: Sequence[int],
                       thresholds: Sequence[float], moment_detr: bool = False
                       ) -> dict[str, float]:
  """R@n,IoU=m and mIoU of prediction records, plus `num_queries`. Records with
  `pred_at` (`eval.nms_offset`) take R@n at m from `pred_at[m]`, mIoU from the
  top-1 of `pred`. `moment_detr`: also `metrics.moment_detr_metrics` of `pred`."""
  if not records:
    return {"num_queries": 0}
  as_array = lambda pred: np.asarray(pred, dtype=np.float64).reshape(-1, 3)
  gts = [metrics.record_windows(r) for r in records]
  predictions = [as_array(r["pred"]) for r in records]
  extra = metrics.moment_detr_metrics(predictions, gts) if moment_detr else {}
  if not any("pred_at" in r for r in records):
    result = metrics.grounding_metrics(predictions, gts, recall_at, thresholds)
    return {**result, **extra, "num_queries": len(records)}
  at = {}
  for m in thresholds:
    key = metrics.threshold_key(m)
    if any(key not in r.get("pred_at", {}) for r in records):
      raise ValueError(f"records without pred_at[{key!r}] (evaluated at other thresholds)")
    at.update(metrics.grounding_metrics([as_array(r["pred_at"][key]) for r in records],
                                        gts, recall_at, (m,)))
  result = {metrics.metric_name(n, m): at[metrics.metric_name(n, m)]
            for n in recall_at for m in thresholds}
  result["mIoU"] = metrics.grounding_metrics(predictions, gts, (1,), ())["mIoU"]
  return {**result, **extra, "num_queries": len(records)}


def field_record(record: Mapping[str, Any]) -> dict[str, Any]:
  """A prediction record in the field's JSON-lines keys: qid (the release's where the
  record has one, else "<video>#<query_index>", unique over processes), query, vid,
  duration, relevant_windows [[s, e], ...] (its gt_windows, else [gt]),
  pred_relevant_windows [[s, e, score], ...] (seconds)."""
  qid = record.get("qid", f"{record['video']}#{record['query_index']}")
  return {"qid": qid, "query": record["sentence"],
          "vid": record["video"], "duration": record["duration"],
          "relevant_windows": metrics.record_windows(record),
          "pred_relevant_windows": record["pred"]}


def write(workdir: str, split: str, result: Mapping[str, float],
          records: Sequence[Mapping[str, Any]]) -> None:
  """Metrics json and predictions jsonl (ours and the field's)."""
  directory = os.path.join(workdir, "eval")
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, f"{split}_predictions.jsonl"), "w") as f:
    for record in records:
      f.write(json.dumps(record) + "\n")
  with open(os.path.join(directory, f"{split}_submission.jsonl"), "w") as f:
    for record in records:
      f.write(json.dumps(field_record(record)) + "\n")
  with open(os.path.join(directory, f"{split}_metrics.json"), "w") as f:
    json.dump(dict(result), f, indent=1)


def table(result: Mapping[str, float], title: str) -> str:
  """A small text table of metrics in percent."""
  names = [k for k in result if k != "num_queries"]
  width = max(len(n) for n in names + ["metric"])
  lines = [title, f"{'metric':<{width}}  value", "-" * (width + 9)]
  lines += [f"{n:<{width}}  {100 * result[n]:6.2f}" for n in names]
  lines.append(f"{'queries':<{width}}  {result.get('num_queries', 0):6d}")
  return "\n".join(lines)
