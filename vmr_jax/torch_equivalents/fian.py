"""FIAN in eager PyTorch: the layers, sizes and losses of `vmr_jax.models.fian` with
the GloVe + BiGRU text encoder, on query-level batches, for timing only."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vmr_jax.layers import windows
from vmr_jax.torch_equivalents.common import (SentenceGRU, TransformerLayer, packed_rnn,
                                              pairwise_iou)


class WindowConv(nn.Module):
  """`vmr_jax.layers.windows.window_conv`: `[B, D, T]` -> `[B, features, N]`."""

  def __init__(self, inputs: int, features: int, num_clips: int, sizes, strides):
    super().__init__()
    self.convs = nn.ModuleList(nn.Conv1d(inputs, features, w, stride=s)
                               for w, s in zip(sizes, strides))
    self.tails = [(num_clips - w) % s != 0 for w, s in zip(sizes, strides)]

  def forward(self, x):
    outputs = []
    for conv, tail in zip(self.convs, self.tails):
      outputs.append(conv(x))
      if tail:
        outputs.append(conv(x[:, :, -conv.kernel_size[0]:]))
    return torch.cat(outputs, dim=2)


class FIAN(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int, glove_dim: int):
    super().__init__()
    cfg, text, d = config.fian, config.text, config.fian.hidden
    self.cfg, self.num_clips = cfg, config.data.num_clips
    self.sentence = SentenceGRU(vocab_size, glove_dim, text.head_hidden, text.head_layers)
    self.video_input = nn.Linear(feature_dim, d)
    self.video_self_attention = TransformerLayer(d, cfg.num_heads, cfg.mlp_dim, cfg.dropout)
    self.video_gru = nn.GRU(d, d // 2, bidirectional=True, batch_first=True)
    self.encoders = nn.ModuleDict({
        name: TransformerLayer(d, cfg.num_heads, cfg.mlp_dim, cfg.dropout, gated=True)
        for name in ("qv_query", "qv_video", "vq_video", "vq_query")})
    words = config.data.max_words
    self.to_clips = nn.ModuleList(nn.Linear(words, self.num_clips) for _ in range(2))
    self.filter = nn.Linear(2 * d, 2 * d)
    self.norm = nn.LayerNorm(2 * d)
    self.fused_gru = nn.GRU(2 * d, d // 2, bidirectional=True, batch_first=True)
    sizes = tuple(cfg.windows)
    strides = windows.ratio_strides(sizes, cfg.stride_ratio)
    self.score = WindowConv(d, 1, self.num_clips, sizes, strides)
    self.offset = WindowConv(d, 2, self.num_clips, sizes, strides)
    spans = windows.window_spans(self.num_clips, sizes, strides)
    self.register_buffer("spans", torch.as_tensor(spans, dtype=torch.float32))

  def forward(self, batch):
    """-> the loss (Eq. 18); batch: the numeric arrays of a query-level batch."""
    word_mask, clip_mask = batch["query_mask"], batch["video_mask"]
    words = self.sentence(batch["query_tokens"], word_mask, words=True)
    video = self.video_self_attention(self.video_input(batch["video_feats"]), clip_mask)
    video, _ = packed_rnn(self.video_gru, video, clip_mask)
    enc = self.encoders
    q1 = enc["qv_query"](words, word_mask, video, clip_mask)
    v1 = enc["qv_video"](video, clip_mask, q1, word_mask)
    v2 = enc["vq_video"](video, clip_mask, words, word_mask)
    q2 = enc["vq_query"](words, word_mask, v2, clip_mask)
    keep = word_mask[..., None].float()
    query_pair = torch.cat([proj((q * keep).transpose(1, 2)).transpose(1, 2)
                            for proj, q in zip(self.to_clips, (q1, q2))], -1)
    ratio = torch.sigmoid(self.filter(query_pair))
    fused = self.norm(torch.cat([v1, v2], -1) + ratio * query_pair)
    fused, _ = packed_rnn(self.fused_gru, fused, clip_mask)
    logits = self.score(fused.transpose(1, 2))[:, 0]
    offsets = self.offset(fused.transpose(1, 2)).transpose(1, 2)
    return self.loss(logits, offsets, batch)

  def loss(self, logits, offsets, batch):
    cfg = self.cfg
    seconds = batch["duration"] / self.num_clips
    times = self.spans[None] * seconds[:, None, None]
    gt = batch["gt_times"]
    iou = pairwise_iou(times, gt[:, None])[..., 0]
    positive = iou > cfg.positive_iou
    best = F.one_hot(iou.argmax(-1), iou.shape[-1]).bool()
    positive = positive | (best & ~positive.any(-1, keepdim=True))
    negative = ~positive
    bce = F.binary_cross_entropy_with_logits(logits, iou, reduction="none")
    mean = lambda x, m: (x * m).sum(-1) / m.float().sum(-1).clamp(min=1)
    align = mean(bce, positive) + mean(bce, negative)
    target = (gt[:, None] - times) / seconds[:, None, None]
    smooth_l1 = F.smooth_l1_loss(offsets, target, reduction="none").sum(-1)
    return (align + cfg.alpha * mean(smooth_l1, positive)).mean()
