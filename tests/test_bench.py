"""The benchmarks run, and import no TensorFlow (the GPU image has none): every model's
train-step bench (JAX and its PyTorch twin), the retrieval and memory benches, in
processes with TensorFlow blocked."""

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.models import VARIANTS

NO_TF = """
import sys
sys.modules["tensorflow"] = None  # any import of it now fails
sys.path.insert(0, {repo!r})
from absl import flags
from vmr_jax import registry
from vmr_jax.tools import bench
import tests.models  # the registered models, the tests' own included
flags.FLAGS(["bench", "--steps=1", "--feature_dim=8", "--vocab=50", "--gallery=3,10"])
"""
MODEL_BENCH = NO_TF + """
config = registry.demo_config({variant!r}, "small")
config.train.batch_size = 2
flags.FLAGS.eval_variants = {eval_variants!r}
bench.bench_model(config)
"""
RETRIEVAL_BENCH = NO_TF + """
from vmr_jax.configs import fvmr_tacos
config = fvmr_tacos.get_config()
config.data.num_clips, config.fvmr.dim = 128, 8
bench.bench_retrieval(config)
"""


def run(script: str) -> str:
  out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_model_bench_without_tensorflow(variant):
  """A model's train-step bench in JAX and, where it has one, its PyTorch twin; the
  evaluation's speed of each of CLEAR's searches."""
  from vmr_jax.tools import twins
  searches = "clear.search=pruned,exhaustive" if variant == "clear/paper" else ""
  stdout = run(MODEL_BENCH.format(repo=str(REPO), variant=variant, eval_variants=searches))
  model = variant.partition("/")[0]
  assert f"\n{model}: batch " in "\n" + stdout
  assert ("PyTorch / JAX step time" in stdout) == twins.has(model)
  if searches:
    assert "clear.search=pruned:" in stdout and "clear.search=exhaustive:" in stdout


def test_retrieval_bench_without_tensorflow():
  stdout = run(RETRIEVAL_BENCH.format(repo=str(REPO)))
  assert "3 videos, 10 queries, 2548 cells x 8" in stdout
  assert "PyTorch / JAX time" in stdout


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
  small = {"train.batch_size": 2, "data.num_clips": 8, "data.max_queries": 2,
           "data.max_words": 5, "text.glove_dim": 6, "fvmr.scale_layers": (8,),
           "fvmr.video_dim": 8, "fvmr.dim": 8, "fvmr.mlp_hidden": 8, "fvmr.fuse_hidden": 4,
           "fvmr.node_hidden": 4, "text.head_hidden": 4, "text.head_layers": 1}
  overrides = [f"--config.{field}={value}" for field, value in small.items()]
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


def test_corpus_parts_time_each_part():
  """`--task=corpus --corpus_parts`: every part of JAX's search timed (3,000 moments)."""
  from vmr_jax.tools import corpus_speed
  seconds = corpus_speed.parts(moments=3000, per_video=50, bits=40, dim=16, queries=5, k=20,
                               steps=1)
  assert len(seconds) == 10 and all(s > 0 for s in seconds.values()), seconds
  assert {name.split(":")[0] for name in seconds} == {"CMHN", "FVMR"}
