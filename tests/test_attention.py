import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax.layers.attention import MultiHeadAttention


def reference(params, query, key_value, mask, heads, similarity):
  """Multi-head attention in numpy, from the projections' kernels and biases."""
  dense = lambda name, x: x @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])
  split = lambda x: x.reshape(*x.shape[:-1], heads, -1)
  q, k, v = (split(dense(n, x)) for n, x in (("query", query), ("key", key_value),
                                            ("value", key_value)))
  if similarity == "cosine":
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    logits = np.einsum("bqhd,bkhd->bhqk", unit(q), unit(k)) / np.exp(
        float(params["log_temperature"]))
  else:
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
  logits = np.where(mask[:, None, None, :], logits, -np.inf)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  out = np.einsum("bhqk,bkhd->bqhd", weights, v).reshape(*query.shape)
  return dense("output", out)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_matches_numpy_reference_and_ignores_padded_keys(similarity):
  rng = np.random.default_rng(0)
  query = rng.normal(size=(2, 3, 8)).astype(np.float32)
  key_value = rng.normal(size=(2, 5, 8)).astype(np.float32)
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
  layer = MultiHeadAttention(num_heads=2, similarity=similarity, temperature_init=0.2)
  params = layer.init(jax.random.PRNGKey(0), query, key_value, mask)
  got = np.asarray(layer.apply(params, query, key_value, mask))
  want = reference(params["params"], query, key_value, mask, 2, similarity)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  changed = key_value.copy()
  changed[0, 3:] = 1e3  # padded keys of video 0
  np.testing.assert_allclose(np.asarray(layer.apply(params, query, changed, mask))[0],
                             got[0], rtol=1e-6)


def test_cosine_temperature_is_learned_and_positive():
  layer = MultiHeadAttention(num_heads=1, similarity="cosine", temperature_init=0.2)
  x = jnp.ones((1, 2, 4))
  params = layer.init(jax.random.PRNGKey(0), x, x, jnp.ones((1, 2), bool))
  assert float(jnp.exp(params["params"]["log_temperature"])) == pytest.approx(0.2)
  with pytest.raises(ValueError, match="similarity"):
    MultiHeadAttention(num_heads=1, similarity="l2").init(jax.random.PRNGKey(0), x, x,
                                                          jnp.ones((1, 2), bool))


def test_sinusoidal_encoding():
  from vmr_jax.layers.attention import sinusoidal_encoding
  got = np.asarray(sinusoidal_encoding(jnp.arange(5), 6))
  p, i = np.arange(5)[:, None], np.arange(3)[None]
  angles = p / 10000 ** (2 * i / 6)
  np.testing.assert_allclose(got[:, 0::2], np.sin(angles), atol=1e-6)
  np.testing.assert_allclose(got[:, 1::2], np.cos(angles), atol=1e-6)


def test_transformer_layer_cross_attention_ignores_padded_context():
  from vmr_jax.layers.attention import TransformerLayer
  rng = np.random.default_rng(0)
  x, context = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 5, 8))
  mask, context_mask = np.ones((2, 3), bool), np.array([[1, 1, 0, 0, 0], [1] * 5], bool)
  layer = TransformerLayer(num_heads=2, mlp_dim=16)
  params = layer.init(jax.random.PRNGKey(0), x, mask, context=context,
                      context_mask=context_mask)
  got = layer.apply(params, x, mask, context=context, context_mask=context_mask)
  changed = context.copy()
  changed[0, 2:] = 1e3
  again = layer.apply(params, x, mask, context=changed, context_mask=context_mask)
  np.testing.assert_allclose(np.asarray(again), np.asarray(got), rtol=1e-6)
  assert got.shape == (2, 3, 8)


def test_gated_cross_attention_matches_eq_4_to_6_and_ignores_padded_keys():
  from vmr_jax.layers.attention import GatedCrossAttention
  rng = np.random.default_rng(1)
  query = rng.normal(size=(2, 3, 8)).astype(np.float32)
  key_value = rng.normal(size=(2, 6, 8)).astype(np.float32)
  mask = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
  layer = GatedCrossAttention(num_heads=4)
  params = layer.init(jax.random.PRNGKey(3), query, key_value, mask)["params"]
  # Random biases, so a gate/information bias mix-up shows.
  params = {**params, "gate_bias": rng.normal(size=8).astype(np.float32),
            "info_bias": rng.normal(size=8).astype(np.float32)}
  got = np.asarray(layer.apply({"params": params}, query, key_value, mask))
  cma = reference(params["attention"], query, key_value, mask, 4, "dot")  # Eq. 4-5
  mixed = (query @ np.asarray(params["query_proj"]["kernel"])
           + cma @ np.asarray(params["attended_proj"]["kernel"]))  # shared W_q, W_v
  gate = 1 / (1 + np.exp(-(mixed + params["gate_bias"])))
  want = gate * (mixed + params["info_bias"])  # Eq. 6
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  assert set(params) == {"attention", "query_proj", "attended_proj", "gate_bias",
                         "info_bias"}
  changed = key_value.copy()
  changed[0, 2:] = -1e3  # padded keys of example 0
  np.testing.assert_allclose(
      np.asarray(layer.apply({"params": params}, query, changed, mask))[0], got[0],
      rtol=1e-6)


def test_gated_transformer_layer_is_the_cross_modal_encoder():
  """Eq. 7-8: x + CGA(x, context) -> LayerNorm -> + FFN -> LayerNorm."""
  from vmr_jax.layers.attention import GatedCrossAttention, TransformerLayer
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 3, 8)).astype(np.float32)
  context = rng.normal(size=(2, 5, 8)).astype(np.float32)
  mask, context_mask = np.ones((2, 3), bool), np.array([[1] * 5, [1, 1, 0, 0, 0]], bool)
  layer = TransformerLayer(num_heads=2, mlp_dim=16, gated=True)
  params = layer.init(jax.random.PRNGKey(0), x, mask, context=context,
                      context_mask=context_mask)["params"]
  got = layer.apply({"params": params}, x, mask, context=context, context_mask=context_mask)
  attended = GatedCrossAttention(2).apply({"params": params["attention"]}, x, context,
                                          context_mask)
  norm = lambda name, y: nn.LayerNorm(1e-6).apply({"params": params[name]}, y)
  h = norm("attention_norm", x + attended)
  ffn = nn.Dense(8).apply({"params": params["output"]},
                          jax.nn.relu(nn.Dense(16).apply({"params": params["intermediate"]}, h)))
  np.testing.assert_allclose(got, norm("output_norm", h + ffn), rtol=1e-5, atol=1e-5)
