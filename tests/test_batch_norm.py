"""BatchNorm statistics in the train state, with a probe model registered for the test:
the train step updates them from the global batch, evaluation uses them, checkpoints
keep them, and 1 and 4 devices agree."""

import json
import subprocess
import sys

from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax import checkpoints, registry, sharding, train
from vmr_jax.layers.attention import masked_mean
from tests.cli import environment
from tests.conftest import REPO
from tests.models import tiny_config

MOMENTUM = 0.9


class Probe(nn.Module):
  """BatchNorm over each video's mean clip feature, then one span per video."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    pooled = masked_mean(batch["video_feats"], batch["video_mask"])  # [B, D]
    normed = nn.BatchNorm(use_running_average=not train, momentum=MOMENTUM,
                          name="norm")(pooled)
    return {"span": jax.nn.sigmoid(nn.Dense(2)(normed))}  # [B, 2], of the duration


def loss(outputs, batch, config):
  target = batch["gt_times"][:, 0] / batch["duration"][:, None]
  return jnp.mean((outputs["span"] - target) ** 2), {}


def decode(outputs, batch, config):
  """`[B, Q, 1, 3]`: the video's one span for each of its queries."""
  span = outputs["span"] * batch["duration"][:, None]
  moment = jnp.concatenate([span, jnp.ones_like(span[:, :1])], -1)
  return jnp.broadcast_to(moment[:, None, None], batch["gt_times"].shape[:2] + (1, 3))


SPEC = registry.ModelSpec(create=lambda config, info: registry.Model(Probe()), loss=loss,
                          decode=decode, data={"batch_kind": "video"})
PROBE = registry.Entry(model=__name__, config="vmr_jax.configs.cmhn_synthetic")


def after_one_step(data_dir, release, model="bn_probe"):
  """(the train batch's pooled features [B, D], batch_stats after one step, the state)
  of the probe (or FVMR) on the tiny set, on all local devices."""
  registry._ENTRIES.setdefault("bn_probe", PROBE)  # pylint: disable=protected-access
  if model == "fvmr":
    config = tiny_config("fvmr", data_dir, release)
  else:
    config = tiny_config("cmhn", data_dir, release)
    config.model = "bn_probe"
  run = train.setup(config)
  batch = next(run.pipeline.train_iterator(8, seed=0))
  step = jax.jit(train.make_train_step(run.model, run.spec, config, run.lr_fn))
  state, _ = step(run.state, sharding.host_to_global(batch, run.mesh))
  pooled = np.asarray(masked_mean(batch["video_feats"], batch["video_mask"]))
  return pooled, jax.device_get(state.batch_stats), state, run


def test_train_step_updates_the_statistics_and_checkpoints_keep_them(
    tiny_data_dir, tiny_release, tmp_path, monkeypatch):
  monkeypatch.setitem(registry._ENTRIES, "bn_probe", PROBE)  # pylint: disable=protected-access
  pooled, stats, state, run = after_one_step(tiny_data_dir, tiny_release)
  np.testing.assert_array_equal(jax.device_get(run.state.batch_stats["norm"]["mean"]), 0)
  np.testing.assert_allclose(stats["norm"]["mean"], (1 - MOMENTUM) * pooled.mean(0),
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(stats["norm"]["var"],
                             MOMENTUM + (1 - MOMENTUM) * pooled.var(0), rtol=1e-5)
  # Evaluation normalizes with the running statistics, not the batch's.
  batch = sharding.numeric(next(run.pipeline.eval_iterator("test", 8)))
  with_running = Probe().apply(state.variables, batch)["span"]
  with_batch = Probe().apply(state.variables, batch, train=True,
                             mutable=["batch_stats"])[0]["span"]
  assert not np.allclose(with_running, with_batch)
  ckpt = checkpoints.Checkpoints(str(tmp_path))
  ckpt.save_latest(1, state, {"epoch": 0, "offset": 8})
  restored, _, _ = ckpt.restore_latest(run.state)
  ckpt.close()
  np.testing.assert_array_equal(jax.device_get(restored.batch_stats["norm"]["var"]),
                                stats["norm"]["var"])


SCRIPT = """
import json, pathlib, sys
sys.path.insert(0, {repo!r})
import jax
from flax import traverse_util
from tests.test_batch_norm import after_one_step
_, stats, _, _ = after_one_step(pathlib.Path({data!r}), pathlib.Path({release!r}), {model!r})
flat = traverse_util.flatten_dict(stats, sep="/")
print(json.dumps({{"devices": jax.device_count(), **{{k: v.tolist() for k, v in flat.items()}}}}))
"""


@pytest.mark.parametrize("model", ["bn_probe", "fvmr"])
def test_statistics_are_the_same_on_one_and_four_devices(tiny_data_dir, tiny_release,
                                                         monkeypatch, model):
  monkeypatch.setitem(registry._ENTRIES, "bn_probe", PROBE)  # pylint: disable=protected-access
  _, one, _, _ = after_one_step(tiny_data_dir, tiny_release, model)
  script = SCRIPT.format(repo=str(REPO), data=str(tiny_data_dir), release=str(tiny_release),
                         model=model)
  out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment(4),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  four = json.loads(out.stdout.strip().splitlines()[-1])
  assert four.pop("devices") == 4
  one = traverse_util.flatten_dict(one, sep="/")
  assert set(four) == set(one) and one  # FVMR: mean and var of both map norms
  for name, value in one.items():
    np.testing.assert_allclose(four[name], value, rtol=1e-5, atol=1e-7, err_msg=name)
