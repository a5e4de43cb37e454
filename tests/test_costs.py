"""The train-step cost analysis (`vmr_jax.tools.costs`) without compiling a model."""

import jax
import jax.numpy as jnp
import pytest

from vmr_jax.tools import costs


def test_dot_flops_counts_products_convolutions_and_every_scan_iteration():
  def f(w, x, image, kernel):
    def body(h, _):
      return jnp.tanh(h @ w), None
    h, _ = jax.lax.scan(body, x, None, length=10)  # 10 x [4, 8] @ [8, 8]
    y = jax.lax.conv_general_dilated(image, kernel, (1, 1), "SAME")  # [1, 3, 5, 5] -> 2
    z = jax.lax.cond(h.sum() > 0, lambda: x @ w, lambda: x)  # the costlier branch
    return h.sum() + y.sum() + z.sum()

  args = (jnp.ones((8, 8)), jnp.ones((4, 8)), jnp.ones((1, 3, 5, 5)), jnp.ones((2, 3, 3, 3)))
  want = 10 * 2 * 4 * 8 * 8 + 2 * (2 * 5 * 5) * (3 * 3 * 3) + 2 * 4 * 8 * 8
  assert costs.dot_flops(jax.make_jaxpr(f)(*args).jaxpr) == want


def test_every_paper_config_has_its_dataset_sizes():
  names = costs.paper_configs()
  assert {"cmhn_tacos", "hscnet_activitynet", "fian_charades", "fvmr_charades"} <= set(names)
  assert not any(name.startswith("tacos_shaped") or name.endswith("synthetic")
                 for name in names)
  sizes = {name: costs.dataset_sizes(costs.load(name))[0] for name in names}
  assert sizes["cmhn_tacos"] == 4096 and sizes["clear_activitynet"] == 500
  assert sizes["fian_charades"] == 1024 and sizes["fvmr_charades"] == 4096  # I3D, C3D


def test_peak_fits_and_step_time():
  row = costs.StepCosts("x", "bfloat16", "1 pair", 10, 0.0, 9e12, 6 * costs.GIB,
                        6 * costs.GIB, 5 * costs.GIB, 6 * costs.GIB, 1.0)
  assert row.peak_bytes == 11 * costs.GIB
  assert row.fits(16) and not row.fits(8)
  a100 = next(a for a in costs.ACCELERATORS if a.name == "A100")
  assert row.step_seconds(a100, 0.5) == pytest.approx(9e12 / (0.5 * 312e12))
  table = costs.table([row], 0.4)
  assert "| x | bfloat16 | 1 pair | 0.0 | 0 | 9,000 | 11.00 (6.00 / 5.00) | yes | **no** |" in table
