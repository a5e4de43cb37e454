"""CLEAR's released reading in eager PyTorch, written from the authors' code
(github.com/Huyp777/CSUN, CSUN_T: `fineGraind/`, `coarse/`, `dataset/tacos.py`,
`utils/inference.py`, `utils/tools.py`), not from `vmr_jax.models.clear_released`.

The modules keep the release's structure and names: `fine` with `fp` (`video_pool`),
`f_2dmap` (`get2dMap`: `mask2d`, `maskij`, `poolers` of MaxPool1d, a dense N x N
map, column N - 1 zeroed), `query_encode` (`queryEncode`: `lstm`, `fc`, `conv`,
F.normalize over the channels), `predictor` (`Predictor`: `mask2weight`, `convs`
with the first one padded by (k - 1) * layers // 2, `pred`) and `fineLoss`; `coarse`
with `sentence` (`SentenceModule`: `lstm`, `fc`, `net`) and `video` (`VideoModule`:
`tcn`, `conv1d`, `trans`, `net`), and its loss sum((matmul(s, v^T) - sim * scale)^2)
with the release's broadcasting (`sim [B, 1, A]`: entry [b, i, a] of the [B, B, A]
product, sentence i against video b's anchor a, is pulled towards video b's own
sentence's IoU). The anchors are the dataset's `ticks` (mask2d before the removal of
row 0 and column N - 1: cells (0, j) by j, then (i, N - 1) by i), the fine targets
`moment_to_iou2d`, the ranking `utils/inference.predict` and `score2d_to_moments_scores`.
The TCN is the CMHN twin's (CSUN's `coarse/tcn.py` is CMHN's `tcn.py`, byte for byte).
Sizes come from `config.clear`; 2D-TAN's `pooling_counts` are `scale_layers` less
the diagonal: (scale_layers[0] - 1, *scale_layers[1:]).

The Flax model names its layers flat (`fine/query_encode_conv`, `coarse/video_trans`);
each release layer is therefore also registered under its Flax name, ahead of the
release's containers, so that `named_parameters()` and
`vmr_jax.tools.twins.convert` see the Flax names (the CMHN twin's
`TemporalBlock` holds `conv1` the same way, itself and inside `net`). The release's
1x1 convolutions (`fp.conv`, `query_encode.conv`, `predictor.pred`) keep their
weights as an `nn.Linear`'s `[out, in]` (the Flax Dense kernel) and run as
convolutions (`F.conv1d` / `F.conv2d` with a 1 x 1 kernel).

What this twin does differently from the release, as the JAX model does:
1. the rule reads c = s_i . v_i (the sentence's own video), not `check[0, i]` (the
   batch's first video), and `rule_anchor` for the release's 31; it keeps the
   release's branches: e > rho scales cell (N - 2, N - 1) (masked: nothing changes),
   mu <= e <= rho scales row N - 4 by 10;
2. the clips are L2-normalized per clip (F.normalize) as given (already resampled
   to `data.num_clips`; the release normalizes the raw clips, then averages them);
3. the targets come from the batch's `gt_times` and `duration` (both the coarse
   `sim`, union + 1e-7, and the fine `iou2d`, 2D-TAN's IoU, then fineLoss's scaling);
4. padded examples (`example_valid` False) are left out: the fine loss is the mean
   over the valid examples of each one's mean over the mask2d cells (the release's
   mean over every selected cell, the same when all are valid); the coarse sum runs
   over the pairs whose sentence and video both belong to valid examples;
5. the words are the GloVe table of `common.text_encoder` (frozen as
   `text.trainable`), lengths `query_mask.sum(-1)`; the unidirectional LSTMs run
   over the padded words and are read at word `length - 1`, as the release does.
The ranking keeps every mask2d cell (the release keeps the nonzero scores, the same
unless a sigmoid underflows to 0) and returns the best `eval.top_k` without NMS.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vmr_jax.tools.twins import common
from vmr_jax.tools.twins.cmhn_released import TemporalConvNet


def pooling_counts(scale_layers):
  """2D-TAN's pooling counts: ours count the diagonal in the first scale."""
  return [scale_layers[0] - 1, *scale_layers[1:]]


