"""The benchmark runs, and imports no TensorFlow (the GPU image has none)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

NO_TF = """
import runpy, sys
sys.modules["tensorflow"] = None  # any import of it now fails
sys.argv = ["bench", "--config=configs/{config}.py", "--steps=1", "--feature_dim=8",
            "--vocab=50", "--config.train.batch_size=2", "--config.data.num_clips=8",
            "--config.data.max_queries=2", "--config.data.max_words=5",
            "--config.text.glove_dim=6", *{flags!r}]
runpy.run_module("vmr_jax.bench", run_name="__main__")
"""
CONFIGS = {  # config file -> flags shrinking it
    "clear_tacos": ["--config.clear.hidden=8", "--config.clear.dim=8",
                    "--config.clear.fine_hidden=8",
                    "--eval_variants=clear.search=pruned,exhaustive"],
    "cmhn_synthetic": ["--config.cmhn.hidden=8", "--config.cmhn.code_bits=4",
                       "--config.cmhn.kernels=(1,2,3)",
                       "--config.cmhn.strides=(1,1,1)", "--config.text.head_hidden=4"],
    "fian_tacos": ["--config.fian.windows=(2,3,8)", "--config.fian.hidden=8",
                   "--config.fian.num_heads=2", "--config.fian.mlp_dim=8",
                   "--config.text.head_hidden=4"],
    "fvmr_charades": ["--config.fvmr.scale_layers=(8,)", "--config.fvmr.video_dim=8",
                      "--config.fvmr.dim=8", "--config.fvmr.mlp_hidden=8",
                      "--config.fvmr.fuse_hidden=4", "--config.fvmr.node_hidden=4",
                      "--config.text.head_hidden=4", "--config.text.head_layers=1"],
    "hscnet_tacos": ["--config.hscnet.hidden=8", "--config.hscnet.num_heads=2",
                     "--config.hscnet.mlp_dim=8", "--config.hscnet.video_layers=1",
                     "--config.hscnet.text_layers=1"],
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_model_bench_without_tensorflow(config):
  script = NO_TF.format(config=config, flags=CONFIGS[config])
  out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "PyTorch / JAX step time" in out.stdout and "queries/s" in out.stdout
  if "--eval_variants=clear.search=pruned,exhaustive" in CONFIGS[config]:
    assert "clear.search=pruned:" in out.stdout
    assert "clear.search=exhaustive:" in out.stdout


def test_retrieval_bench_without_tensorflow():
  script = NO_TF.format(config="fvmr_tacos", flags=["--task=retrieval", "--gallery=3,10",
                                                    "--config.data.num_clips=128",
                                                    "--config.fvmr.dim=8"])
  out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "3 videos, 10 queries, 2548 cells x 8" in out.stdout
  assert "PyTorch / JAX time" in out.stdout
