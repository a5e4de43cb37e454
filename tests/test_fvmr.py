"""FVMR (paper 002): the masked map convolution, Eq. 3-5 and the losses against numpy
transcriptions, no distillation gradient into the teacher, p-only inference, one-batch
overfitting and the config checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax import registry
from vmr_jax.layers import moment_map
from vmr_jax.models import fvmr
from vmr_jax.tools.random_batch import random_batch
from tests.models import (FEATURE_DIM, VOCAB, overfit_one_batch, small_model,
                          small_model_config, tiny_config)

TEACHER_ONLY = ("phi_u", "fuse_conv", "fuse_gated_conv", "node_gru", "semantic_attention")


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("features,dim,kernel_size", [(2, 3, 3), (2, 8, 3), (1, 6, 5)])
def test_cell_convolution_equals_the_masked_grid_convolution(normalize, features, dim,
                                                             kernel_size):
  """MapConv on the cells = a k x k SAME convolution of the grid holding them (zero
  elsewhere), read at the cells, written with loops over the grid; for outputs as
  wide as the input (gathers, then products) and narrower than half of it (products,
  then gathers)."""
  spans = moment_map.sparse_spans(16, (4, 2))  # sparse: lengths 1-4, then coarser
  cells = moment_map.span_index(16, spans) >= 0
  assert 0 < cells.sum() == len(spans) < 16 * 17 // 2
  values = np.random.default_rng(0).normal(size=(2, len(spans), dim)).astype(np.float32)
  grid = np.zeros((2, 16, 16, dim), np.float32)
  grid[:, spans[:, 0], spans[:, 1]] = values
  conv = moment_map.MapConv(features=features, kernel_size=kernel_size, normalize=normalize)
  neighbours = moment_map.cell_neighbours(16, spans, kernel_size)
  params = conv.init(jax.random.PRNGKey(0), values, neighbours)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
  got = np.asarray(conv.apply(params, jnp.asarray(values), neighbours))
  kernel, bias = (np.asarray(params["params"][k]) for k in ("kernel", "bias"))
  want = np.zeros(got.shape, np.float32)
  half = kernel_size // 2
  for m, (i, j) in enumerate(spans):
    total, count = bias.copy(), 0
    for a in range(kernel_size):
      for b in range(kernel_size):
        y, x = i + a - half, j + b - half
        if 0 <= y < 16 and 0 <= x < 16 and cells[y, x]:
          total = total + grid[:, y, x] @ kernel[a, b]
          count += 1
    want[:, m] = total / count if normalize else total
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def numpy_semantic_feature(params, s, v, n, v_valid, n_valid, edges):
  """Eq. 3-5 for one query, written from the paper with loops."""
  def alpha(level, top, nodes):
    p = params[level]
    return np.array([p["alpha"]["kernel"][:, 0] @ np.tanh(np.concatenate(
        [top @ p["top"]["kernel"], g @ p["low"]["kernel"]])) for g in nodes])

  def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()

  verbs = [i for i in range(len(v)) if v_valid[i]]
  a_v = alpha("verb_importance", s, v)
  summary = sum(w * v[i] for w, i in zip(softmax(a_v[verbs]), verbs))
  a_n = alpha("noun_importance", summary, n)
  phrases = []
  for i in verbs:
    nouns = [j for j in range(len(n)) if n_valid[j] and edges[i, j]]
    b = softmax(np.array([a_v[i]] + [a_n[j] for j in nouns]))
    phrases.append(b[0] * v[i] + sum(w * n[j] for w, j in zip(b[1:], nouns)))
  return s * np.mean(phrases, axis=0)


def test_semantic_guided_attention_matches_eq_3_to_5():
  rng = np.random.default_rng(0)
  d, num_verbs, num_nouns = 6, 3, 4
  # Query 0: two verbs sharing noun 1, a noun left out by the padding; query 1: one
  # verb with one noun; query 2: a one-phrase tree (one verb node, no nouns).
  v_valid = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0]], bool)
  n_valid = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], bool)
  edges = np.zeros((3, num_verbs, num_nouns), bool)
  edges[0, 0, [0, 1]] = edges[0, 1, [1, 2]] = edges[1, 0, 0] = True
  s = rng.normal(size=(3, d)).astype(np.float32)
  v = rng.normal(size=(3, num_verbs, d)).astype(np.float32)
  n = rng.normal(size=(3, num_nouns, d)).astype(np.float32)
  module = fvmr.SemanticGuidedAttention()
  params = module.init(jax.random.PRNGKey(0), s, v, n, v_valid, n_valid, edges)
  got = np.asarray(module.apply(params, s, v, n, v_valid, n_valid, edges))
  numpy_params = jax.tree.map(np.asarray, params["params"])
  for query in range(3):
    want = numpy_semantic_feature(numpy_params, s[query], v[query], n[query],
                                  v_valid[query], n_valid[query], edges[query])
    np.testing.assert_allclose(got[query], want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got[2], s[2] * v[2, 0], rtol=1e-6)  # h = g(v) alone


@pytest.fixture(scope="module")
def model_and_batch():
  """A small FVMR (sparse 32-clip map) with its variables and a random training batch
  whose example 0 is still in the distillation warm-up."""
  config = small_model_config("fvmr")
  batch = random_batch(config, FEATURE_DIM, VOCAB, np.random.default_rng(0))
  batch["query_valid"][1, 2] = False
  batch["epoch"][:] = [0, 5, 5, 5]
  _, model, variables = small_model(config, batch)
  return config, model, jax.tree.map(jnp.asarray, batch), variables


def numpy_distillation(p, t, reading):
  """Eq. 9 for one query's logits `p`, `t` `[M]` under each reading (T = 1)."""
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  softmax = lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()
  bce = lambda prob, target: np.mean(-(target * np.log(prob)
                                       + (1 - target) * np.log(1 - prob)))
  if reading == "sigmoid_bce":
    return bce(sigmoid(p), sigmoid(t))
  if reading == "softmax_bce":
    return bce(softmax(p), softmax(t))
  return -np.sum(softmax(t) * np.log(softmax(p)))


