"""Every PyTorch twin computes what its Flax model computes: with the Flax variables
copied in (`twins.convert.load_flax`), on the same padded batch, the loss
and its terms, every parameter's gradient and the decoded moments agree within 1e-4
(float32). Run them with `pytest -k twin`."""

import jax
import numpy as np
import pytest

from vmr_jax import registry
from vmr_jax.tools import twins
from vmr_jax.layers import losses
from vmr_jax.models import clear
from vmr_jax.tools.twins import convert

from tests.models import (FEATURE_DIM, VOCAB, small_model, small_model_config,
                          small_padded_batch)

torch = pytest.importorskip("torch")
from vmr_jax.tools.twins import fvmr as torch_fvmr  # noqa: E402 (needs torch)


def jax_run(config, model, variables, batch, train):
  """(loss, terms, grads, new batch_stats, and decoded moments and evaluation outputs
  with the new statistics)."""
  def loss_fn(params):
    outputs, updates = model.module.apply({**variables, "params": params}, batch,
                                          train=train, mutable=["batch_stats"])
    loss, terms = registry.for_config(config).loss(outputs, batch, config)
    return loss, (terms, updates)
  (loss, (terms, updates)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      variables["params"])
  outputs = jax.jit(model.module.apply)({**variables, **updates}, batch)
  ranked = registry.for_config(config).decode(outputs, batch, config)
  return loss, terms, grads, updates.get("batch_stats", {}), ranked, outputs


def torch_run(twin, batch, train, double=False):
  twin.train(train)
  tensors = twins.to_torch(batch)
  if double:
    tensors = {k: v.double() if v.is_floating_point() else v for k, v in tensors.items()}
  loss, terms = twin.loss(twin(tensors), tensors)
  loss.backward()
  twin.eval()
  with torch.no_grad():
    ranked = twin.decode(twin(tensors), tensors)
  return loss, terms, ranked


def valid_rows(batch, ranked):
  ranked = np.asarray(ranked)
  if "query_valid" in batch:
    return ranked[batch["query_valid"] & batch["example_valid"][:, None]]
  return ranked[batch["example_valid"]]


def check_twin(config, batch, train=False, double=False):
  """`double`: the twin in float64, for a twin whose float32 rounding alone exceeds
  the tolerances (the JAX side stays float32)."""
  _, model, variables = small_model(config, batch)
  variables = jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(1),
                                                                  x.shape), variables)
  twin = twins.create(config, FEATURE_DIM, VOCAB)
  convert.load_flax(twin, variables)
  if double:
    twin.double()
  loss, terms, grads, stats, ranked, outputs = jax_run(config, model, variables, batch,
                                                       train)
  t_loss, t_terms, t_ranked = torch_run(twin, batch, train, double)

  assert t_loss.item() == pytest.approx(float(loss), rel=1e-4, abs=1e-4)
  for name, value in terms.items():
    assert t_terms[name].item() == pytest.approx(float(value), rel=1e-4, abs=1e-4), name
  t_grads = convert.to_flax(twin, grads, "grad")
  flat, t_flat = (dict(jax.tree_util.tree_leaves_with_path(g)) for g in (grads, t_grads))
  assert flat.keys() == t_flat.keys()
  scale = max(float(np.abs(np.asarray(g)).max()) for g in flat.values())
  for path, g in flat.items():
    g, t = np.asarray(g), np.asarray(t_flat[path])
    name = jax.tree_util.keystr(path)
    assert np.linalg.norm(t) == pytest.approx(np.linalg.norm(g), rel=1e-4, abs=1e-6 * scale), name
    np.testing.assert_allclose(t, g, rtol=1e-3, atol=1e-5 * scale, err_msg=name)
  if stats:
    t_stats = convert.to_flax(twin, stats, "param")
    for (path, s), t in zip(jax.tree_util.tree_leaves_with_path(stats),
                            jax.tree_util.tree_leaves(t_stats)):
      np.testing.assert_allclose(t, s, rtol=1e-4, atol=1e-6, err_msg=jax.tree_util.keystr(path))
  for got, want in zip(valid_rows(batch, t_ranked.numpy()), valid_rows(batch, ranked)):
    assert_same_ranking(got, want)
  return terms, outputs


