"""FIAN (paper 004): the loss's positive/negative split and the no-positive rule
against a numpy transcription of Eq. 15-18, decoding, the text-width check, one-batch
overfitting, and configs/fian_charades.py end to end on Charades-STA release files."""

import json

import numpy as np
import pytest

from vmr_jax import registry, train
from vmr_jax.layers import windows
from vmr_jax.models import fian
from tests.models import overfit_one_batch
from tests.release_files import write_charades_release

CLIPS, SIZES, RATIO = 8, (2, 4), 0.5  # strides 1, 2: 7 + 3 windows


def small_config():
  from vmr_jax.configs import fian_synthetic
  config = fian_synthetic.get_config()
  config.data.num_clips = CLIPS
  config.fian.windows = SIZES
  config.fian.stride_ratio = RATIO
  config.fian.alpha = 0.3
  return config


def numpy_loss(logits, offsets, batch, spans, tau, alpha):
  """Eq. 15-18 per example, then the mean over the real ones (no vmr_jax)."""
  per_example = []
  for b in np.nonzero(batch["example_valid"])[0]:
    seconds = batch["duration"][b] / CLIPS
    cand = spans * seconds
    s, e = batch["gt_times"][b]
    inter = np.clip(np.minimum(cand[:, 1], e) - np.maximum(cand[:, 0], s), 0, None)
    iou = inter / ((cand[:, 1] - cand[:, 0]) + (e - s) - inter)
    pos = iou > tau
    if not pos.any():
      pos[np.argmax(iou)] = True
    p = 1 / (1 + np.exp(-logits[b]))
    bce = -(iou * np.log(p) + (1 - iou) * np.log(1 - p))
    align = bce[pos].mean() + (bce[~pos].mean() if (~pos).any() else 0.0)
    d = np.abs(offsets[b] - (np.array([s, e]) - cand) / seconds)
    smooth_l1 = np.where(d < 1, 0.5 * d ** 2, d - 0.5).sum(-1)
    per_example.append(align + alpha * smooth_l1[pos].mean())
  return np.mean(per_example)


@pytest.fixture
def batch():
  """Example 0 has positives; example 1's moment (0.4 s) is far shorter than any
  window (>= 4 s), so none passes tau; example 2 is padding."""
  return {
      "duration": np.array([8.0, 16.0, 8.0], np.float32),
      "video_mask": np.ones((3, CLIPS), bool),
      "gt_times": np.array([[1.0, 3.2], [5.0, 5.4], [0.0, 8.0]], np.float32),
      "example_valid": np.array([True, True, False]),
  }


def test_loss_splits_positives_and_negatives_and_has_a_positive_rule(batch):
  config = small_config()
  spans = windows.window_spans(CLIPS, SIZES, windows.ratio_strides(SIZES, RATIO))
  assert len(spans) == 10
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 10)).astype(np.float32)
  offsets = rng.normal(size=(3, 10, 2)).astype(np.float32) * 2
  logits[2] = np.nan  # padding must not reach the loss
  total, terms = fian.loss({"logits": logits, "offsets": offsets}, batch, config)
  want = numpy_loss(logits, offsets, batch, spans, 0.55, 0.3)
  assert np.isfinite(float(total))
  np.testing.assert_allclose(float(total), want, rtol=1e-5)
  np.testing.assert_allclose(float(terms["align"] + 0.3 * terms["boundary"]), want,
                             rtol=1e-5)

  times, valid, _ = fian._candidates(batch, config)
  iou = np.asarray(fian.common.pairwise_iou(times, batch["gt_times"][:, None]))[..., 0]
  positive = np.asarray(fian.positives(iou, valid, 0.55))
  assert positive[0].tolist() == list(iou[0] > 0.55) and 1 <= positive[0].sum() < 10
  # Example 1: spans (1, 3) and (2, 4) of 2 s clips both hold [5, 5.4] (IoU 0.1); the
  # first is the positive.
  assert np.isclose(iou[1].max(), 0.1) and positive[1].tolist() == [i == 1 for i in range(10)]


