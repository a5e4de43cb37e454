import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vmr_jax import metrics, registry, train
from vmr_jax.models import hscnet

from tests.models import fit_one_batch, tiny_config

B, T, Q, L, FEATURES, VOCAB = 2, 12, 3, 6, 10, 30


def small_config(tiny_data_dir, tiny_release):
  config = tiny_config("hscnet", tiny_data_dir, tiny_release)
  config.text.vectors = "random"
  config.text.glove_dim = 8
  config.hscnet.word_layers = config.hscnet.sentence_layers = 2
  return config


@pytest.fixture(scope="module")
def model_and_params(tiny_data_dir, tiny_release):
  config = small_config(tiny_data_dir, tiny_release)
  spec = registry.get("hscnet")
  model = spec.create(config, registry.DataInfo(FEATURES, [f"w{i}" for i in range(VOCAB)], None))
  return config, model, train.init_variables(model, make_batch(), config)["params"]


def make_batch(seed=0):
  """Paragraph batch: video 0 has 2 sentences (a padded slot), video 1 has 3."""
  rng = np.random.default_rng(seed)
  lengths = np.array([[4, 2, 0], [6, 1, 3]])
  start = rng.uniform(0, 30, (B, Q))
  return {
      "video_feats": rng.normal(size=(B, T, FEATURES)).astype(np.float32),
      "video_mask": np.ones((B, T), bool),
      "duration": np.array([60.0, 45.0], np.float32),
      "query_tokens": rng.integers(2, VOCAB, (B, Q, L)).astype(np.int32),
      "query_mask": np.arange(L)[None, None] < lengths[..., None],
      "query_valid": lengths > 0,
      "gt_times": np.stack([start, start + rng.uniform(6, 20, (B, Q))], -1).astype(np.float32),
      "example_valid": np.ones(B, bool),
  }


def test_shapes(model_and_params):
  _, model, params = model_and_params
  out = jax.jit(model.module.apply)({"params": params}, make_batch())
  assert out["word_alignment"].shape == (B, Q, L, T)
  assert out["sentence_alignment"].shape == (B, Q, T)
  assert out["paragraph_alignment"].shape == (B, T)
  assert out["paragraph_span"].shape == (B, 2)
  assert out["sentence_spans"].shape == out["spans"].shape == (B, Q, 2)
  assert out["word_spans"].shape == (B, Q, L, 2)
  assert all(np.isfinite(np.asarray(v)).all() for k, v in out.items() if k != "word_mask")


def test_word_losses_match_numpy_transcription():
  rng = np.random.default_rng(0)
  start = rng.uniform(0, 0.8, (2, 3, 4))
  word_spans = np.stack([start, start + rng.uniform(0, 0.3, (2, 3, 4))], -1)
  word_mask = rng.uniform(size=(2, 3, 4)) < 0.7
  word_mask[0, 2] = False  # a sentence without words
  target = np.sort(rng.uniform(0, 1, (2, 3, 2)), -1)
  sentence_mask = np.array([[True, True, True], [True, True, False]])
  word_mask &= sentence_mask[..., None]

  union_terms, subset_terms = [], []
  for b in range(2):
    for q in range(3):
      words = [word_spans[b, q, w] for w in range(4) if word_mask[b, q, w]]
      if not words:
        continue
      gs, ge = target[b, q]
      hull = (min(s for s, _ in words), max(e for _, e in words))
      inter = max(0.0, min(hull[1], ge) - max(hull[0], gs))
      union = (hull[1] - hull[0]) + (ge - gs) - inter
      enclosing = max(hull[1], ge) - min(hull[0], gs)
      giou = inter / union - (enclosing - union) / enclosing
      union_terms.append(abs(hull[0] - gs) + abs(hull[1] - ge) + 1 - giou)
      subset_terms += [max(0.0, gs - s) + max(0.0, e - ge) for s, e in words]

  got_union = hscnet.word_union_loss(jnp.asarray(word_spans), jnp.asarray(word_mask),
                                     jnp.asarray(target), jnp.asarray(sentence_mask))
  got_subset = hscnet.word_subset_loss(jnp.asarray(word_spans), jnp.asarray(word_mask),
                                       jnp.asarray(target))
  assert float(got_union) == pytest.approx(np.mean(union_terms), rel=1e-5)
  assert float(got_subset) == pytest.approx(np.mean(subset_terms), rel=1e-5)


