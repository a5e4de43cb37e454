"""Compute dtypes (`vmr_jax.precision`): what is cast and what is not, the shared
layers in bfloat16 (attention, recurrent layers, position encodings, map
convolutions), one bfloat16 train step of every model against float32, and a
bfloat16 training run that lands where the float32 one does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax import evaluate, precision, sharding, train
from vmr_jax.layers import moment_map
from vmr_jax.layers.attention import MultiHeadAttention, masked_softmax, sinusoidal_encoding
from vmr_jax.layers.rnn import BiRNN

from tests.models import VARIANTS, small_model, small_model_config, small_padded_batch



def test_an_unknown_compute_dtype_is_an_error_naming_the_choices():
  config = small_model_config("cmhn")
  config.train.compute_dtype = "float16"
  with pytest.raises(ValueError, match=r"compute_dtype must be one of \('float32', 'bfloat16'\)"):
    train.make_train_step(None, None, config, None)


def test_float32_returns_every_leaf_unchanged():
  variables = {"params": {"w": jnp.ones(3)}, "batch_stats": {"mean": jnp.zeros(3)}}
  batch = {"video_feats": jnp.ones((1, 2, 3)), "duration": jnp.ones(1)}
  for tree, cast in ((variables, precision.cast_variables(variables, jnp.float32)),
                     (batch, precision.cast_batch(batch, jnp.float32)),
                     (batch, precision.to_float32(batch))):
    assert all(a is b for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(cast)))


def test_bfloat16_casts_the_params_and_the_features_only():
  variables = {"params": {"dense": {"kernel": jnp.ones((2, 2))}},
               "batch_stats": {"norm": {"mean": jnp.zeros(2)}}}
  cast = precision.cast_variables(variables, jnp.bfloat16)
  assert cast["params"]["dense"]["kernel"].dtype == jnp.bfloat16
  assert cast["batch_stats"]["norm"]["mean"].dtype == jnp.float32
  batch = {"video_feats": np.ones((1, 2, 3), np.float32), "video_mask": np.ones((1, 2), bool),
           "duration": np.full(1, 201.3, np.float32), "gt_times": np.ones((1, 2, 2), np.float32),
           "query_tokens": np.ones((1, 2, 4), np.int32)}
  cast = precision.cast_batch(batch, jnp.bfloat16)
  assert {k: str(v.dtype) for k, v in cast.items()} == {
      "video_feats": "bfloat16", "video_mask": "bool", "duration": "float32",
      "gt_times": "float32", "query_tokens": "int32"}
  outputs = precision.to_float32({"logits": jnp.ones(2, jnp.bfloat16),
                                  "mask": jnp.ones(2, bool), "node": jnp.ones(2, jnp.int32)})
  assert {k: str(v.dtype) for k, v in outputs.items()} == {
      "logits": "float32", "mask": "bool", "node": "int32"}


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_attention_in_bfloat16_with_a_fully_masked_row(similarity):
  """bfloat16 in, bfloat16 out, near the float32 result; a query whose keys are all
  masked still attends uniformly (the dtype's most negative logit, no NaN)."""
  rng = np.random.default_rng(0)
  query = rng.normal(size=(2, 3, 8)).astype(np.float32)
  key_value = rng.normal(size=(2, 5, 8)).astype(np.float32)
  mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
  layer = MultiHeadAttention(num_heads=2, similarity=similarity)
  variables = layer.init(jax.random.PRNGKey(0), query, key_value, mask)
  want = np.asarray(layer.apply(variables, query, key_value, mask))
  got = layer.apply(precision.cast_variables(variables, jnp.bfloat16),
                    query.astype(jnp.bfloat16), key_value.astype(jnp.bfloat16), mask)
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=0.05, atol=0.05)
  weights = masked_softmax(jnp.ones((2, 4), jnp.bfloat16), jnp.array([[1, 1, 0, 0], [0] * 4], bool))
  np.testing.assert_array_equal(np.asarray(weights, np.float32), [[0.5, 0.5, 0, 0], [0] * 4])


