"""`vmr_jax.tools.compare` trains a model and its PyTorch twin on the same batches: with no
dropout (tiny FIAN), both follow the same loss curve from the same weights."""

import pytest

from vmr_jax.tools import compare

from tests.models import tiny_config

pytest.importorskip("torch")


@pytest.mark.xdist_group("fian")
def test_both_frameworks_follow_the_same_losses(tiny_data_dir, tiny_release, capsys):
  config = tiny_config("fian", tiny_data_dir, tiny_release)
  config.train.num_steps, config.train.log_every = 6, 2
  result = compare.compare(config)
  printed = capsys.readouterr().out
  assert printed.count("loss JAX") == 3
  jax_losses = [float(line.split()[4]) for line in printed.splitlines() if "loss JAX" in line]
  torch_losses = [float(line.split()[6]) for line in printed.splitlines() if "loss JAX" in line]
  assert jax_losses == pytest.approx(torch_losses, rel=1e-3)
  for framework in ("jax", "pytorch"):
    assert result[framework]["num_queries"] == 18  # the tiny test split, once
    assert 0 <= result[framework]["R@1,IoU=0.5"] <= 1
  assert abs(result["jax"]["mIoU"] - result["pytorch"]["mIoU"]) < 0.05
  # The twin given the JAX final weights decodes the same moments.
  for name, value in result["twin_on_jax_weights"].items():
    assert value == pytest.approx(result["jax"][name], abs=1e-4), name
  assert "R@1,IoU=0.5" in compare.table(result)