def _flax_names_first(module: nn.Module, names: dict) -> None:
  """Registers `names` (Flax name -> a submodule `module` already holds somewhere)
  as `module`'s first children, so the Flax names win in `named_parameters()`."""
  own = dict(module._modules)
  module._modules.clear()
  module._modules.update(names)
  module._modules.update({k: v for k, v in own.items() if k not in names})


def conv1x1(linear: nn.Linear, x):
  """A 1 x 1 convolution of channels-first `x` [B, C, ...] with a Linear's weights."""
  weight = linear.weight.reshape(*linear.weight.shape, *([1] * (x.dim() - 2)))
  conv = F.conv1d if x.dim() == 3 else F.conv2d
  return conv(x, weight, linear.bias)


# fineGraind/pool.py
class video_pool(nn.Module):
  def __init__(self, input_size, hidden_size, kernel_size, stride):
    super().__init__()
    self.conv = nn.Linear(input_size, hidden_size)  # Conv1d(input, hidden, 1, 1)
    self.pool = nn.AvgPool1d(kernel_size, stride)

  def forward(self, x):
    """[B, T, F] -> [B, D, T / stride]."""
    return self.pool(conv1x1(self.conv, x.transpose(1, 2)).relu())


# fineGraind/getmap.py
class get2dMap(nn.Module):
  def __init__(self, pooling_counts, N):
    super().__init__()
    mask2d = torch.zeros(N, N, dtype=torch.bool)
    mask2d[range(N), range(N)] = True
    stride, offset, maskij = 1, 0, []
    for c in pooling_counts:
      for _ in range(c):
        offset += stride
        i, j = list(range(0, N - offset, stride)), list(range(offset, N, stride))
        mask2d[i, j] = True
        mask2d[0, j] = False  # no candidate starts at clip 0 (but (0, 0)) ...
        mask2d[i, N - 1] = False  # ... or ends at clip N - 1 (but (N - 1, N - 1))
        maskij.append((i, j))
      stride *= 2
    poolers = [nn.MaxPool1d(2, 1) for _ in range(pooling_counts[0])]
    for c in pooling_counts[1:]:
      poolers += [nn.MaxPool1d(3, 2)] + [nn.MaxPool1d(2, 1) for _ in range(c - 1)]
    self.N, self.mask2d, self.maskij, self.poolers = N, mask2d, maskij, poolers

  def forward(self, x):
    B, D, N = x.shape
    map2d = x.new_zeros(B, D, N, N)
    map2d[:, :, range(N), range(N)] = x
    for pooler, (i, j) in zip(self.poolers, self.maskij):
      x = pooler(x)
      map2d[:, :, i, j] = x
    map2d[:, :, :, N - 1] = 0
    return map2d


# fineGraind/encode.py
class queryEncode(nn.Module):
  def __init__(self, feat_hidden_size, query_input_size, query_hidden_size, num_layers):
    super().__init__()
    self.lstm = nn.LSTM(query_input_size, query_hidden_size, num_layers=num_layers,
                        bidirectional=False, batch_first=True)
    self.fc = nn.Linear(query_hidden_size, feat_hidden_size)
    self.conv = nn.Linear(feat_hidden_size, feat_hidden_size)  # Conv2d(D, D, 1, 1)

  def encode_query(self, queries, wordlens):
    queries = self.lstm(queries)[0]
    queries = queries[torch.arange(queries.shape[0]), wordlens.long() - 1]
    return self.fc(queries)

  def forward(self, queries, wordlens, map2d):
    queries = self.encode_query(queries, wordlens)[:, :, None, None]
    return F.normalize(queries * conv1x1(self.conv, map2d))


# fineGraind/predictor.py
def mask2weight(mask2d, mask_kernel, padding=0):
  weight = F.conv2d(mask2d[None, None].float(), mask_kernel, padding=padding)[0, 0]
  weight[weight > 0] = 1 / weight[weight > 0]
  return weight