def assert_same_ranking(got, want, tol=1e-4):
  """Ranked `[K, 3]` moments of one query: the same scores, and the same moments
  where scores differ; moments whose scores tie within `tol` may come in either
  order."""
  finite = np.isfinite(want[:, 2])
  np.testing.assert_array_equal(np.isfinite(got[:, 2]), finite)
  got, want = got[finite], want[finite]
  np.testing.assert_allclose(got[:, 2], want[:, 2], rtol=tol, atol=tol)
  tie = np.diff(want[:, 2]) > -tol
  group = np.concatenate([[0], np.cumsum(~tie)])  # runs of tied scores
  for g in np.unique(group):
    rows = group == g
    np.testing.assert_allclose(np.sort(got[rows, :2], 0), np.sort(want[rows, :2], 0),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction,code_scale", [("sum", "none"), ("mean", "none"),
                                                   ("sum", "l2")])
def test_cmhn_twin(reduction, code_scale):
  config = small_model_config("cmhn/paper")
  config.cmhn.loss_reduction, config.cmhn.code_scale = reduction, code_scale
  check_twin(config, small_padded_batch(config))


def test_cmhn_released_twin():
  """The released reading against a twin written from the authors' code, run one
  video at a time on its own clips (so the padded video checks our masking too)."""
  config = small_model_config("cmhn/released")
  config.cmhn.tcn_kernel = 5  # padding 2 and 4 per side: a mask bug would leak
  # Float64 twin: the summed loss (~2,700 here) leaves the float32 twin's query-side
  # gradients 4e-4 from its own float64 run, while ours stay within 1e-6 of it.
  check_twin(config, small_padded_batch(config), double=True)


def test_cmhn_released_twin_duplicate_sentences():
  """TACoS's release: each sentence's targets are the max IoU over its windows
  (`gt_windows`, `data.duplicate_sentences = "merge"`)."""
  config = small_model_config("cmhn/released")
  batch = small_padded_batch(config)
  rng = np.random.default_rng(3)
  duration = batch["duration"][:, None, None, None]
  starts = rng.uniform(0, 0.7, (*batch["gt_times"].shape[:2], 3, 1)) * duration
  windows = np.concatenate([starts, starts + 0.3 * duration], -1).astype(np.float32)
  batch = {**batch, "gt_windows": windows, "gt_times": windows[:, :, 0]}
  check_twin(config, batch, double=True)


def test_clear_released_twin():
  """The released reading against a twin written from the authors' code (CSUN_T).
  Evaluation mode: RReLU draws its training slopes from each framework's own random
  stream (the Flax model's from the "dropout" rng, which `jax_run` does not pass), so
  only its mean slope can agree; with dropout 0 nothing else depends on the mode."""
  config = small_model_config("clear/released")
  batch = small_padded_batch(config)
  assert batch["video_mask"].all()  # the release's videos are never padded
  check_twin(config, batch)


@pytest.mark.parametrize("branch", ["scale", "both"])
def test_clear_released_twin_inference_rule(branch):
  """The rule of `utils/inference.py` on some queries: "scale": mu <= e <= rho for
  all (row N - 4 scaled by 10, its cells ranked first); "both": rho between the two
  largest e of the valid queries, so one takes the e > rho branch (the release's
  scaling of a masked cell: no change) and the others the scaling (here a twin
  reading e on the batch's first video, as the release does, would scale one less)."""
  from vmr_jax.models import clear_released
  config = small_model_config("clear/released")
  batch = small_padded_batch(config)
  config.clear.mu, config.clear.rho = -1e9, 1e9
  if branch == "both":  # e of the perturbed variables `check_twin` runs on
    _, model, variables = small_model(config, batch)
    variables = jax.tree.map(
        lambda x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(1), x.shape), variables)
    outputs = jax.jit(model.module.apply)(variables, batch)
    c = np.einsum("bd,bad->ba", outputs["sentences"], outputs["anchors"])
    a = config.clear.rule_anchor
    e = np.sort(((c[:, -1] - c[:, a]) / c[:, a])[batch["example_valid"]])
    config.clear.rho = float(e[-2] + e[-1]) / 2
  _, outputs = check_twin(config, batch)
  applies = np.asarray(clear_released.rule_applies(outputs, config))[batch["example_valid"]]
  assert applies.any()
  assert applies.all() == (branch == "scale")


