"""CLEAR's released reading (`vmr_jax.models.clear_released`): its tables at the
release's sizes, the inference rule, and the config checks. The whole network is
checked against a PyTorch program written from the authors' code in
tests/test_twins.py (`test_clear_released_twin*`), the CLI run in tests/test_train.py."""

import numpy as np
import pytest

from vmr_jax.configs import clear_activitynet, clear_tacos
from vmr_jax import registry
from vmr_jax.layers import windows
from vmr_jax.models import clear, clear_released


@pytest.mark.parametrize("get_config,candidates,anchors,positions", [
    (clear_tacos.get_config, 2471, 80, 3354), (clear_activitynet.get_config, 1043, 64, 3761)])
def test_sizes_are_the_release_s(get_config, candidates, anchors, positions):
  """CSUN_T / CSUN_A: 2,471 / 1,043 scored cells of 2D-TAN's 2,548 / 1,104, `Linear(3354,
  80)` / `Linear(3761, 64)` from the convolution candidates to the anchors, whose index
  31 is (0, 63) and last (L - 1, L - 1) (`check[0, i, 31]`, `check[0, i, -1]`)."""
  config = get_config("released")
  cfg, length = config.clear, clear_released.map_clips(config)
  layout = clear_released.fine_layout(length, tuple(cfg.scale_layers), cfg.predictor_kernel,
                                      cfg.predictor_layers)
  assert len(layout.candidates) == candidates
  spans = clear_released.anchor_spans(length, tuple(cfg.scale_layers))
  assert len(spans) == anchors
  assert spans[cfg.rule_anchor].tolist() == [0, 63] and spans[-1].tolist() == [length - 1] * 2
  assert (spans == [0, length - 1]).all(-1).sum() == 2  # (0, L - 1) ends both lists
  assert len(windows.window_spans(config.data.num_clips, cfg.coarse_kernels,
                                  cfg.coarse_strides, tail=False)) == positions
  # The e > alpha branch scales (L - 2, L - 1): not a candidate, so it changes nothing.
  assert not (layout.candidates == [length - 2, length - 1]).all(-1).any()
  assert registry.for_config(config) is clear_released.SPEC
  assert registry.for_config(get_config()) is clear_released.SPEC  # the default
  assert registry.for_config(get_config("paper")) is clear.SPEC


def test_rule_scales_row_l_minus_4_between_mu_and_rho():
  config = clear_tacos.get_config("released")
  cfg, length = config.clear, 128
  a = 80
  sentences = np.ones((3, 1), np.float32)
  anchors = np.ones((3, a, 1), np.float32)
  anchors[:, -1, 0] = [1.01, 1.017, 1.03]  # e = 0.01 (< mu), 0.017, 0.03 (> rho)
  logits = np.zeros((3, 2471), np.float32)
  scores = np.asarray(clear_released.scores(
      {"fine_logits": logits, "sentences": sentences, "anchors": anchors}, config))
  layout = clear_released.fine_layout(length, tuple(cfg.scale_layers), cfg.predictor_kernel,
                                      cfg.predictor_layers)
  row = layout.candidates[:, 0] == length - 4
  assert row.sum() == 3  # (L - 4, L - 4 .. L - 2); (L - 4, L - 1) is not a candidate
  np.testing.assert_allclose(scores[[0, 2]], 0.5)
  np.testing.assert_allclose(scores[1, row], 5.0)
  np.testing.assert_allclose(scores[1, ~row], 0.5)


@pytest.mark.parametrize("field,value,message", [
    ("data.batch_kind", "video", "batch_kind must be 'query'"),
    ("text.head", "bigru", "text.head must be ''"),
    ("clear.frame_pool", 3, "does not divide"),
    ("clear.predictor_kernel", 4, "needs an odd clear.predictor_kernel"),
    ("clear.rule_anchor", 80, "is not one of the 80 anchors"),
    ("clear.reading", "code", "clear.reading must be one of"),
])
def test_bad_settings_are_one_line_errors(field, value, message):
  config = clear_tacos.get_config("released")
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=message):
    registry.for_config(config).create(config, registry.DataInfo(4096, ["a"], None))


def test_multistep_schedule_is_multisteplr_in_steps():
  """`train.schedule = "multistep"` (the release's MultiStepLR, gamma 0.1)."""
  import jax.numpy as jnp
  from vmr_jax import train
  config = clear_tacos.get_config("released")
  _, lr = train.create_optimizer(config, {"w": jnp.zeros(2)}, ())
  steps = config.train.decay_steps
  assert steps == (7 * 306, 11 * 306, 14 * 306)
  rates = [float(lr(s)) for s in (0, steps[0] - 1, steps[0], steps[1], steps[2])]
  np.testing.assert_allclose(rates, [1.3e-3, 1.3e-3, 1.3e-4, 1.3e-5, 1.3e-6], rtol=1e-5)
