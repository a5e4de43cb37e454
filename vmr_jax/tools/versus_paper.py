"""A trained run's test metrics beside its paper's row.

    python -m vmr_jax.tools.versus_paper --workdir=W [--split=test] [--paper=MODEL/DATASET]

Reads `W/config.json` (its `model` and `data.name`, on Charades-STA also
`data.builder_config`, pick the row of `vmr_jax.tools.paper_rows`; `--paper=cmhn/tacos`
picks another), `W/eval/<split>_metrics.json` (which metrics the run measured) and
`W/eval/<split>_predictions.jsonl` (`--mode=eval`'s per-query records). For each
metric of the paper's row that the run measured it prints ours with its standard
error clustered by video (`vmr_jax.tools.significance`: the per-query values of
`significance.query_values`, which reads `pred_at` where the run wrote it,
`eval.nms_offset`), the paper's figure and whether that figure lies within
+-1.96 SE of ours; the paper's metrics the run lacks are listed as not measured.
The SE is that of the test sample only: a second training seed can move a figure by
more (docs/results.md), so "no" says the paper's figure is far from this run, not
that the implementation is wrong.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Mapping

from absl import app, flags

from vmr_jax import metrics
from vmr_jax.tools import paper_rows, significance
from vmr_jax.export import read_config

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir.")
_SPLIT = flags.DEFINE_string("split", "test", "The evaluated split (eval/<split>_*).")
_PAPER = flags.DEFINE_string("paper", None,
                             "MODEL/DATASET[/FEATURES] paper row (default: the run's config).")

Z = 1.96


def _require(path: str) -> str:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"missing {path}")
  return path


def row_of_workdir(workdir: str) -> paper_rows.PaperRow:
  """The paper row that `workdir/config.json`'s model and dataset name."""
  config = read_config(_require(os.path.join(workdir, "config.json")))
  data = config.get("data", {})
  key = paper_rows.key_of(str(config.get("model")), str(data.get("name")),
                          data.get("builder_config", None))
  return paper_rows.lookup(key)


def _predictions(workdir: str, split: str) -> dict:
  path = os.path.join(workdir, "eval", f"{split}_predictions.jsonl")
  parts = sorted(glob.glob(os.path.join(workdir, "eval", f"{split}_predictions.*.jsonl")))
  if os.path.isfile(path) or not parts:  # one process's file, or the error naming it
    return significance.read_records(_require(path))
  records = {}
  for part in parts:  # several processes' parts (`evaluate.write`)
    records.update(significance.read_records(part))
  return records


def compare(workdir: str, split: str = "test",
            row: paper_rows.PaperRow | Mapping[str, float] | None = None) -> list[dict]:
  """One dict per metric of the paper row, in the row's order: "metric", "paper"
  (percent) and "status" "compared" (with "ours", "se" in percent, "within",
  "reported": the run's metrics.json figure, "queries", "videos") or "not measured".
  `row`: a `PaperRow`, a {metric: percent} dict, or None for the config's row."""
  if row is None:
    row = row_of_workdir(workdir)
  values = row.values if isinstance(row, paper_rows.PaperRow) else dict(row)
  metrics_path = _require(os.path.join(workdir, "eval", f"{split}_metrics.json"))
  with open(metrics_path) as f:
    reported = json.load(f)
  measured = {k for k in reported if k == "mIoU" or metrics.parse_recall(k)}
  records = _predictions(workdir, split)
  keys = sorted(records)
  videos = [video for video, _ in keys]
  ordered = [records[k] for k in keys]
  out = []
  for metric, paper in values.items():
    if metric not in measured:
      out.append({"metric": metric, "paper": float(paper), "status": "not measured"})
      continue
    per_query = significance.query_values(ordered, metric)
    mean, se = significance.clustered_mean(per_query, videos)
    ours, se = 100 * mean, 100 * se
    out.append({"metric": metric, "paper": float(paper), "status": "compared",
                "ours": ours, "se": se, "within": bool(abs(paper - ours) <= Z * se),
                "reported": 100 * float(reported[metric]), "queries": len(keys),
                "videos": len(set(videos))})
  return out


def report(rows: list[dict], title: str) -> str:
  """`compare`'s rows as a text table."""
  compared = [r for r in rows if r["status"] == "compared"]
  lines = [title]
  if compared:
    lines.append(f"({compared[0]['queries']} queries over {compared[0]['videos']} videos; "
                 f"SE clustered by video; within: |paper - ours| <= {Z} SE)")
  width = max([len(r["metric"]) for r in rows] + [len("metric")])
  lines.append(f"{'metric':<{width}}  {'ours +- SE':>15}  {'paper':>6}  within")
  for r in compared:
    ours = f"{r['ours']:.2f} +- {r['se']:.2f}"
    lines.append(f"{r['metric']:<{width}}  {ours:>15}  {r['paper']:6.2f}  "
                 f"{'yes' if r['within'] else 'no'}")
    if abs(r["reported"] - r["ours"]) > 5e-3:
      lines.append(f"  (the run's metrics.json gives {r['reported']:.2f}: the predictions "
                   "file holds other queries)")
  missing = [r["metric"] for r in rows if r["status"] == "not measured"]
  if missing:
    lines.append(f"not measured: {', '.join(missing)}")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise SystemExit(f"versus_paper: unexpected arguments {' '.join(argv[1:])}")
  if not _WORKDIR.value:
    raise SystemExit("versus_paper: --workdir is required")
  try:
    row = (paper_rows.lookup(_PAPER.value) if _PAPER.value
           else row_of_workdir(_WORKDIR.value))
    rows = compare(_WORKDIR.value, _SPLIT.value, row)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f"versus_paper: {e}") from None
  print(report(rows, f"{_WORKDIR.value} ({_SPLIT.value}) against {row.key}: {row.source}"))


if __name__ == "__main__":
  app.run(main)