def numpy_loss(outputs, batch, config):
  """Eq. 8-10 from the paper with loops: (total, bce_p, bce_q, distill)."""
  cfg = config.fvmr
  spans = moment_map.sparse_spans(config.data.num_clips, cfg.scale_layers)
  sums, pairs = np.zeros(4), 0
  for b in range(batch["duration"].shape[0]):
    unit = float(batch["duration"][b]) / config.data.num_clips
    for q in range(batch["gt_times"].shape[1]):
      if not batch["query_valid"][b, q]:
        continue
      gs, ge = (float(t) for t in batch["gt_times"][b, q])
      iou = np.array([max(0.0, min(e + 1, ge / unit) - max(s, gs / unit))
                      / (max(e + 1, ge / unit) - min(s, gs / unit)) for s, e in spans])
      y = np.clip((iou - 0.3) / 0.4, 0, 1)
      p, t = (np.asarray(outputs[k][b, q], np.float64) for k in ("p_logits", "q_logits"))
      bce = lambda x: np.mean(-(y * np.log(1 / (1 + np.exp(-x)))
                                + (1 - y) * np.log(1 - 1 / (1 + np.exp(-x)))))
      distill = numpy_distillation(p, t, cfg.distill_loss)
      warm = batch["epoch"][b] >= cfg.distill_warmup_epochs
      sums += [bce(p) + bce(t) + 3.0 * warm * distill, bce(p), bce(t), distill]
      pairs += 1
  return sums / pairs


