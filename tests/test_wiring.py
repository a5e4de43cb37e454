"""Wiring tests: they fail when a paper's structure is broken, not only when a shape is.

- Padding is invisible: changing what padded words, queries, examples and clips
  hold, or adding more padded slots, changes no model's loss or decoded moments.
- HSCNet grounds a sentence in its paragraph: removing a sibling sentence moves it.
- FIAN's two iterative branches are Eq. 9 and Eq. 10, not one branch twice.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax import sharding
from vmr_jax.layers.attention import TransformerLayer

from tests.models import VARIANTS, VOCAB, small_model, small_model_config, small_padded_batch

TOKEN_KEYS = ("query_tokens", "verb_tokens", "noun_tokens")


def loss_and_moments(config, batch):
  """The loss and the decoded moments of the real queries, in one jitted program. The
  loss is the training one (the small configs have no dropout) except for CMHN and
  CLEAR's released reading, whose RReLU draws random slopes in training by the shape
  of its input."""
  spec, model, variables = small_model(config, batch)
  rrelu = config.model == "cmhn" or config[config.model].get("reading") == "released"

  @jax.jit
  def forward(variables, batch):
    outputs, _ = model.module.apply(variables, batch, train=not rrelu,
                                    mutable=["batch_stats"])
    ranked = spec.decode(model.module.apply(variables, batch), batch, config)
    return spec.loss(outputs, batch, config)[0], ranked

  def run(batch):
    loss, ranked = forward(variables, sharding.numeric(batch))
    return float(loss), np.asarray(ranked)[real_queries(batch)]
  return run


def real_queries(batch):
  """`[B, Q]` (or `[B]`) real queries of a batch."""
  if "query_valid" in batch:
    return batch["query_valid"] & batch["example_valid"][:, None]
  return batch["example_valid"]


def scramble_padding(batch, seed=7):
  """The batch with new random contents wherever it is padding."""
  rng = np.random.default_rng(seed)
  out = {k: np.array(v) for k, v in batch.items()}
  real = real_queries(out)
  for key in TOKEN_KEYS:
    if key in out:
      junk = rng.integers(2, VOCAB, out[key].shape).astype(out[key].dtype)
      padded = ~real.reshape(real.shape + (1,) * (out[key].ndim - real.ndim))
      if key == "query_tokens":
        padded = padded | ~out["query_mask"]
      out[key] = np.where(padded, junk, out[key])
  out["gt_times"] = np.where(real[..., None], out["gt_times"],
                             rng.uniform(0, 5, out["gt_times"].shape).astype(np.float32))
  junk_clips = ~out["video_mask"] | ~out["example_valid"][:, None]
  out["video_feats"] = np.where(junk_clips[..., None],
                                rng.normal(size=out["video_feats"].shape) * 30,
                                out["video_feats"]).astype(np.float32)
  return out


@pytest.mark.parametrize("name", VARIANTS)
def test_what_padding_holds_changes_nothing(name):
  config = small_model_config(name)
  batch = small_padded_batch(config)
  run = loss_and_moments(config, batch)
  loss, moments = run(batch)
  loss2, moments2 = run(scramble_padding(batch))
  assert loss2 == pytest.approx(loss, rel=1e-5)
  np.testing.assert_allclose(moments2, moments, rtol=1e-5, atol=1e-5)


def grow(x, axis, n, fill=0):
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, n)
  return np.pad(x, pad, constant_values=fill)


@pytest.mark.parametrize("name", [m for m in VARIANTS if m != "fian"])
def test_more_padded_slots_change_nothing(name):
  """Two more padded word slots and query slots (word slots alone in a batch of one
  query per example), and for HSCNet three more padded clips. (FIAN's Eq. 11 maps the n_q word slots onto the clips with weights sized by
  n_q; CMHN's strided windows are laid on the clip grid, so a longer grid moves
  them.)"""
  config = small_model_config(name)
  batch = small_padded_batch(config)
  run = loss_and_moments(config, batch)
  loss, moments = run(batch)
  padded = {k: np.array(v) for k, v in batch.items()}
  for key in ("query_tokens", "query_mask"):
    padded[key] = grow(padded[key], padded[key].ndim - 1, 2)
  if "query_valid" in batch:  # query slots
    for key in ("query_tokens", "query_mask", "verb_tokens", "noun_tokens", "role_edges",
                "gt_times"):
      if key in padded:
        padded[key] = grow(padded[key], 1, 2)
    padded["query_valid"] = grow(padded["query_valid"], 1, 2, False)
  if name == "hscnet":
    for key in ("video_feats", "video_mask"):
      padded[key] = grow(padded[key], 1, 3)
  loss2, moments2 = run(padded)
  assert loss2 == pytest.approx(loss, rel=1e-5)
  np.testing.assert_allclose(moments2, moments, rtol=1e-4, atol=1e-4)


def test_hscnet_grounds_a_sentence_in_its_paragraph():
  """Removing sentence 1 of a paragraph moves sentence 0's span (its words are
  unchanged): the sentence and paragraph levels reach the final decoder."""
  config = small_model_config("hscnet")
  batch = small_padded_batch(config)
  _, model, variables = small_model(config, batch)
  apply = jax.jit(model.module.apply)
  spans = np.asarray(apply(variables, sharding.numeric(batch))["spans"])
  alone = dict(batch, query_valid=np.array(batch["query_valid"]))
  alone["query_valid"][0, 1] = False
  spans_alone = np.asarray(apply(variables, sharding.numeric(alone))["spans"])
  assert np.abs(spans_alone[0, 0] - spans[0, 0]).max() > 1e-3
  np.testing.assert_allclose(spans_alone[2], spans[2], rtol=1e-6)  # other paragraphs


def test_fian_iterative_branches_are_eq_9_and_eq_10():
  """Q1 = Enc(Q, V), V1 = Enc(V, Q1) and V2 = Enc(V, Q), Q2 = Enc(Q, V2), each encoder
  with its own parameters, recomputed from the model's own intermediate features;
  the two branches differ, so swapping them changes the scores."""
  config = small_model_config("fian")
  batch = jax.tree.map(jnp.asarray, small_padded_batch(config))
  _, model, variables = small_model(config, batch)
  outputs, state = jax.jit(lambda v, b: model.module.apply(
      v, b, capture_intermediates=True, mutable=["intermediates"]))(variables, batch)
  seen = state["intermediates"]
  words, video = seen["text_encoder"]["__call__"][0][0], seen["video_gru"]["__call__"][0][0]
  word_mask, clip_mask = batch["query_mask"], batch["video_mask"]
  cfg = config.fian
  params = variables["params"]

  def encoder(name, x, x_mask, context, context_mask):
    return TransformerLayer(cfg.num_heads, cfg.mlp_dim, cfg.dropout, cfg.dropout,
                            gated=True).apply({"params": params[name]}, x, x_mask,
                                              context=context, context_mask=context_mask)

  q1 = encoder("qv_query", words, word_mask, video, clip_mask)
  v1 = encoder("qv_video", video, clip_mask, q1, word_mask)
  v2 = encoder("vq_video", video, clip_mask, words, word_mask)
  q2 = encoder("vq_query", words, word_mask, v2, clip_mask)
  for name, want in (("qv_query", q1), ("qv_video", v1), ("vq_video", v2), ("vq_query", q2)):
    np.testing.assert_allclose(seen[name]["__call__"][0], want, rtol=1e-5, atol=1e-5,
                               err_msg=name)
  assert np.abs(np.asarray(v1 - v2)).max() > 1e-3
  swapped = dict(params, qv_query=params["vq_query"], vq_query=params["qv_query"],
                 qv_video=params["vq_video"], vq_video=params["qv_video"])
  logits = jax.jit(model.module.apply)({"params": swapped}, batch)["logits"]
  assert np.abs(np.asarray(logits - outputs["logits"])).max() > 1e-4