def test_recurrent_layers_and_position_encodings_in_bfloat16():
  """BiRNN keeps its state in float32 and returns the inputs' dtype; position
  encodings are computed from float32 angles (bfloat16 would round position 301 to
  300) and returned in the dtype asked for."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 40, 6)).astype(np.float32)
  mask = np.arange(40)[None] < np.array([40, 17, 1])[:, None]
  rnn = BiRNN(5, 2, "gru")
  variables = rnn.init(jax.random.PRNGKey(0), x, mask)
  want, want_final = rnn.apply(variables, x, mask)
  got, final = rnn.apply(precision.cast_variables(variables, jnp.bfloat16),
                         x.astype(jnp.bfloat16), mask)
  assert got.dtype == final.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(got, np.float32), want, atol=0.05)
  np.testing.assert_allclose(np.asarray(final, np.float32), want_final, atol=0.05)
  encoding = sinusoidal_encoding(jnp.array([301]), 8, jnp.bfloat16)
  assert encoding.dtype == jnp.bfloat16
  np.testing.assert_array_equal(encoding, sinusoidal_encoding(jnp.array([301]), 8).astype(
      jnp.bfloat16))


@pytest.mark.parametrize("features", [8, 2])  # gathers then products; products then gathers
def test_map_convolution_in_bfloat16(features):
  """Both orders of MapConv's window sums return bfloat16 near the float32 result
  (the sums themselves are float32)."""
  spans = moment_map.sparse_spans(16, (8, 4))
  neighbours = moment_map.cell_neighbours(16, spans, 5)
  cells = np.random.default_rng(0).normal(size=(2, len(spans), 8)).astype(np.float32)
  conv = moment_map.MapConv(features, 5, normalize=False)
  variables = conv.init(jax.random.PRNGKey(0), cells, neighbours)
  want = np.asarray(conv.apply(variables, cells, neighbours))
  got = conv.apply(precision.cast_variables(variables, jnp.bfloat16),
                   cells.astype(jnp.bfloat16), neighbours)
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=0.02, atol=0.05)


@pytest.mark.parametrize("name", VARIANTS)
def test_one_bfloat16_train_step_of_every_model(name):
  """The same state and padded batch through the trainer's step in both dtypes: the
  bfloat16 loss is within 1% of the float32 one (bfloat16 keeps 8 significant bits,
  ~0.4% per rounding, and the losses average many terms), the gradient norm within
  20% (a gradient sums products of rounded activations), and the parameters and Adam
  moments stay float32 and finite."""
  config = small_model_config(name)
  batch = jax.tree.map(jnp.asarray, small_padded_batch(config))
  spec, model, variables = small_model(config, batch)
  state, lr_fn = train.initial_state(model, variables, config)
  results = {}
  for dtype in ("float32", "bfloat16"):
    config.train.compute_dtype = dtype
    results[dtype] = jax.jit(train.make_train_step(model, spec, config, lr_fn))(state, batch)
  (_, want), (new_state, got) = results["float32"], results["bfloat16"]
  assert float(got["loss"]) == pytest.approx(float(want["loss"]), rel=0.01)
  assert float(got["grad_norm"]) == pytest.approx(float(want["grad_norm"]), rel=0.2)
  for leaf in jax.tree.leaves((new_state.params, new_state.opt_state)):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32 and bool(jnp.isfinite(leaf).all())


def train_and_score(config, run, steps):
  """`steps` trainer steps from `run.state` on the pipeline's batches -> (the losses,
  the metrics on the training split)."""
  step = jax.jit(train.make_train_step(run.model, run.spec, config, run.lr_fn))
  batches = run.pipeline.train_iterator(config.train.batch_size, config.seed)
  state, losses = run.state, []
  for _ in range(steps):
    state, metrics = step(state, sharding.host_to_global(next(batches), run.mesh))
    losses.append(float(metrics["loss"]))
  evaluator = evaluate.Evaluator(run.model, run.spec, config, run.pipeline, run.mesh)
  return np.array(losses), evaluator.run(state.variables, "train")


def test_bfloat16_training_lands_near_float32(fian_config):
  """FIAN on the tiny synthetic set, 120 steps from the same initial weights on the
  same batches in each dtype. bfloat16 rounds every activation to 8 significant bits,
  so the two runs take slightly different paths (one bfloat16 step's gradient is a few
  % off the float32 one, above); they should end equally well. Tolerances: the mean
  loss of the last 20 steps within 3% (it falls ~15% over the run, so a broken
  bfloat16 path shows), and on the 42 training queries (one query is 2.4 points)
  R@1,IoU=0.5 within 3 queries and mIoU within 0.03. Seen (float32 / bfloat16): last
  20 losses 1.2461 / 1.2455, R@1,IoU=0.5 35.71 / 33.33 (one query), mIoU 0.2766 /
  0.2660."""
  steps = 120
  run = train.setup(fian_config)
  curves, results = {}, {}
  for dtype in ("float32", "bfloat16"):
    config = fian_config.copy_and_resolve_references()
    config.train.compute_dtype = dtype
    curves[dtype], results[dtype] = train_and_score(config, run, steps)
  f32, bf16 = curves["float32"], curves["bfloat16"]
  assert np.isfinite(bf16).all()
  assert f32[-20:].mean() < 0.95 * f32[:20].mean()  # it learned
  assert bf16[-20:].mean() == pytest.approx(f32[-20:].mean(), rel=0.03)
  want, got = results["float32"], results["bfloat16"]
  assert got["num_queries"] == want["num_queries"]
  assert abs(got["R@1,IoU=0.5"] - want["R@1,IoU=0.5"]) <= 3 / want["num_queries"] + 1e-9
  assert got["mIoU"] == pytest.approx(want["mIoU"], abs=0.03)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_state_stays_float32_over_a_long_sequence(cell):
  """Guards BiRNN's float32 recurrent state under bfloat16 compute: a bfloat16 carry
  rounds the state itself at every step (8 significant bits) and the roundings pile up
  over the cell's memory, where a float32 carry sees only each step's rounded gate
  inputs once. Made visible: 128 steps, a forget (LSTM) / update (GRU) gate biased
  by +4 (sigmoid 0.98: a memory of ~50 steps), inputs and weights exactly
  representable in bfloat16 (so only the computation differs), outputs compared with
  the float32 run's rounded to bfloat16 (the layer returns the inputs' dtype). The
  mean error relative to the mean output, seen: float32 carry 0.0026 (LSTM) / 0.0013
  (GRU), bfloat16 carry 0.021 / 0.035; bound 0.006."""
  rng = np.random.default_rng(0)
  steps = 128
  x = rng.normal(size=(3, steps, 6)).astype(np.float32)
  mask = np.arange(steps)[None] < np.array([steps, 70, 1])[:, None]
  rnn = BiRNN(8, 1, cell)
  variables = rnn.init(jax.random.PRNGKey(0), x, mask)
  gate = {"lstm": "hf", "gru": "iz"}[cell]  # the Dense holding the gate's bias
  params = {direction: {name: {**p, "bias": p["bias"] + 4.0} if name == gate else p
                        for name, p in layers.items()}
            for direction, layers in variables["params"].items()}
  to_bf16 = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.bfloat16), tree)
  params, x = to_bf16(params), to_bf16(x)
  want, _ = rnn.apply({"params": jax.tree.map(lambda a: a.astype(jnp.float32), params)},
                      x.astype(jnp.float32), mask)
  got, _ = rnn.apply({"params": params}, x, mask)
  want = np.asarray(want.astype(jnp.bfloat16), np.float32)[mask]
  error = np.abs(np.asarray(got, np.float32)[mask] - want).mean() / np.abs(want).mean()
  assert error < 0.006, error


def float32_floats(tree):
  """`tree` with every floating leaf in float32."""
  return jax.tree.map(lambda x: x.astype(jnp.float32)
                      if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


@pytest.mark.parametrize("name", VARIANTS)
def test_bfloat16_evaluation_of_every_model_against_float32(name):
  """Guards bfloat16 evaluation (`evaluate.make_predict_fn`) for every model, in two
  parts. The forward: bfloat16 parameters and clip features and nothing else cast
  (`vmr_jax.precision`: not the times, not BatchNorm's statistics, here FVMR's set to
  values bfloat16 cannot hold, so that casting them shows) give every output
  within 3% (norm-wise) of the float32 forward's, with the same masked entries.
  bfloat16 keeps 8 significant bits (2^-9 per rounding) and these small networks
  compound that to 0.5-1.2% (seen; CMHN's query codes the most), so 3% leaves a
  margin while a part computed in bfloat16 that should not be stands out. The decode:
  the evaluation's ranked moments and stats are exactly the float32 decode of that
  bfloat16 forward's outputs cast to float32, as `precision` promises; a decode left
  in bfloat16 rounds the scores to 8 bits and breaks their ties differently. The
  decode itself is not compared with a tolerance: its discrete steps (CMHN's sign
  bits, top-k among near-equal scores) turn a rounding into a different moment.
  CLEAR's search is exhaustive here, for the same reason: Algorithm 1's node is a
  choice between near-equal anchor similarities, which bfloat16 flips on this batch."""
  config = small_model_config(name)
  if config.model == "clear":
    config.clear.search = "exhaustive"
  batch = jax.tree.map(jnp.asarray, small_padded_batch(config))
  spec, model, variables = small_model(config, batch)
  if "batch_stats" in variables:  # running statistics bfloat16 cannot hold (not 0, 1)
    leaves, tree = jax.tree.flatten(variables["batch_stats"])
    rng = np.random.default_rng(0)
    variables = {**variables, "batch_stats": jax.tree.unflatten(tree, [
        jnp.asarray(rng.uniform(0.5, 2.0, x.shape), jnp.float32) for x in leaves])}
  want = jax.jit(evaluate.make_forward_fn(model, config))(variables, batch)
  config.train.compute_dtype = "bfloat16"

  @jax.jit
  def bfloat16_forward(variables, batch):
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), variables["params"])
    features = {**batch, "video_feats": batch["video_feats"].astype(jnp.bfloat16)}
    return float32_floats(model.module.apply({**variables, "params": params}, features,
                                             train=False))

  got = bfloat16_forward(variables, batch)
  paths = jax.tree_util.tree_flatten_with_path(want)[0]
  for (path, a), b in zip(paths, jax.tree.leaves(got)):
    a, b, where = np.asarray(a), np.asarray(b), jax.tree_util.keystr(path)
    assert b.dtype == a.dtype, where
    if not np.issubdtype(a.dtype, np.floating):
      np.testing.assert_array_equal(b, a, err_msg=where)
      continue
    real = lambda x: np.isfinite(x) & (np.abs(x) < 1e30)  # not a masked logit
    np.testing.assert_array_equal(real(b), real(a), err_msg=where)
    a, b = a[real(a)], b[real(a)]
    assert np.linalg.norm(b - a) <= 0.03 * np.linalg.norm(a), where
  ranked, stats = jax.jit(evaluate.make_predict_fn(model, spec, config))(variables, batch)
  decode = jax.jit(lambda outputs, batch: (
      spec.decode(outputs, batch, config),
      dict(spec.eval_stats(outputs, batch, config)) if spec.eval_stats else {}))
  want_ranked, want_stats = decode(got, batch)
  assert ranked.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(ranked), np.asarray(want_ranked))
  assert sorted(stats) == sorted(want_stats)
  for stat in stats:
    np.testing.assert_array_equal(np.asarray(stats[stat]), np.asarray(want_stats[stat]))
