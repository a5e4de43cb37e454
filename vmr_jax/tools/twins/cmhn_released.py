"""CMHN's released reading in eager PyTorch, written from the authors' code
(github.com/Huyp777/CMHN: `tcn.py`, `tacos.py`, `utils/tools.py`), not from
`vmr_jax.models.cmhn`: its modules and their names (`TemporalBlock` with
weight-normed `conv1` / `conv2` and `downsample`, `TemporalConvNet.network`,
`VideoModule` with `tcn`, `conv1d`, `net`, `SentenceModule.net`, `hash_function`),
run as the release runs them, one video at a time on its own clips ([1, D, T],
channels first, no padding), candidates as its `ticks`, the loss as its
`loss1 + loss2`. Only the text encoder (the release reads precomputed sentence
vectors) and the batch layout around the per-video loop are ours.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm

from vmr_jax.tools.twins import common


class TemporalBlock(nn.Module):
  def __init__(self, n_inputs, n_outputs, kernel_size, dilation, padding, dropout):
    super().__init__()
    self.conv1 = weight_norm(nn.Conv1d(n_inputs, n_outputs, kernel_size, padding=padding,
                                       dilation=dilation))
    self.conv2 = weight_norm(nn.Conv1d(n_outputs, n_outputs, kernel_size, padding=padding,
                                       dilation=dilation))
    self.net = nn.Sequential(self.conv1, nn.RReLU(), nn.Dropout(dropout),
                             self.conv2, nn.RReLU(), nn.Dropout(dropout))
    self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
    self.relu = nn.RReLU()

  def forward(self, x):
    res = x if self.downsample is None else self.downsample(x)
    return self.relu(self.net(x) + res)


class TemporalConvNet(nn.Module):
  def __init__(self, num_inputs, num_channels, kernel_size, dropout):
    super().__init__()
    self.network = nn.Sequential(*[
        TemporalBlock(num_inputs if i == 0 else num_channels[i - 1], width, kernel_size,
                      2 ** i, (kernel_size - 1) * 2 ** i // 2, dropout)
        for i, width in enumerate(num_channels)])

  def forward(self, x):
    return self.network(x)


class VideoModule(nn.Module):
  def __init__(self, cfg, feature_dim):
    super().__init__()
    self.kernels, self.strides = list(cfg.kernels), list(cfg.strides)
    self.tcn = TemporalConvNet(feature_dim, list(cfg.tcn_channels), cfg.tcn_kernel,
                               cfg.dropout)
    self.conv1d = nn.ModuleList([nn.Conv1d(cfg.tcn_channels[-1], cfg.hidden, k, stride=s)
                                 for k, s in zip(self.kernels, self.strides)])
    self.net = nn.Sequential(nn.RReLU(), nn.Linear(cfg.hidden, cfg.code_bits), nn.RReLU(),
                             nn.Linear(cfg.code_bits, cfg.code_bits))

  def forward(self, feed):
    """`[1, D, T]` -> `[N, L]`, N = the video's ticks."""
    feed = self.tcn(feed)
    out = [conv(feed) for k, conv in zip(self.kernels, self.conv1d) if feed.shape[2] >= k]
    return self.net(torch.cat(out, dim=2).permute(0, 2, 1)[0])


class SentenceModule(nn.Module):
  def __init__(self, cfg, text_width):
    super().__init__()
    widths = [text_width, *cfg.query_hidden, cfg.code_bits]
    layers = []
    for i in range(len(widths) - 1):
      layers += [nn.Linear(widths[i], widths[i + 1])] + ([nn.RReLU()] if i < len(widths) - 2
                                                           else [])
    self.net = nn.Sequential(*layers)

  def forward(self, feed):
    return self.net(feed)


def hash_function(feed, code_bits):
  feed = F.normalize(feed) * np.sqrt(code_bits)
  return torch.log(feed ** 2 * 3.92155 + 1) / (feed * 1.59362 + 1e-7)


def ticks(num_clips, kernels, strides):
  """The release's candidates of a `num_clips`-clip video, `[N, 2]` clips [start, end)."""
  out = []
  for k, s in zip(kernels, strides):
    if k <= num_clips:
      out += [(x - k, x) for x in range(k, num_clips + 1, s)]
  return np.array(out, dtype=np.float32)


