"""`vmr_jax.tools.paper_rows` (the papers' figures) and `vmr_jax.tools.versus_paper` (a run's test
metrics beside them) on a hand-made workdir whose recalls and SEs are known."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from vmr_jax import evaluate, metrics
from vmr_jax.tools import paper_rows, significance, versus_paper
from tests.conftest import REPO

HITS = [4, 3, 2, 1, 0]  # R@1,IoU=0.5 hits of the 4 queries of each of 5 videos: 10 / 20


def records():
  """A hit's top-1 is the ground truth, a miss's a disjoint moment with the ground
  truth second (R@5 = 1 for every query)."""
  rng = np.random.default_rng(0)
  out = []
  for v, hits in enumerate(HITS):
    for q in range(4):
      start = float(rng.uniform(0, 10))
      gt = [start, start + 2]
      miss = [start + 3, start + 5]
      pred = [gt + [1.0], miss + [0.5]] if q < hits else [miss + [1.0], gt + [0.5]]
      out.append({"video": f"v{v}", "query_index": q, "sentence": "s", "duration": 16.0,
                  "gt": gt, "pred": pred})
  return out


@pytest.fixture
def workdir(tmp_path):
  recs = records()
  evaluate.write(str(tmp_path), "test", evaluate.metrics_of_records(recs, (1, 5), (0.3, 0.5)),
                 recs)
  (tmp_path / "config.json").write_text(json.dumps({"model": "cmhn",
                                                    "data": {"name": "synthetic"}}))
  return tmp_path


def squeezed(text):
  return "\n".join(" ".join(line.split()) for line in text.splitlines())


def expected_se():
  """The clustered SE of R@1,IoU=0.5 by hand: s_i - R n_i = HITS - 2, k = 5, N = 20."""
  return np.sqrt(5 / 4 * np.sum((np.array(HITS) - 2.0) ** 2)) / 20


def test_compare_against_a_made_up_row(workdir):
  row = {"R@1,IoU=0.5": 55.0, "R@5,IoU=0.5": 100.0, "R@1,IoU=0.7": 12.0}
  rows = {r["metric"]: r for r in versus_paper.compare(str(workdir), "test", row)}
  assert list(rows) == list(row)  # the paper's order
  r1 = rows["R@1,IoU=0.5"]
  assert r1["status"] == "compared" and r1["ours"] == pytest.approx(50.0)
  assert r1["reported"] == pytest.approx(50.0) and (r1["queries"], r1["videos"]) == (20, 5)
  assert r1["se"] == pytest.approx(100 * expected_se())
  recs = significance.read_records(str(workdir / "eval" / "test_predictions.jsonl"))
  assert r1["se"] == pytest.approx(100 * significance.compare(recs, None, "R@1,IoU=0.5")["a_se"])
  assert r1["within"]  # |55 - 50| < 1.96 x 17.68
  assert rows["R@5,IoU=0.5"]["ours"] == 100.0 and rows["R@5,IoU=0.5"]["se"] == 0.0
  assert rows["R@5,IoU=0.5"]["within"]
  assert rows["R@1,IoU=0.7"] == {"metric": "R@1,IoU=0.7", "paper": 12.0,
                                 "status": "not measured"}
  far = versus_paper.compare(str(workdir), "test", {"R@1,IoU=0.5": 95.0, "mIoU": 1.0})
  assert not far[0]["within"]  # |95 - 50| > 1.96 x 17.68 = 34.65
  assert far[1]["status"] == "compared" and not far[1]["within"]
  text = versus_paper.report(versus_paper.compare(str(workdir), "test", row), "t")
  assert "R@1,IoU=0.5 50.00 +- 17.68 55.00 yes" in squeezed(text)
  assert text.splitlines()[-1] == "not measured: R@1,IoU=0.7"


def test_pick_and_errors(workdir):
  with pytest.raises(ValueError, match="no paper row for cmhn/synthetic; available: clear/"):
    versus_paper.row_of_workdir(str(workdir))
  assert paper_rows.lookup("CMHN/activitynet").key == "cmhn/activitynet_captions"
  with pytest.raises(ValueError, match="fvmr/charades_sta/c3d"):
    paper_rows.lookup("fvmr/charades_sta")  # the features are part of the key
  (workdir / "eval" / "test_metrics.json").unlink()
  with pytest.raises(FileNotFoundError, match=r"eval/test_metrics\.json"):
    versus_paper.compare(str(workdir), "test", {"mIoU": 1.0})
  with pytest.raises(FileNotFoundError, match=r"eval/val_metrics\.json"):
    versus_paper.compare(str(workdir), "val", {"mIoU": 1.0})


def test_command(workdir):
  run = lambda *flags: subprocess.run(
      [sys.executable, "-m", "vmr_jax.tools.versus_paper", f"--workdir={workdir}", *flags],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  out = run("--paper=cmhn/tacos")
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'Table IV (TACoS), row "CMHN"' in out.stdout
  assert "R@1,IoU=0.5 50.00 +- 17.68 25.58 yes" in squeezed(out.stdout)  # 24.42 < 34.65
  assert "R@5,IoU=0.5 100.00 +- 0.00 35.23 no" in squeezed(out.stdout)
  assert "not measured: R@1,IoU=0.7, R@5,IoU=0.7" in out.stdout
  assert "mIoU" not in out.stdout  # ours, not in the paper's row
  bad = run()  # the config's cmhn/synthetic has no paper row
  assert bad.returncode == 1
  last = bad.stderr.strip().splitlines()[-1]
  assert last.startswith("versus_paper: no paper row for cmhn/synthetic; available: ")
  assert "fian/tacos" in last


def test_every_row_parses_and_lies_in_range():
  assert len(paper_rows.ROWS) == 14
  for key, row in paper_rows.ROWS.items():
    assert row.key == key and row.source.startswith("00")
    assert row.model in {"cmhn", "clear", "fvmr", "hscnet", "fian"}
    config = {"tacos": "tacos", "activitynet_captions": "activitynet",
              "charades_sta": "charades"}[row.dataset]
    text = (REPO / "configs" / f"{row.model}_{config}.py").read_text()
    assert f'config.data.name = "{row.dataset}"' in text
    for name, value in row.values.items():
      match = re.fullmatch(r"R@(\d+),IoU=([0-9.]+)", name)
      assert name == "mIoU" or name == metrics.metric_name(int(match[1]), float(match[2]))
      metrics.per_query([np.array([[0.0, 1.0, 1.0]])], np.array([[0.0, 1.0]]), name)
      assert 0 <= value <= 100, (key, name)
  assert paper_rows.ROWS["cmhn/tacos"].values["R@1,IoU=0.5"] == 25.58
  assert paper_rows.key_of("fian", "charades_sta", None) == "fian/charades_sta/i3d"


def test_recall_reads_pred_at_where_the_run_wrote_it(tmp_path):
  """`eval.nms_offset` runs: R@n at IoU m from `pred_at[m]`, as metrics.json has it."""
  recs = records()
  for r in recs:  # pred_at[0.5] puts the ground truth first for every query
    gt_first = sorted(r["pred"], key=lambda p: p[:2] != r["gt"])
    r["pred_at"] = {"0.3": r["pred"], "0.5": gt_first}
  evaluate.write(str(tmp_path), "test", evaluate.metrics_of_records(recs, (1,), (0.3, 0.5)),
                 recs)
  rows = versus_paper.compare(str(tmp_path), "test",
                              {"R@1,IoU=0.5": 99.0, "R@1,IoU=0.3": 50.0, "mIoU": 50.0})
  assert [(r["ours"], r["reported"]) for r in rows[:2]] == [(100.0, 100.0), (50.0, 50.0)]
  assert rows[2]["ours"] == pytest.approx(rows[2]["reported"])