@pytest.mark.parametrize("reading", ["sigmoid_bce", "softmax_ce", "softmax_bce"])
def test_loss_matches_eq_8_to_10_with_the_warm_up(model_and_batch, reading):
  config, model, batch, variables = model_and_batch
  config.fvmr.distill_loss = reading
  outputs, _ = jax.jit(lambda v, b: model.module.apply(v, b, train=True, mutable=[
      "batch_stats"]))(variables, batch)
  total, terms = fvmr.loss(outputs, batch, config)
  want = numpy_loss(jax.tree.map(np.asarray, outputs), jax.tree.map(np.asarray, batch),
                    config)
  got = [float(total), *(float(terms[k]) for k in ("bce_p", "bce_q", "distill"))]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert want[0] < want[1] + want[2] + 3 * want[3]  # example 0 is still warming up


def test_distillation_sends_no_gradient_to_the_teacher(model_and_batch):
  config, model, batch, variables = model_and_batch

  def distill(params):
    outputs, _ = model.module.apply({**variables, "params": params}, batch, train=True,
                                    mutable=["batch_stats"])
    return fvmr.loss(outputs, batch, config)[1]["distill"]

  grads = jax.jit(jax.grad(distill))(variables["params"])
  for name in TEACHER_ONLY:
    assert all(not np.any(g) for g in jax.tree.leaves(grads[name])), name
  for name in ("phi_s", "phi_m", "map_conv_0", "text_encoder"):
    assert any(np.any(g) for g in jax.tree.leaves(grads[name])), name


def test_inference_uses_p_alone(model_and_batch):
  config, model, batch, variables = model_and_batch
  apply = jax.jit(model.module.apply)
  outputs = apply(variables, batch)
  assert set(outputs) == {"p_logits", "moment_embeddings", "query_embeddings"}  # no teacher
  np.testing.assert_allclose(outputs["p_logits"], np.einsum(
      "bmd,bqd->bqm", outputs["moment_embeddings"], outputs["query_embeddings"]),
      rtol=1e-5, atol=1e-5)
  trees_removed = {k: v for k, v in batch.items() if k not in fvmr.TREE_KEYS}
  np.testing.assert_array_equal(apply(variables, trees_removed)["p_logits"],
                                outputs["p_logits"])
  ranked = np.asarray(fvmr.decode(outputs, batch, config))
  best = np.asarray(outputs["p_logits"]).argmax(-1)
  spans = moment_map.sparse_spans(32, (16, 8))
  unit = np.asarray(batch["duration"])[:, None] / 32
  np.testing.assert_allclose(ranked[..., 0, 0], spans[best, 0] * unit, rtol=1e-5)
  np.testing.assert_allclose(ranked[..., 0, 1], (spans[best, 1] + 1) * unit, rtol=1e-5)


def test_teacher_without_trees_is_an_error(model_and_batch):
  _, model, batch, variables = model_and_batch
  with pytest.raises(ValueError, match="srl_file"):
    model.module.apply(variables, {k: v for k, v in batch.items() if k != "role_edges"},
                       train=True, mutable=["batch_stats"])


def test_one_batch_overfits(fvmr_config):
  """In the warm-up (epoch 0): the two BCE terms. The distillation term is bounded
  below by the teacher's entropy, nearly log M while the teacher is untrained; its
  value and gradients are checked above."""
  losses, recall = overfit_one_batch(fvmr_config, 300, 3e-3)
  assert losses[-1] < 0.6 * losses[0], losses[::30]
  assert recall >= 0.6, recall


def test_config_checks(tiny_data_dir, tiny_release):
  info = registry.DataInfo(16, ["a"], None)
  config = tiny_config("fvmr", tiny_data_dir, tiny_release)
  config.text.encoder = "bert"
  with pytest.raises(ValueError, match="GloVe"):
    fvmr.create(config, info)
  config = tiny_config("fvmr", tiny_data_dir, tiny_release)
  config.fvmr.scale_layers = (16, 8)  # pools past the 16 clips
  with pytest.raises(ValueError, match="pool past"):
    fvmr.create(config, info)