class Predictor(nn.Module):
  def __init__(self, input_size, hidden_size, k, num_stack_layers, mask2d):
    super().__init__()
    mask_kernel = torch.ones(1, 1, k, k)
    first_padding = (k - 1) * num_stack_layers // 2
    self.weights = [mask2weight(mask2d, mask_kernel, padding=first_padding)]
    self.convs = nn.ModuleList([nn.Conv2d(input_size, hidden_size, k, padding=first_padding)])
    for _ in range(num_stack_layers - 1):
      self.weights.append(mask2weight(self.weights[-1] > 0, mask_kernel))
      self.convs.append(nn.Conv2d(hidden_size, hidden_size, k))
    self.pred = nn.Linear(hidden_size, 1)  # Conv2d(hidden, 1, 1)

  def forward(self, x):
    for conv, weight in zip(self.convs, self.weights):
      x = conv(x).relu() * weight.to(x.dtype)
    return conv1x1(self.pred, x)[:, 0]  # the release's squeeze_(), batch kept


# fineGraind/fineloss.py
class fineLoss:
  def __init__(self, min_iou, max_iou, mask2d):
    self.min_iou, self.max_iou, self.mask2d = min_iou, max_iou, mask2d

  def scale(self, iou):
    return (iou - self.min_iou) / (self.max_iou - self.min_iou)

  def __call__(self, scores2d, ious2d, valid):
    """Per example the mean BCE over the mask2d cells, averaged over `valid` ones."""
    ious2d = self.scale(ious2d).clamp(0, 1)
    bce = F.binary_cross_entropy_with_logits(scores2d[:, self.mask2d], ious2d[:, self.mask2d],
                                             reduction="none").mean(-1)
    return bce[valid].sum() / valid.sum().clamp(min=1)


# fineGraind/fineGraindModule.py
class fine(nn.Module):
  def __init__(self, cfg, feature_dim, word_dim, num_clips):
    super().__init__()
    N = num_clips // cfg.frame_pool
    self.fp = video_pool(feature_dim, cfg.frame_dim, cfg.frame_pool, cfg.frame_pool)
    self.f_2dmap = get2dMap(pooling_counts(cfg.scale_layers), N)
    self.query_encode = queryEncode(cfg.frame_dim, word_dim, cfg.query_hidden,
                                    cfg.query_layers)
    self.predictor = Predictor(cfg.frame_dim, cfg.predictor_hidden, cfg.predictor_kernel,
                               cfg.predictor_layers, self.f_2dmap.mask2d)
    self.fineLoss = fineLoss(cfg.iou_low, cfg.iou_high, self.f_2dmap.mask2d)
    _flax_names_first(self, {"fp_conv": self.fp.conv,
                             "query_encode_conv": self.query_encode.conv,
                             "query_encode_fc": self.query_encode.fc,
                             "query_encode_lstm": self.query_encode.lstm})

  def forward(self, feats, queries, wordlens):
    """-> scores2d [B, N, N], the logits of the whole grid."""
    map_2d = self.f_2dmap(self.fp(feats))
    return self.predictor(self.query_encode(queries, wordlens, map_2d))


# dataset/tacos.py
def ticks(N, pooling_counts):
  """The coarse anchors (tick0, tick1), clip indices: mask2d before the removal of
  row 0 and column N - 1, its cells (0, j) by j, then (i, N - 1) by i."""
  mask2d = torch.zeros(N, N, dtype=torch.bool)
  mask2d[range(N), range(N)] = True
  offset, stride = 0, 1
  for c in pooling_counts:
    for _ in range(c):
      offset += stride
      mask2d[list(range(0, N - offset, stride)), list(range(offset, N, stride))] = True
    stride *= 2
  tick0, tick1 = [], []
  for j in range(N):
    if mask2d[0, j]:
      tick0.append(0)
      tick1.append(j)
  for i in range(N):
    if mask2d[i, N - 1]:
      tick0.append(i)
      tick1.append(N - 1)
  return torch.tensor(tick0), torch.tensor(tick1)


# coarse/utils.py
def iou(s0, t0, s1, t1):
  inter = (torch.minimum(t0, t1) - torch.maximum(s0, s1)).clamp(min=0)
  return inter / (torch.maximum(t0, t1) - torch.minimum(s0, s1) + 1e-7)