def test_negative_free_example_gives_a_finite_loss(batch):
  config = small_config()
  config.fian.positive_iou = 0.0  # every overlapping candidate is positive
  batch["gt_times"][0] = [0.0, 8.0]  # overlaps every window
  outputs = {"logits": np.zeros((3, 10), np.float32),
             "offsets": np.zeros((3, 10, 2), np.float32)}
  total, _ = fian.loss(outputs, batch, config)
  assert np.isfinite(float(total))


def test_decode_moves_clips_and_ranks(batch):
  config = small_config()
  config.eval.top_k = 3
  logits = np.full((3, 10), -5.0, np.float32)
  logits[0, [1, 8, 9]] = [3.0, 2.0, 1.0]  # spans (1, 3), (2, 6), (4, 8) of 1 s clips
  offsets = np.zeros((3, 10, 2), np.float32)
  offsets[0, 1] = [-1.5, 0.25]  # start -0.5 s -> clipped to 0
  offsets[0, 8] = [3.0, -5.0]  # (5, 1) s: the end falls before the start -> swapped
  offsets[0, 9] = [1.0, 2.0]  # end 10 s -> clipped to 8
  got = np.asarray(fian.decode({"logits": logits, "offsets": offsets}, batch, config))
  assert got.shape == (3, 3, 3)
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  np.testing.assert_allclose(got[0], [[0.0, 3.25, sigmoid(3.0)], [1.0, 5.0, sigmoid(2.0)],
                                      [5.0, 8.0, sigmoid(1.0)]], rtol=1e-6)


def test_text_encoder_width_must_be_hidden(fian_config):
  from vmr_jax.tools.random_batch import random_batch
  fian_config.text.head_hidden = 3  # 6-wide words, hidden 8
  fian_config.text.vectors = "random"
  words = [f"w{i}" for i in range(10)]
  model = fian.create(fian_config, registry.DataInfo(16, words, None))
  with pytest.raises(ValueError, match="text.head_hidden = 4"):
    train.init_variables(model, random_batch(fian_config, 16, 10, np.random.default_rng(0)),
                         fian_config)
  fian_config.fian.windows = (4, 17)
  with pytest.raises(ValueError, match="does not fit in 16 clips"):
    fian.create(fian_config, registry.DataInfo(16, ["a"], None))


def test_one_batch_overfits(fian_config):
  losses, recall = overfit_one_batch(fian_config, 100, 5e-3)
  assert losses[-1] < 0.6 * losses[0], losses[::10]
  assert recall >= 0.75, recall


def test_charades_config_runs_end_to_end_on_release_files(real_annotations, tiny_release,
                                                         tmp_path):
  """configs/fian_charades.py (64 clips, its four windows, I3D files) on a dataset the
  data layer builds from Charades-STA release files, shrunk in width and steps."""
  from vmr_jax.configs import fian_charades
  from data_pipelines import build
  release = tmp_path / "release"
  release.mkdir()
  write_charades_release(release, real_annotations, 10, "i3d_features.hdf5", 12)
  builder = build.build("charades_sta", str(tmp_path / "data"), manual_dir=str(release),
                        config="i3d")
  config = fian_charades.get_config()
  config.data.data_dir = str(tmp_path / "data")
  config.data.shuffle_buffer = 16
  config.text.glove_file = str(tiny_release / "glove.synthetic.8d.txt")
  config.text.head_hidden = 4
  config.fian.update(hidden=8, mlp_dim=8)
  config.train.update(batch_size=4, num_steps=2, eval_every=2, checkpoint_every=2)
  config.eval.batch_size = 4
  result = train.train_and_evaluate(config, str(tmp_path / "work"))
  test_queries = builder.info.metadata["num_queries"]["test"]
  assert result["num_queries"] == test_queries > 0
  assert set(result) == {"R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5", "R@5,IoU=0.7",
                         "mIoU", "num_queries"}
  lines = (tmp_path / "work" / "eval" / "test_predictions.jsonl").read_text().splitlines()
  assert len(lines) == test_queries
  assert all(0 <= s <= e <= r["duration"] + 1e-4
             for r in map(json.loads, lines) for s, e, _ in r["pred"])