@pytest.mark.parametrize("search", ["exhaustive", "pruned"])
def test_clear_twin(search):
  config = small_model_config("clear/paper")
  config.clear.search = search
  config.clear.mu, config.clear.rho = -1.0, 1e6  # walk the tree down to its leaves
  _, outputs = check_twin(config, small_padded_batch(config), train=True)  # loss: the whole map
  if search == "pruned":  # both buckets of the search: whole-map and gathered nodes
    large = clear.search_layout(12, config.clear.tree_layers).large[np.asarray(outputs["node"])]
    assert large.any() and not large.all()


def test_clear_twin_tree_walk_and_nodes_on_random_similarities():
  """The twin's Algorithm 1 and node tables against the model's on every kind of node
  (the padded batch above reaches only a few of them)."""
  from vmr_jax.tools.twins import clear as torch_clear
  rng = np.random.default_rng(0)
  similarity = rng.normal(size=(500, 2 * 4 - 1)).astype(np.float32)
  reached = set()
  for mu, rho in [(0.015, 0.02), (-0.3, 0.3)]:  # the second reaches the between nodes
    want = np.asarray(clear.tree_search(similarity, 4, mu, rho))
    got = [torch_clear.walk_tree(torch.as_tensor(s), 4, mu, rho) for s in similarity]
    np.testing.assert_array_equal(got, want)
    reached |= set(want.tolist())
  assert set(range(9)) <= reached  # every node but the deepest between
  nodes = clear.tree_nodes(12, 4)
  for k, cells in enumerate(torch_clear.node_cells(12, 4)):
    assert sorted(cells) == np.flatnonzero(nodes[k]).tolist()


def test_fvmr_twin_with_2dtan_frame_layer():
  config = small_model_config("fvmr/2dtan")
  config.fvmr.scale_layers = (8, 4)  # the 32 clips make a 16-clip map
  check_twin(config, small_padded_batch(config), train=True)


def test_fvmr_twin_in_training_mode():
  """Training mode: BatchNorm on the batch's statistics (and their running update),
  the teacher and the distillation (example 0 still warming up), in the configs'
  reading of Eq. 9; the other readings change only the distillation term (next test)."""
  config = small_model_config("fvmr")
  config.fvmr.distill_warmup_epochs = 8
  terms, _ = check_twin(config, small_padded_batch(config), train=True)
  assert float(terms["distill"]) > 0


@pytest.mark.parametrize("reading", losses.DISTILLATIONS)
def test_fvmr_twin_distillation_in_every_reading(reading):
  """Each reading of Eq. 9 (the only part of the loss it changes): the same values and
  the same gradient with respect to the student's logits, none to the teacher's.
  With the model's own gradients checked above, the parameters' gradients agree too."""
  rng = np.random.default_rng(0)
  student, teacher = (rng.normal(size=(3, 4, 10)).astype(np.float32) * 3 for _ in range(2))
  value, (grad, teacher_grad) = jax.value_and_grad(
      lambda s, t: losses.distillation(s, t, 2.0, reading).sum(), argnums=(0, 1))(
          student, teacher)
  s, t = (torch.tensor(x, requires_grad=True) for x in (student, teacher))
  t_value = torch_fvmr.distillation(s, t.detach(), 2.0, reading).sum()
  t_value.backward()
  assert t_value.item() == pytest.approx(float(value), rel=1e-5)
  np.testing.assert_allclose(s.grad.numpy(), grad, rtol=1e-4, atol=1e-7)
  assert not np.asarray(teacher_grad).any()


def test_hscnet_twin():
  config = small_model_config("hscnet")
  check_twin(config, small_padded_batch(config))


def test_fian_twin():
  config = small_model_config("fian")
  check_twin(config, small_padded_batch(config))


def test_twin_loading_names_what_is_missing():
  config = small_model_config("fian")
  batch = small_padded_batch(config)
  params = small_model(config, batch)[2]["params"]
  twin = twins.create(config, FEATURE_DIM, VOCAB)
  with pytest.raises(ValueError, match="no value for the twin's .*filter"):
    convert.load_flax(twin, {"params": {k: v for k, v in params.items() if k != "filter"}})
  with pytest.raises(ValueError, match="extra has no place in the twin"):
    convert.load_flax(twin, {"params": {**params, "extra": {"kernel": np.zeros((2, 2))}}})
