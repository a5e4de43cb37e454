import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax import metrics, registry, sharding
from vmr_jax.models import cmhn
from vmr_jax.train import setup

from tests.models import overfit_one_batch, tiny_config


@pytest.fixture(scope="module")
def run(tiny_data_dir, tiny_release):
  return setup(tiny_config("cmhn/paper", tiny_data_dir, tiny_release))


def batch_of(run, config):
  return sharding.numeric(next(run.pipeline.eval_iterator("train", 8)))


def test_candidate_spans():
  import ml_collections
  cfg = ml_collections.ConfigDict({"kernels": (1, 2, 3), "strides": (1, 1, 2)})
  spans = cmhn.candidate_spans(5, cfg)
  assert len(spans) == 5 + 4 + 2
  assert spans[:5].tolist() == [[i, i + 1] for i in range(5)]
  assert spans[-2:].tolist() == [[0, 3], [2, 5]]


def test_shapes(run, cmhn_config):
  batch = batch_of(run, cmhn_config)
  out = run.model.module.apply({"params": run.state.params}, batch)
  n = len(cmhn.candidate_spans(16, cmhn_config.cmhn))
  assert out["moment_codes"].shape == (8, n, 8)
  assert out["query_codes"].shape == (8, 4, 8)
  ranked = cmhn.decode(out, batch, cmhn_config)
  assert ranked.shape == (8, 4, 10, 3)


def numpy_losses(h_c, h_q, times, gts, query_valid, L, reduction):
  """Eq. 7, 9, 10 transcribed for one video (the Gamma_3 reading of the docstring);
  "mean": per pair, per code and bit, per bit."""
  h_q, gts = h_q[query_valid], gts[query_valid]
  m = np.array([[metrics.temporal_iou(c, g) for g in gts] for c in times])
  gamma1 = np.sum((h_c @ h_q.T - L * m) ** 2)
  sgn = lambda h: np.where(h >= 0, 1.0, -1.0)
  if reduction == "mean":
    return (gamma1 / (L * L * m.size),
            np.mean((h_c - sgn(h_c)) ** 2) + np.mean((h_q - sgn(h_q)) ** 2),
            np.mean(h_c.mean(0) ** 2) + np.mean(h_q.mean(0) ** 2))
  gamma2 = np.sum((h_c - sgn(h_c)) ** 2) + np.sum((h_q - sgn(h_q)) ** 2)
  gamma3 = np.sum(h_c.sum(0) ** 2) + np.sum(h_q.sum(0) ** 2)
  return gamma1, gamma2, gamma3


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_losses_match_numpy_transcription(run, cmhn_config, reduction):
  cmhn_config.cmhn.loss_reduction = reduction
  batch = batch_of(run, cmhn_config)
  rng = np.random.default_rng(0)
  n = len(cmhn.candidate_spans(16, cmhn_config.cmhn))
  outputs = {"moment_codes": rng.normal(size=(8, n, 8)).astype(np.float32),
             "query_codes": rng.normal(size=(8, 4, 8)).astype(np.float32)}
  total, terms = cmhn.loss(outputs, batch, cmhn_config)
  spans = cmhn.candidate_spans(16, cmhn_config.cmhn)
  want = np.zeros(3)
  for b in range(8):
    times = spans * batch["duration"][b] / 16
    want += numpy_losses(outputs["moment_codes"][b], outputs["query_codes"][b], times,
                         batch["gt_times"][b], batch["query_valid"][b], 8, reduction)
  want /= 8
  for name, value in zip(("gamma1", "gamma2", "gamma3"), want):
    assert float(terms[name]) == pytest.approx(value, rel=1e-4)
  assert float(total) == pytest.approx(want.sum(), rel=1e-4)  # alpha = beta = 1


def test_decode_ranks_by_hamming_distance(run, cmhn_config):
  """Sec. III-E: the candidates of smallest Hamming distance, in order."""
  batch = batch_of(run, cmhn_config)
  out = run.model.module.apply({"params": run.state.params}, batch)
  ranked = np.asarray(cmhn.decode(out, batch, cmhn_config))
  codes_c = np.sign(np.asarray(out["moment_codes"]) + 1e-30)
  codes_q = np.sign(np.asarray(out["query_codes"]) + 1e-30)
  spans = cmhn.candidate_spans(16, cmhn_config.cmhn)
  for b, q in [(0, 0), (3, 1)]:
    distance = (8 - codes_c[b] @ codes_q[b, q]) / 2
    best = np.sort(distance)[:10]
    times = spans * batch["duration"][b] / 16
    got = [distance[np.flatnonzero((np.abs(times - t[:2]) < 1e-4).all(1))[0]]
           for t in ranked[b, q]]
    np.testing.assert_array_equal(got, best)  # the k smallest distances, in order


def test_overfits_one_batch(cmhn_config):
  """300 Adam steps on one batch: the loss drops 3x and the batch's own moments are
  retrieved (R@1,IoU=0.5 >= 0.5, from about 0.1 at initialization)."""
  cmhn_config.cmhn.code_bits = 32
  cmhn_config.cmhn.hidden = 32
  losses, recall = overfit_one_batch(cmhn_config, 300, 1e-2)
  assert losses[-1] < losses[0] / 3
  assert recall >= 0.5


def test_registry():
  assert registry.get("cmhn") is cmhn.SPEC
  with pytest.raises(ValueError, match="unknown model"):
    registry.get("tan")