def test_alignment_targets_and_nll_match_numpy():
  video_mask = np.array([[True] * 8, [True] * 5 + [False] * 3])
  spans = np.array([[[0.1, 0.3], [0.5, 0.5]], [[0.0, 1.0], [0.9, 0.95]]], np.float32)
  inside = np.asarray(hscnet.clips_in_spans(jnp.asarray(spans), jnp.asarray(video_mask)))
  # Video 0, 8 clips of 1/8: [0.1, 0.3] overlaps clips 0-2; the empty [0.5, 0.5] is held
  # by clip 4. Video 1, 5 valid clips of 1/5: all of them; [0.9, 0.95] in clip 4.
  assert inside[0, 0].nonzero()[0].tolist() == [0, 1, 2]
  assert inside[0, 1].nonzero()[0].tolist() == [4]
  assert inside[1, 0].nonzero()[0].tolist() == [0, 1, 2, 3, 4]
  assert inside[1, 1].nonzero()[0].tolist() == [4]

  rng = np.random.default_rng(0)
  similarity = rng.normal(size=(2, 2, 8)).astype(np.float32)
  similarity = np.where(video_mask[:, None], similarity, np.finfo(np.float32).min)
  valid = np.array([[True, True], [True, False]])
  want = []
  for b, q in zip(*valid.nonzero()):
    p = np.exp(similarity[b, q] - similarity[b, q].max())
    p /= p.sum()
    want.append(-np.log(p[inside[b, q]].sum()))
  got = hscnet.alignment_nll(jnp.asarray(similarity), jnp.asarray(inside), jnp.asarray(valid))
  assert float(got) == pytest.approx(np.mean(want), rel=1e-5)


def test_decode_clips_to_the_video_and_scores_by_the_alignment():
  """Spans clipped to the video, in seconds; the score is the mean cosine (A times
  tau) over the clips a span covers (padded clip 9 of video 0 is none of them)."""
  outputs = {"spans": jnp.array([[[-0.2, 0.5], [0.4, 1.3]]]),
             "sentence_alignment": jnp.arange(20.0).reshape(1, 2, 10)}
  batch = {"duration": jnp.array([10.0]), "video_mask": jnp.arange(10)[None] < 9}
  config = ml_collections.ConfigDict({"hscnet": {"tau": 0.1}})
  got = np.asarray(hscnet.decode(outputs, batch, config))
  # 9 valid clips of 1/9: [0, 0.5] covers clips 0-4, [0.4, 1] clips 3-8.
  want = [[[[0.0, 5.0, 0.1 * np.mean([0, 1, 2, 3, 4])]],
           [[4.0, 10.0, 0.1 * np.mean([13, 14, 15, 16, 17, 18])]]]]
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_one_batch_overfits(model_and_params):
  config, model, params = model_and_params
  spec = registry.get("hscnet")
  batch = jax.tree.map(jnp.asarray, make_batch())
  variables, losses = fit_one_batch(model.module, {"params": params}, batch, spec.loss,
                                    config, 300, 1e-3)
  assert losses[-1] < 0.5 * losses[0]
  ranked = np.asarray(spec.decode(model.module.apply(variables, batch), batch, config))
  valid = make_batch()["query_valid"]
  ious = [metrics.temporal_iou(ranked[b, q, 0, :2], np.asarray(batch["gt_times"][b, q]))
          for b, q in zip(*valid.nonzero())]
  assert min(ious) > 0.8, ious


def test_config_checks(tiny_data_dir, tiny_release):
  config = small_config(tiny_data_dir, tiny_release)
  config.hscnet.num_heads = 3
  with pytest.raises(ValueError, match="divisible"):
    registry.get("hscnet").create(config, registry.DataInfo(FEATURES, ["a", "b"], None))
  config = small_config(tiny_data_dir, tiny_release)
  assert config.data.max_queries == config.hscnet.max_sentences == 3
  config.data.paragraphs = ""
  with pytest.raises(ValueError, match=r"paragraphs in \('time', 'release'\)"):
    train.setup(config)


def test_tacos_config_runs_end_to_end_on_tacos_format_files(tiny_release, tmp_path):
  """configs/hscnet_tacos.py (the release's paragraphs, TACoS thresholds) on a
  TACoS-release dataset built from the synthetic files, shrunk (C = {1, 1, 1}: the
  depth only costs compile time here)."""
  from vmr_jax.configs import hscnet_tacos
  from data_pipelines import build
  build.build("tacos", str(tmp_path / "data"), manual_dir=str(tiny_release / "tacos"))
  config = hscnet_tacos.get_config()
  config.data.data_dir = str(tmp_path / "data")
  config.data.num_clips = 16
  config.data.shuffle_buffer = 32
  config.text.glove_file = str(tiny_release / "glove.synthetic.8d.txt")
  config.hscnet.update(hidden=16, num_heads=2, mlp_dim=16, video_layers=1, text_layers=1,
                       word_layers=1, sentence_layers=1, paragraph_layers=1)
  config.train.update(batch_size=4, num_steps=2, eval_every=2, checkpoint_every=2)
  config.eval.batch_size = 4
  result = train.train_and_evaluate(config, str(tmp_path / "work"))
  assert set(result) == {"R@1,IoU=0.1", "R@1,IoU=0.3", "R@1,IoU=0.5", "mIoU", "num_queries"}
  assert result["num_queries"] == 18  # every test sentence of the tiny set, once
