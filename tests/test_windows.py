"""Sliding-window candidates: the FIAN settings' windows against hand-worked lists,
and the window convolutions against a direct sum over each span."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from vmr_jax.layers import windows


def starts(begin, step, last, tail=None):
  """Hand list: begin, begin + step, ..., last, then the tail window's start."""
  return list(range(begin, last + 1, step)) + ([tail] if tail is not None else [])


# (num_clips, windows, stride ratio) -> per window: (stride, its start clips)
FIAN_SETTINGS = {
    "tacos": (200, (8, 16, 32, 64), 0.125, {
        8: (1, starts(0, 1, 192)), 16: (2, starts(0, 2, 184)),
        32: (4, starts(0, 4, 168)), 64: (8, starts(0, 8, 136))}),
    "activitynet": (200, (16, 32, 64, 96, 128, 160, 192), 0.25, {
        16: (4, starts(0, 4, 184)), 32: (8, starts(0, 8, 168)),
        64: (16, starts(0, 16, 128, tail=136)),  # 136 is not a multiple of 16
        96: (24, [0, 24, 48, 72, 96, 104]), 128: (32, [0, 32, 64, 72]),
        160: (40, [0, 40]), 192: (48, [0, 8])}),
    "charades": (64, (16, 24, 32, 40), 0.125, {
        16: (2, starts(0, 2, 48)), 24: (3, starts(0, 3, 39, tail=40)),
        32: (4, starts(0, 4, 32)), 40: (5, [0, 5, 10, 15, 20, 24])}),
}


@pytest.mark.parametrize("setting", sorted(FIAN_SETTINGS))
def test_fian_windows_equal_the_hand_worked_lists(setting):
  num_clips, sizes, ratio, want = FIAN_SETTINGS[setting]
  strides = windows.ratio_strides(sizes, ratio)
  assert strides == tuple(want[w][0] for w in sizes)
  spans = windows.window_spans(num_clips, sizes, strides)
  expected = [(s, s + w) for w in sizes for s in want[w][1]]
  assert spans.tolist() == [list(span) for span in expected]
  assert spans[:, 1].max() == num_clips  # every setting reaches the last clip
  for w in sizes:  # every clip is covered by a window of every size
    covered = np.zeros(num_clips, bool)
    for s, e in spans[spans[:, 1] - spans[:, 0] == w]:
      covered[s:e] = True
    assert covered.all(), w


class WindowConvs(nn.Module):
  @nn.compact
  def __call__(self, x, sizes, strides):
    return windows.window_conv(x, 2, sizes, strides, "window")


def test_window_conv_output_n_is_the_convolution_of_span_n():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 11, 3)).astype(np.float32)
  sizes, strides = (2, 4, 5), (1, 3, 2)
  layer = WindowConvs()
  params = layer.init(jax.random.PRNGKey(0), x, sizes, strides)["params"]
  got = np.asarray(layer.apply({"params": params}, x, sizes, strides))
  spans = windows.window_spans(11, sizes, strides)
  assert got.shape == (2, len(spans), 2)
  for n, (s, e) in enumerate(spans):
    conv = params[f"window_{e - s}"]  # one kernel per size
    want = np.einsum("btd,tdf->bf", x[:, s:e], np.asarray(conv["kernel"])) + conv["bias"]
    np.testing.assert_allclose(got[:, n], want, rtol=1e-5, atol=1e-5)


def test_no_tail_windows_are_the_strided_convolutions_own():
  """CMHN's released candidates: size 4 at stride 3 over 12 clips ends at 4, 7, 10
  (its `ticks`: range(4, 13, 3)), with no window aligned to the end."""
  np.testing.assert_array_equal(windows.window_spans(12, (4,), (3,), tail=False),
                                [[0, 4], [3, 7], [6, 10]])
  assert windows.window_spans(12, (4,), (3,))[-1].tolist() == [8, 12]


def test_bad_windows_are_errors():
  with pytest.raises(ValueError, match="does not fit"):
    windows.window_spans(8, (4, 9), (1, 1))
  with pytest.raises(ValueError, match="strides"):
    windows.window_spans(8, (4,), (1, 2))
  with pytest.raises(ValueError, match="stride"):
    windows.window_starts(8, 4, 0)