def test_load_pretrained_checks_paths_and_shapes():
  params = {"a": {"w": jnp.zeros((2, 3))}, "b": jnp.ones(2)}
  out = registry.load_pretrained(params, {"a": {"w": np.ones((2, 3))}})
  np.testing.assert_array_equal(out["a"]["w"], 1)
  with pytest.raises(ValueError, match="a/w has shape"):
    registry.load_pretrained(params, {"a": {"w": np.ones((3, 2))}})
  with pytest.raises(ValueError, match="a/v has no place"):
    registry.load_pretrained(params, {"a": {"v": np.ones(1)}})


def test_binary_similarity_codes_are_signs_with_a_straight_through_gradient(run,
                                                                          cmhn_config):
  """Guards `similarity_codes = "binary"`, the one model path through
  `hashing.sign_ste`: Gamma_1 (Eq. 7) is computed on sgn(H) (the numpy transcription
  on sign codes), Gamma_2 still on H, and its gradient with respect to H is the
  straight-through one, the gradient of Gamma_1 at the sign codes as if sgn were the
  identity: 2 (C Q^T - L M) Q for the moments, 2 (C Q^T - L M)^T C for the queries,
  over the valid pairs. sgn without the straight-through gradient gives zero; the
  identity gives Gamma_1 of H."""
  cmhn_config.cmhn.similarity_codes = "binary"
  cmhn_config.cmhn.loss_reduction = "sum"
  batch = batch_of(run, cmhn_config)
  rng = np.random.default_rng(0)
  spans = cmhn.candidate_spans(16, cmhn_config.cmhn)
  h_c = rng.normal(size=(8, len(spans), 8)).astype(np.float32)
  h_q = rng.normal(size=(8, 4, 8)).astype(np.float32)
  gamma1 = lambda h_c, h_q: cmhn.loss({"moment_codes": h_c, "query_codes": h_q}, batch,
                                      cmhn_config)[1]["gamma1"]
  _, terms = cmhn.loss({"moment_codes": h_c, "query_codes": h_q}, batch, cmhn_config)
  grad_c, grad_q = jax.grad(gamma1, argnums=(0, 1))(jnp.asarray(h_c), jnp.asarray(h_q))
  sgn = lambda h: np.where(h >= 0, 1.0, -1.0)
  want, want_gamma2 = 0.0, 0.0
  want_c, want_q = np.zeros_like(h_c), np.zeros_like(h_q)
  for b in range(8):
    times = spans * batch["duration"][b] / 16
    valid = batch["query_valid"][b]
    c, q = sgn(h_c[b]), sgn(h_q[b])
    want += numpy_losses(c, q, times, batch["gt_times"][b], valid, 8, "sum")[0] / 8
    want_gamma2 += numpy_losses(h_c[b], h_q[b], times, batch["gt_times"][b], valid, 8,
                                "sum")[1] / 8
    m = np.array([[metrics.temporal_iou(t, g) for g in batch["gt_times"][b][valid]]
                  for t in times])
    residual = c @ q[valid].T - 8 * m  # [N, M]
    want_c[b] = 2 * residual @ q[valid] / 8
    want_q[b][valid] = 2 * residual.T @ c / 8
  assert batch["example_valid"].all() and not batch["query_valid"].all()
  assert float(terms["gamma1"]) == pytest.approx(want, rel=1e-4)
  assert float(terms["gamma2"]) == pytest.approx(want_gamma2, rel=1e-4)  # of H itself
  np.testing.assert_allclose(np.asarray(grad_c), want_c, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(grad_q), want_q, rtol=1e-4, atol=1e-4)
  assert np.abs(want_c).max() > 1


def release_ticks(seconds, kernels, strides):
  """The released data's candidates of a video of `seconds` 1-s clips (tacos.py's
  `ticks` loop, written from it): (x - k, x) for x in range(k, seconds + 1, stride)."""
  return [(x - k, x) for k, s in zip(kernels, strides) if k <= seconds
          for x in range(k, seconds + 1, s)]


@pytest.mark.parametrize("dataset", ["tacos", "activitynet_captions"])
def test_released_configs_read_a_clip_a_second_over_the_longest_video(
    real_annotations, dataset):
  """`configs/cmhn_{tacos,activitynet}.py:released,seconds`: 1 clip per second,
  `num_clips` enough for the real annotations' longest video, and a video's valid
  candidates the release's ticks in its order; `fixed` and the paper reading read the
  dataset's fixed count."""
  import importlib
  import json
  module = importlib.import_module(f"vmr_jax.configs.cmhn_{dataset.split('_')[0]}")
  for arg in ("paper", "released,fixed"):
    assert module.get_config(arg).data.clip_seconds == 0.0
  with pytest.raises(ValueError, match="a reading .* or clips"):
    module.get_config("released,1fps")
  config = module.get_config("released,seconds")
  assert config.data.clip_seconds == 1.0 and config.cmhn.reading == "released"
  longest = 0.0
  for path in (real_annotations / dataset).glob("*.json"):
    for video in json.loads(path.read_text()).values():
      longest = max(longest, video["num_frames"] / video["fps"] if "fps" in video
                    else video["duration"])
  assert config.data.num_clips == int(np.ceil(longest))
  spans = cmhn.candidate_spans(config.data.num_clips, config.cmhn)
  for seconds in (7, 100, int(np.ceil(longest))):
    valid = spans[spans[:, 1] <= seconds]
    want = release_ticks(seconds, config.cmhn.kernels, config.cmhn.strides)
    assert list(map(tuple, valid.tolist())) == want
