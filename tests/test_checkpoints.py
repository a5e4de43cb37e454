"""The best checkpoint (`vmr_jax.checkpoints.Checkpoints`) across a reopened workdir."""

import jax.numpy as jnp
import numpy as np

from vmr_jax.checkpoints import Checkpoints


def test_a_reopened_workdir_compares_with_the_best_saved_before(tmp_path):
  """Guards the best metric across a resume (a new `Checkpoints` on the same workdir,
  as a resumed run makes): a later evaluation that does not beat the best saved by
  the earlier process (lower or equal) saves nothing and the best stays its step and
  state; one that beats it replaces it. A best metric that starts afresh in each
  process saves the worse one."""
  state = lambda value: {"w": jnp.full(2, value, jnp.float32)}
  ckpt = Checkpoints(str(tmp_path), best_metric="R@1")
  assert ckpt.save_if_best(6, state(6.0), {"R@1": 0.5, "mIoU": 0.3})
  ckpt.close()
  ckpt = Checkpoints(str(tmp_path), best_metric="R@1")
  assert not ckpt.save_if_best(9, state(9.0), {"R@1": 0.4, "mIoU": 0.9})
  assert not ckpt.save_if_best(12, state(12.0), {"R@1": 0.5, "mIoU": 0.9})  # a tie
  restored, step = ckpt.restore_best(state(0.0))
  assert step == 6
  np.testing.assert_array_equal(restored["w"], 6.0)
  assert ckpt.save_if_best(15, state(15.0), {"R@1": 0.6, "mIoU": 0.1})
  assert ckpt.restore_best(state(0.0))[1] == 15
  ckpt.close()