# coarse/video.py
class VideoModule(nn.Module):
  def __init__(self, cfg, feature_dim, num_clips, num_anchors):
    super().__init__()
    width = cfg.tcn_channels[-1]
    self.kernels, self.strides = list(cfg.coarse_kernels), list(cfg.coarse_strides)
    self.tcn = TemporalConvNet(feature_dim, list(cfg.tcn_channels), cfg.tcn_kernel,
                               cfg.dropout)
    self.conv1d = nn.ModuleList([nn.Conv1d(width, width, k, stride=s, dilation=1)
                                 for s, k in zip(self.strides, self.kernels)])
    self.net = nn.Sequential(nn.RReLU(), nn.Linear(width, cfg.coarse_dim), nn.RReLU(),
                             nn.Linear(cfg.coarse_dim, cfg.coarse_dim))
    positions = sum((num_clips - k) // s + 1 for k, s in zip(self.kernels, self.strides)
                    if num_clips >= k)  # the release's 3354
    self.trans = nn.Sequential(nn.RReLU(), nn.Linear(positions, num_anchors))

  def forward(self, feed):
    """[B, F, T] -> [B, A, d]."""
    feed = self.tcn(feed)
    out = [conv1d(feed) for k, conv1d in zip(self.kernels, self.conv1d) if feed.shape[2] >= k]
    out = self.trans(torch.cat(out, dim=2))  # [B, C, A]
    return self.net(out.permute(0, 2, 1))


# coarse/sentence.py
class SentenceModule(nn.Module):
  def __init__(self, cfg, word_dim):
    super().__init__()
    self.lstm = nn.LSTM(word_dim, cfg.sentence_hidden, num_layers=cfg.sentence_layers,
                        bidirectional=False, batch_first=True)
    self.fc = nn.Linear(cfg.sentence_hidden, cfg.sentence_fc)
    self.net = nn.Sequential(nn.RReLU(), nn.Linear(cfg.sentence_fc, cfg.coarse_dim))

  def encode_query(self, queries, wordlens):
    queries = self.lstm(queries)[0]
    queries = queries[torch.arange(queries.shape[0]), wordlens.long() - 1]
    return self.fc(queries)

  def forward(self, queries, wordlens):
    return self.net(self.encode_query(queries, wordlens))


# coarse/coarseModule.py
class coarse(nn.Module):
  def __init__(self, cfg, feature_dim, word_dim, num_clips, num_anchors):
    super().__init__()
    self.scale = cfg.coarse_scale
    self.sentence = SentenceModule(cfg, word_dim)
    self.video = VideoModule(cfg, feature_dim, num_clips, num_anchors)
    _flax_names_first(self, {"video_tcn": self.video.tcn, "video_conv1d": self.video.conv1d,
                             "video_trans": self.video.trans[1], "video_net": self.video.net,
                             "sentence_lstm": self.sentence.lstm,
                             "sentence_fc": self.sentence.fc,
                             "sentence_net": self.sentence.net})

  def forward(self, feats, queries, wordlens):
    """-> (feat_s [B, d], feat_v [B, A, d])."""
    return self.sentence(queries, wordlens), self.video(feats.permute(0, 2, 1))

  def loss(self, output_s, output_v, sim, valid):
    """`sim [B, 1, A]`; the [B, B, A] terms of pairs with an invalid example dropped."""
    residual = torch.matmul(output_s, output_v.permute(0, 2, 1)) - sim * self.scale
    pairs = (valid[:, None] & valid[None, :])[..., None]
    return torch.sum(torch.where(pairs, residual, torch.zeros_like(residual)) ** 2)


