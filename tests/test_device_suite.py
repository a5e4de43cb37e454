"""`bench --suite=device` (`vmr_jax.tools.device_suite`): the command at tiny sizes on
the CPU with TensorFlow blocked in every process it starts, every paper config's tiny
size, and the suite's bookkeeping (smaller batches, failures, the budget) on jobs
made up in the test."""

import json
import math
import subprocess
import sys

import jax

from tests import cli
from tests.conftest import REPO
from vmr_jax.tools import costs, device_suite, model_bench

# Imported by every Python process that has it on its path (the suite's jobs too):
# TensorFlow then fails to import, as the sys.modules entry of tests/test_bench.py.
BLOCK_TENSORFLOW = """import sys
sys.modules["tensorflow"] = None
sys.modules["tensorflow_datasets"] = None
"""
# One config, not all 12: each job is a process of its own (~4 s to start here) that
# compiles the init, train and eval steps (~10 s on the 2 cores), two jobs a config;
# the 12 configs' tiny sizes are checked without compiling below.
CONFIG = "cmhn_tacos"  # BERT swapped for the twins' encoder; a video-level batch


def positive(x) -> bool:
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_tiny_suite_command_without_tensorflow(tmp_path):
  blocker = tmp_path / "block"
  blocker.mkdir()
  (blocker / "sitecustomize.py").write_text(BLOCK_TENSORFLOW)
  env = cli.environment()
  env["PYTHONPATH"] = f"{blocker}:{REPO}"
  blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env,
                           capture_output=True, text=True)
  assert blocked.returncode != 0 and "tensorflow" in blocked.stderr  # the block holds
  out_dir = tmp_path / "out"
  run = subprocess.run(
      [sys.executable, "-m", "vmr_jax.tools.bench", "--suite=device", "--suite_size=tiny",
       f"--suite_configs={CONFIG}", "--suite_twin_on_cpu", "--suite_steps=2",
       f"--out={out_dir}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  assert f"{CONFIG} float32: " in run.stdout and f"{CONFIG} bfloat16: " in run.stdout

  report = json.loads((out_dir / "device_suite.json").read_text())
  assert report["device"] == {"platform": "cpu", "device_kind": "cpu",
                              "device_count": jax.device_count()}
  assert report["versions"]["jax"] == jax.__version__ and report["versions"]["torch"]
  assert report["suite"]["configs"] == [CONFIG] and positive(report["suite"]["seconds"])
  entries = report["configs"][CONFIG]
  for dtype in device_suite.DTYPES:
    entry = entries[dtype]
    assert entry["status"] == "ok", entry
    assert entry["batch"] == entry["config_batch"] == "2 videos x 2 queries"
    assert entry["steps"] == 2 and "reduced" not in entry
    for field in ("step_ms", "eval_queries_per_second", "predicted_peak_bytes", "parameters",
                  "dot_gflops", "compile_seconds"):
      assert positive(entry[field]), (dtype, field, entry[field])
    assert entry["peak_bytes"] is None  # the CPU keeps no count
  assert entries["float32"]["parameters"] == entries["bfloat16"]["parameters"] < 10 ** 6
  assert positive(entries["twin"]["step_ms"]) and entries["twin"]["torch"].startswith("torch")

  search = report["search"]
  assert search["status"] == "ok" and search["moments"] == 2000
  for model in ("cmhn", "fvmr"):
    methods = search["results"][model]
    assert {"JAX", "numpy"} <= set(methods)
    assert all(positive(seconds) and same for seconds, same in methods.values()), methods
  assert all(positive(v) for v in search["limits"].values())

  table = (out_dir / "device_suite.md").read_text()
  for dtype in device_suite.DTYPES:
    row = next(line for line in table.splitlines()
               if line.startswith(f"| {CONFIG} | {dtype} | 2 videos x 2 queries | "))
    cells = row.strip("|").split(" | ")
    assert len(cells) == 9 and cells[5].endswith("x") and cells[7] == "-"  # no CPU count
  assert "CMHN, 64-bit codes: index 264 bytes a moment" in table  # corpus_speed.markdown
  assert "FVMR, 32-d: index 128 bytes a moment" in table and "\n| JAX | " in table


def test_every_paper_config_has_a_tiny_size():
  """Each paper config shrinks to a consistent tiny model: its train step traces (no
  compiling) at batch 2 with at most 32 clips and under 10^6 parameters."""
  for name in costs.paper_configs():
    config = device_suite.load(name, "tiny")
    model_bench.use_twin_text(config)
    traced, state = costs.trace_train_step(config, device_suite.TINY_FEATURE_DIM,
                                           costs.dataset_sizes(config)[1])
    assert traced.out_info[1]["loss"].shape == (), name
    parameters = sum(math.prod(x.shape) for x in jax.tree.leaves(state.params))
    assert config.train.batch_size == 2 and config.data.num_clips <= 32, name
    assert parameters < 10 ** 6, (name, parameters)


GIB = 2 ** 30
FAKE_DEVICE = {"platform": "gpu", "device_kind": "Fake GPU", "device_count": 1}


def fake_job(job, timeout):
  """A job's result as a GPU would give it: CMHN too big at batch 8 and 4 in float32
  (XLA's prediction), out of memory at 8 and 4 in bfloat16; FIAN failing."""
  if job["kind"] == "search":
    row = {"JAX": [0.002, True], "numpy": [0.02, True]}
    return {"status": "ok", "results": {"cmhn": row, "fvmr": row}, "device": FAKE_DEVICE,
            "limits": {"read_GBps": 3000.0, "matmul_GFLOPs": 400000.0}}
  if job["config"] == "fian_charades":
    return {"status": "error", "error": "ValueError: made up"}
  float32 = job["dtype"] == "float32"
  if job["batch_size"] > 2:
    return ({"status": "too_big", "predicted_peak_bytes": 90 * GIB, "bytes_limit": 79 * GIB}
            if float32 else {"status": "oom", "error": "RESOURCE_EXHAUSTED: made up"})
  entry = {"status": "ok", "batch": "2 videos x 16 queries", "batch_size": 2,
           "config_batch": "8 videos x 16 queries", "step_ms": 10.0 if float32 else 5.0,
           "steps": 5, "eval_queries_per_second": 1000.0, "peak_bytes": 3 * GIB,
           "predicted_peak_bytes": int(2.5 * GIB), "device": FAKE_DEVICE}
  if float32:
    entry["twin"] = {"step_ms": 25.0, "steps": 5, "torch": "torch 2 (Fake GPU)"}
  return entry


def test_suite_halves_the_batch_records_failures_and_tabulates(tmp_path, monkeypatch):
  monkeypatch.setattr(device_suite, "_run_child", fake_job)
  names = ["cmhn_tacos", "fian_charades"]
  report = device_suite.run_suite(str(tmp_path), names, list(device_suite.DTYPES), "paper",
                                  5, 1000.0, False, device_suite.TINY_SEARCH)
  assert json.loads((tmp_path / "device_suite.json").read_text()) == report
  assert report["device"] == FAKE_DEVICE
  cmhn = report["configs"]["cmhn_tacos"]
  assert cmhn["float32"]["batch_size"] == cmhn["bfloat16"]["batch_size"] == 2
  assert cmhn["float32"]["reduced"] == [
      f"batch {b}: XLA predicts 90.00 GiB, the device has 79.00 GiB" for b in (8, 4)]
  assert [r.split(":")[0] for r in cmhn["bfloat16"]["reduced"]] == ["batch 8", "batch 4"]
  assert "device" not in cmhn["float32"] and cmhn["twin"]["step_ms"] == 25.0
  assert report["configs"]["fian_charades"]["float32"]["error"] == "ValueError: made up"

  table = (tmp_path / "device_suite.md").read_text()
  assert "1 x Fake GPU (gpu)" in table
  assert ("| cmhn_tacos | float32 | 2 videos x 16 queries | 10.00 | 25.00 | 2.50x | 1,000 "
          "| 3.00 GiB | 2.50 GiB |") in table
  assert "| cmhn_tacos | bfloat16 | 2 videos x 16 queries | 5.00 | 25.00 | 5.00x |" in table
  assert "| fian_charades | float32 | - | - |" in table
  assert "- fian_charades float32: error: ValueError: made up" in table
  assert "- cmhn_tacos bfloat16: batch reduced from 8 videos x 16 queries (batch 4: out" \
      in table
  assert "| numpy | 20.0 | yes | 0.00 | 0% | - | - |" in table  # CMHN's (corpus_speed.markdown)
  assert "reads 3000.0 GB/s" in table


def test_suite_records_what_the_budget_leaves_out(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(device_suite, "_run_child", fake_job)
  report = device_suite.run_suite(str(tmp_path), ["cmhn_tacos"], ["bfloat16"], "paper", 5,
                                  device_suite.MIN_JOB_SECONDS - 1, False,
                                  device_suite.TINY_SEARCH)
  assert report["search"]["status"] == "skipped" and report["device"] is None
  assert report["configs"]["cmhn_tacos"] == {
      "bfloat16": {"status": "skipped", "reason": "the suite's time budget ran out"}}
  assert "--suite_configs=cmhn_tacos --suite_dtypes=bfloat16" in capsys.readouterr().out
  table = (tmp_path / "device_suite.md").read_text()
  assert "| cmhn_tacos | bfloat16 | - |" in table and "| cmhn_tacos | float32 |" not in table
  assert "skipped: the suite's time budget ran out" in table