def iou(s0, t0, s1, t1):
  """The release's `utils.iou.iou`."""
  inter = (torch.minimum(t0, t1) - torch.maximum(s0, s1)).clamp(min=0)
  return inter / (torch.maximum(t0, t1) - torch.minimum(s0, s1) + 1e-7)


class CMHN(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    self.config, self.cfg = config, config.cmhn
    self.text_encoder = common.text_encoder(config, vocab_size)
    text_width = 2 * config.text.head_hidden if config.text.head else config.text.glove_dim
    self.model_v = VideoModule(self.cfg, feature_dim)
    self.model_s = SentenceModule(self.cfg, text_width)

  def videos(self, batch):
    """Per video of the batch: (its valid clips, [start, end) seconds of its ticks)."""
    for b, length in enumerate(batch["video_mask"].sum(-1).tolist()):
      feats = batch["video_feats"][b, :length]
      if self.cfg.normalize_clips:
        feats = feats / (feats.norm(dim=-1, keepdim=True) + 1e-7)
      seconds = batch["duration"][b] / length
      yield b, feats, torch.as_tensor(ticks(length, self.cfg.kernels, self.cfg.strides)) * seconds

  def forward(self, batch):
    """-> {"moment_codes": per video [N_b, L], "query_codes": [B, Q, L]}, hashed."""
    _, sentence = self.text_encoder(batch["query_tokens"], batch["query_mask"])
    bits = self.cfg.code_bits
    codes = [hash_function(self.model_v(feats.t()[None]), bits)
             for _, feats, _ in self.videos(batch)]
    query = hash_function(self.model_s(sentence).flatten(0, 1), bits).view(
        *sentence.shape[:2], bits)
    return {"moment_codes": codes, "query_codes": query}

  def loss(self, outputs, batch):
    loss1, loss2 = [], []
    for (b, _, times), output_v in zip(self.videos(batch), outputs["moment_codes"]):
      valid = batch["query_valid"][b]
      output_s = outputs["query_codes"][b][valid]
      # tacos.py: a sentence's sim is the max over its timestamps
      windows = (batch["gt_windows"][b] if "gt_windows" in batch
                 else batch["gt_times"][b][:, None])[valid]
      sim = torch.zeros(len(windows), len(times))
      for k in range(windows.shape[1]):
        gt = windows[:, k]
        sim = torch.maximum(sim, iou(gt[:, None, 0], gt[:, None, 1],
                                     times[None, :, 0], times[None, :, 1]))
      loss1.append(torch.sum((output_s @ output_v.t() - sim * self.cfg.code_bits) ** 2))
      loss2.append(torch.sum((output_s - torch.sign(output_s).detach()) ** 2)
                   + torch.sum((output_v - torch.sign(output_v).detach()) ** 2))
    real = batch["example_valid"]
    terms = {"gamma1": torch.stack(loss1)[real].mean(), "gamma2": torch.stack(loss2)[real].mean()}
    return terms["gamma1"] + self.cfg.alpha * terms["gamma2"], terms

  def decode(self, outputs, batch):
    """`[B, Q, K, 3]`: the release ranks sign(H_s) . sign(H_v); the score is minus the
    Hamming distance (L - that) / 2, equal distances ordered by the codes' cosine
    (ours: the release leaves them to `torch.topk`)."""
    q, bits = batch["query_valid"].shape[1], self.cfg.code_bits
    k = self.config.eval.top_k
    k = int(k) if k > 0 else max(len(c) for c in outputs["moment_codes"])
    ranked = torch.full((len(outputs["moment_codes"]), q, k, 3), -torch.inf)
    ranked[..., :2] = 0.0
    for (b, _, times), output_v in zip(self.videos(batch), outputs["moment_codes"]):
      output_s = outputs["query_codes"][b]
      ans = torch.sign(output_s) @ torch.sign(output_v).t()
      cosine = F.normalize(output_s) @ F.normalize(output_v).t()
      score, index = torch.topk((ans - bits) / 2 + 0.25 * cosine, min(k, len(times)))
      ranked[b, :, :len(times[:k])] = torch.cat([times[index], score[..., None]], -1)
    return ranked