class CLEAR(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    self.config, self.cfg = config, config.clear
    cfg, num_clips = config.clear, config.data.num_clips
    self.N = num_clips // cfg.frame_pool
    self.tick0, self.tick1 = ticks(self.N, pooling_counts(cfg.scale_layers))
    self.text_encoder = common.text_encoder(config, vocab_size)
    word_dim = config.text.glove_dim
    self.fine = fine(cfg, feature_dim, word_dim, num_clips)
    self.coarse = coarse(cfg, feature_dim, word_dim, num_clips, len(self.tick0))

  def forward(self, batch):
    """-> {"scores2d": [B, N, N], "fine_logits": [B, C] (the mask2d cells, row-major),
    "anchors": v [B, A, d], "sentences": s [B, d]}."""
    feats = F.normalize(batch["video_feats"], dim=-1)
    queries = self.text_encoder.embed(batch["query_tokens"])
    wordlens = batch["query_mask"].sum(-1)
    scores2d = self.fine(feats, queries, wordlens)
    feat_s, feat_v = self.coarse(feats, queries, wordlens)
    return {"scores2d": scores2d, "fine_logits": scores2d[:, self.fine.f_2dmap.mask2d],
            "anchors": feat_v, "sentences": feat_s}

  def iou2d(self, batch):
    """`utils/tools.moment_to_iou2d` per example: [B, N, N]."""
    N, dtype = self.N, batch["duration"].dtype
    grids = torch.ones(N, N).nonzero().to(dtype)
    grids[:, 1] += 1
    moments = grids[None] * (batch["duration"] / N)[:, None, None]  # [B, N * N, 2]
    s, e = batch["gt_times"][:, None, 0], batch["gt_times"][:, None, 1]
    start, end = moments[..., 0], moments[..., 1]
    inter = torch.minimum(end, e) - torch.maximum(start, s)
    union = torch.maximum(end, e) - torch.minimum(start, s)
    return (inter.clamp(min=0) / union).reshape(-1, N, N)

  def sim(self, batch):
    """`dataset/tacos.py`'s sim per example: [B, 1, A]."""
    seconds = (batch["duration"] / self.N)[:, None]
    ticks0, ticks1 = self.tick0.to(seconds.dtype) * seconds, self.tick1.to(seconds.dtype) * seconds
    gt = batch["gt_times"]
    t0 = torch.minimum(gt[:, 0], gt[:, 1])[:, None]
    t1 = torch.maximum(gt[:, 0], gt[:, 1])[:, None]
    return iou(t0, t1, ticks0, ticks1)[:, None]

  def loss(self, outputs, batch):
    valid = batch["example_valid"]
    terms = {"fine": self.fine.fineLoss(outputs["scores2d"], self.iou2d(batch), valid),
             "coarse": self.coarse.loss(outputs["sentences"], outputs["anchors"],
                                        self.sim(batch), valid)}
    return terms["fine"] + terms["coarse"], terms

  def predict(self, outputs):
    """`utils/inference.predict`: the score maps [B, N, N] after the rule."""
    mask2d = self.fine.f_2dmap.mask2d
    output = outputs["scores2d"].sigmoid() * mask2d
    check = torch.matmul(outputs["sentences"], outputs["anchors"].permute(0, 2, 1))  # [B, B, A]
    mu, alpha, anchor = self.cfg.mu, self.cfg.rho, self.cfg.rule_anchor
    results = []
    for i, result in enumerate(output):
      c = check[i, i]  # ours: the sentence's own video (the release: check[0, i])
      score = (c[-1] - c[anchor]) / c[anchor]
      if score > alpha:
        result[-2][-1] = abs(result[-2][-1]) * 10  # (N - 2, N - 1): not in mask2d
      elif score >= mu:
        result[1:-3][-1] = abs(result[1:-3][-1]) * 10  # row N - 4
      results.append(result)
    return torch.stack(results)

  def decode(self, outputs, batch):
    """`[B, K, 3]`: `score2d_to_moments_scores` over the mask2d cells, best first."""
    score2d = self.predict(outputs)
    grids = self.fine.f_2dmap.mask2d.nonzero()
    scores = score2d[:, grids[:, 0], grids[:, 1]]  # [B, C]
    grids = grids.clone()
    grids[:, 1] += 1
    moments = grids[None].to(score2d.dtype) * (batch["duration"] / self.N)[:, None, None]
    k = self.config.eval.top_k
    k = len(grids) if k <= 0 else min(int(k), len(grids))
    best, index = torch.sort(scores, dim=-1, descending=True)
    best, index = best[:, :k], index[:, :k]
    picked = torch.gather(moments, 1, index[..., None].expand(-1, -1, 2))
    return torch.cat([picked, best[..., None].to(picked.dtype)], dim=-1)
