import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax.layers.bitcn import BiTCN, ResidualTCN
from vmr_jax.layers.hashing import hamming_distance, sign_ste, smooth_sign
from vmr_jax.layers.losses import l1_giou_loss, similarity_preserving, temporal_giou
from vmr_jax.layers.mlp import MLP, RReLU


def output_change(model, params, x, mask, clip):
  y = model.apply(params, x, mask)
  x2 = x.at[:, clip].add(1.0)
  return np.abs(np.asarray(model.apply(params, x2, mask) - y)).sum(-1)[0]


@pytest.mark.parametrize("causal", [False, True])
def test_bitcn_receptive_field(causal):
  model = BiTCN(8, num_layers=3, causal=causal)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 40, 4))
  mask = jnp.ones((1, 40), bool)
  params = model.init(jax.random.PRNGKey(1), x, mask)
  assert model.apply(params, x, mask).shape == (1, 40, 8)  # length kept
  moved = output_change(model, params, x, mask, clip=20) > 1e-6
  reach = np.nonzero(moved)[0]
  if causal:  # a clip only moves outputs at or after it, 14 = (3 - 1)(1 + 2 + 4) on
    assert reach.min() == 20 and reach.max() == 34
  else:  # both directions: 7 = (3 - 1)(1 + 2 + 4) / 2 clips each side
    assert reach.min() == 13 and reach.max() == 27


def test_bitcn_ignores_padded_clips():
  model = BiTCN(8)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 20, 4))
  mask = jnp.arange(20)[None] < 12
  params = model.init(jax.random.PRNGKey(1), x, mask)
  y = model.apply(params, x, mask)
  y2 = model.apply(params, x.at[:, 15].add(100.0), mask)
  np.testing.assert_array_equal(y, y2)
  assert (np.asarray(y)[0, 12:] == 0).all()


def test_residual_tcn_is_not_causal_and_masks_padding():
  """The released TCN: level e has two dilation-2^(e-1) convolutions, so kernel 3 over
  2 levels reaches 2 (1 + 2) = 6 clips each side; a padded video equals itself alone."""
  model = ResidualTCN((8, 6), kernel_size=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 40, 4))
  mask = jnp.ones((1, 40), bool)
  params = model.init(jax.random.PRNGKey(1), x, mask)
  reach = np.nonzero(output_change(model, params, x, mask, clip=20) > 0)[0]  # N(0, 0.01) weights
  assert reach.min() == 14 and reach.max() == 26
  short = jnp.arange(40)[None] < 25
  np.testing.assert_allclose(model.apply(params, x.at[:, 25:].set(9.0), short)[0, :25],
                             model.apply(params, x[:, :25], mask[:, :25])[0], atol=1e-6)


def test_smooth_sign_is_an_odd_stand_in_for_sign():
  x = jnp.array([-4.0, -1.0, -0.3, 0.3, 1.0, 4.0])
  y = np.asarray(smooth_sign(x))
  np.testing.assert_allclose(y[[1, 4]], [-1.0, 1.0], atol=1e-4)  # f(+-1) = +-1
  np.testing.assert_allclose(y, -y[::-1], atol=1e-5)
  assert (np.sign(y) == np.sign(np.asarray(x))).all()


def test_sign_ste_forward_and_gradient():
  x = jnp.array([-2.0, -0.1, 0.0, 0.3, 5.0])
  np.testing.assert_array_equal(sign_ste(x), [-1, -1, 1, 1, 1])
  weights = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
  grad = jax.grad(lambda v: (sign_ste(v) * weights).sum())(x)
  identity = jax.grad(lambda v: (v * weights).sum())(x)
  np.testing.assert_array_equal(grad, identity)


def test_hamming_distance():
  a = jnp.array([[1.0, 1, -1, -1]])
  b = jnp.array([[1.0, 1, -1, -1], [-1.0, 1, -1, 1], [-1.0, -1, 1, 1]])
  np.testing.assert_array_equal(hamming_distance(a, b), [[0, 2, 4]])


def test_similarity_preserving_matches_numpy():
  rng = np.random.default_rng(0)
  c, q = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4, 3))
  iou = rng.uniform(size=(2, 5, 4))
  mask = rng.uniform(size=(2, 5, 4)) > 0.3
  got = similarity_preserving(jnp.asarray(c), jnp.asarray(q), jnp.asarray(iou), 3.0,
                              jnp.asarray(mask))
  want = [(((c[b] @ q[b].T - 3.0 * iou[b]) * mask[b]) ** 2).sum() for b in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_rrelu_and_mlp():
  x = jnp.array([-4.0, 2.0])
  np.testing.assert_allclose(RReLU().apply({}, x), [-4.0 * (1 / 8 + 1 / 3) / 2, 2.0])
  y = RReLU().apply({}, x, train=True, rngs={"dropout": jax.random.PRNGKey(0)})
  assert -4 / 3 <= float(y[0]) <= -4 / 8 and float(y[1]) == 2.0
  mlp = MLP((6, 3), activation="relu", last_activation="none")
  params = mlp.init(jax.random.PRNGKey(0), jnp.ones((2, 5)))
  assert mlp.apply(params, jnp.ones((2, 5))).shape == (2, 3)
  with pytest.raises(ValueError, match="activation"):
    MLP((2,), activation="gelu").init(jax.random.PRNGKey(0), jnp.ones((1, 2)))


@pytest.mark.parametrize("pred,target,giou", [
    ((0, 2), (1, 3), 1 / 3),     # overlap: IoU 1/3, the hull is the union
    ((0, 4), (1, 2), 0.25),      # containment
    ((0, 2), (0, 2), 1.0),       # identical
    ((0, 1), (1, 2), 0.0),       # touching: IoU 0, no gap
    ((0, 1), (2, 3), -1 / 3),    # gap of 1 in a hull of 3
    ((0, 1), (9, 10), -0.8),     # gap of 8 in a hull of 10
    ((1, 1), (0, 2), 0.0),       # zero-length prediction inside
    ((1, 1), (1, 1), 0.0),       # both zero-length: defined as 0
])
def test_temporal_giou_hand_table(pred, target, giou):
  got = temporal_giou(jnp.array(pred, jnp.float32), jnp.array(target, jnp.float32))
  assert float(got) == pytest.approx(giou, abs=1e-6)


def test_l1_giou_loss():
  pred = jnp.array([[0.0, 0.5], [0.2, 0.4], [0.9, 0.9]])
  target = jnp.array([[0.0, 0.5], [0.5, 0.7], [0.0, 1.0]])
  mask = jnp.array([True, True, False])
  # row 0: exact (0); row 1: L1 0.6, GIoU -1/5 (gap 0.1, hull 0.5) -> 0.6 + 1.2
  assert float(l1_giou_loss(pred, target, mask)) == pytest.approx((0 + 1.8) / 2, abs=1e-6)
  grads = jax.grad(lambda p: l1_giou_loss(p, target, jnp.ones(3, bool)))(
      jnp.array([[0.3, 0.3], [0.2, 0.4], [0.5, 0.5]]))
  assert np.isfinite(np.asarray(grads)).all()
