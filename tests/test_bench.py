"""The benchmarks run, and import no TensorFlow (the GPU image has none): every model's
train-step bench (JAX and its PyTorch twin) and the retrieval bench, in one process
with TensorFlow blocked."""

import subprocess
import sys

from tests.conftest import REPO, SHRINK

NO_TF = """
import importlib, sys
sys.modules["tensorflow"] = None  # any import of it now fails
from absl import flags
from vmr_jax.tools import bench
flags.FLAGS(["bench", "--steps=1", "--feature_dim=8", "--vocab=50", "--gallery=3,10"])
for name, overrides in {runs!r}:
  name, _, reading = name.partition(":")
  module = importlib.import_module(f"vmr_jax.configs.{{name}}")
  config = module.get_config(reading) if reading else module.get_config()
  for field, value in overrides.items():
    section, key = field.split(".")
    config[section][key] = value
  if name == "fvmr_tacos":
    bench.bench_retrieval(config)
    continue
  flags.FLAGS.eval_variants = "clear.search=pruned,exhaustive" if name == "clear_tacos" else ""
  bench.bench_model(config)
"""
SMALL = {"train.batch_size": 2, "data.num_clips": 8, "data.max_queries": 2,
         "data.max_words": 5, "text.glove_dim": 6}
RUNS = [  # (config, overrides shrinking it)
    ("clear_tacos:paper", {**SMALL, "clear.hidden": 8, "clear.dim": 8, "clear.fine_hidden": 8}),
    ("clear_synthetic", {**SMALL, **SHRINK["clear/released"]}),  # the default reading
    ("cmhn_synthetic", {**SMALL, "cmhn.hidden": 8, "cmhn.code_bits": 4,
                        "cmhn.kernels": (1, 2, 3), "cmhn.strides": (1, 1, 1),
                        "text.head_hidden": 4}),
    ("fian_tacos", {**SMALL, "fian.windows": (2, 3, 8), "fian.hidden": 8, "fian.num_heads": 2,
                    "fian.mlp_dim": 8, "text.head_hidden": 4}),
    ("fvmr_charades", {**SMALL, "fvmr.scale_layers": (8,), "fvmr.video_dim": 8, "fvmr.dim": 8,
                       "fvmr.mlp_hidden": 8, "fvmr.fuse_hidden": 4, "fvmr.node_hidden": 4,
                       "text.head_hidden": 4, "text.head_layers": 1}),
    ("hscnet_tacos", {**SMALL, "hscnet.hidden": 8, "hscnet.num_heads": 2, "hscnet.mlp_dim": 8,
                      "hscnet.video_layers": 1, "hscnet.text_layers": 1,
                      "hscnet.word_layers": 1, "hscnet.sentence_layers": 1,
                      "hscnet.paragraph_layers": 1}),
    ("fvmr_tacos", {"data.num_clips": 128, "fvmr.dim": 8}),  # the retrieval bench
]


def test_benches_without_tensorflow():
  script = NO_TF.format(runs=RUNS)
  out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  for model in ("clear", "cmhn", "fian", "fvmr", "hscnet"):
    assert f"\n{model}: batch " in "\n" + out.stdout, model
  assert out.stdout.count("PyTorch / JAX step time") == 6
  assert "clear.search=pruned:" in out.stdout and "clear.search=exhaustive:" in out.stdout
  assert "3 videos, 10 queries, 2548 cells x 8" in out.stdout
  assert "PyTorch / JAX time" in out.stdout


MEMORY = """
import sys
sys.modules["tensorflow"] = None  # any import of it now fails
from absl import app
from vmr_jax.tools import bench
sys.argv = ["bench", "--memory", "--config=configs/fvmr_charades.py", *{overrides!r}]
app.run(bench.main)
"""


def test_memory_bench_without_tensorflow():
  """`--memory` on one shrunk paper config: a line per compute dtype, then the table."""
  overrides = [f"--config.{field}={value}" for field, value in dict(RUNS)["fvmr_charades"].items()]
  out = subprocess.run([sys.executable, "-c", MEMORY.format(overrides=overrides)], cwd=REPO,
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "fvmr_charades float32: " in out.stdout and "fvmr_charades bfloat16: " in out.stdout
  assert "| config | dtype | batch | params (M) |" in out.stdout
  assert "| fvmr_charades | bfloat16 | 2 videos x 2 queries |" in out.stdout


def test_corpus_search_bench_agrees_with_numpy():
  """`--task=corpus`'s methods find the same top-k scores (a 40-bit code spans two
  uint32 words; 3,000 moments)."""
  from vmr_jax.tools import corpus_speed
  results = corpus_speed.corpus_comparison(moments=3000, per_video=50, bits=40, dim=16,
                                    queries=5, k=20, steps=1)
  assert set(results) == {"cmhn", "fvmr"}
  for model, row in results.items():
    assert {"JAX", "numpy"} <= set(row) and all(same for _, same in row.values()), (model, row)
