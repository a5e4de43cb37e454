"""HSCNet in eager PyTorch: the layers, sizes and losses of `vmr_jax.models.hscnet`
(GloVe-sized word vectors, no recurrent text head), for timing only."""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from vmr_jax.torch_equivalents.common import Attention, TransformerLayer, mlp, packed_rnn


def sinusoidal(positions: int, dim: int) -> torch.Tensor:
  """`[positions, dim]`, interleaved sin/cos as `vmr_jax.layers.attention`'s."""
  rates = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2) / dim)
  angles = torch.arange(positions)[:, None].float() * rates
  return torch.stack([angles.sin(), angles.cos()], -1).reshape(positions, dim)


class MultiModalLayer(nn.Module):
  def __init__(self, dim, heads, mlp_dim, dropout, sigma):
    super().__init__()
    self.projection = nn.Linear(dim, dim)
    self.attention = Attention(dim, heads, cosine=True, sigma=sigma, dropout=dropout)
    self.norm = nn.LayerNorm(dim)
    self.mlps = nn.ModuleList(mlp([dim, mlp_dim, dim]) for _ in range(2))
    self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
    self.dropout = nn.Dropout(dropout)

  def forward(self, video, video_mask, text, text_mask):
    t = video.shape[1]
    m = self.projection(torch.cat([video, text], 1))
    mask = torch.cat([video_mask, text_mask], 1)
    h = self.norm(m + self.dropout(self.attention(m, m, mask)))
    return tuple(norm(part + self.dropout(f(part)))
                 for f, norm, part in zip(self.mlps, self.norms, (h[:, :t], h[:, t:])))


class SpanHead(nn.Module):
  def __init__(self, inputs, hidden):
    super().__init__()
    self.mlp = mlp([inputs, hidden, 2])

  def forward(self, x):
    center, width = self.mlp(x).sigmoid().unbind(-1)
    return torch.stack([center - width / 2, center + width / 2], -1)


def masked_mean(x, mask):
  weights = mask.float()[..., None]
  return (x * weights).sum(-2) / weights.sum(-2).clamp(min=1.0)


def aggregate(text, video, video_mask, tau):
  q, v = F.normalize(text, dim=-1), F.normalize(video, dim=-1)
  a = (q @ v.transpose(1, 2) / tau).masked_fill(~video_mask[:, None],
                                                 torch.finfo(q.dtype).min)
  return torch.cat([q, a.softmax(-1) @ v], -1), a


def l1_giou(pred, target, mask):
  inter = (torch.minimum(pred[..., 1], target[..., 1])
           - torch.maximum(pred[..., 0], target[..., 0])).clamp(min=0)
  union = (pred[..., 1] - pred[..., 0]) + (target[..., 1] - target[..., 0]) - inter
  hull = torch.maximum(pred[..., 1], target[..., 1]) - torch.minimum(pred[..., 0],
                                                                     target[..., 0])
  giou = inter / union.clamp(min=1e-9) - (hull - union) / hull.clamp(min=1e-9)
  per = (pred - target).abs().sum(-1) + 1 - giou
  return (per * mask).sum() / mask.float().sum().clamp(min=1)


def alignment_nll(similarity, inside, valid):
  floor = torch.finfo(similarity.dtype).min
  nll = similarity.logsumexp(-1) - similarity.masked_fill(~inside, floor).logsumexp(-1)
  return (nll * valid).sum() / valid.float().sum().clamp(min=1)


class HSCNet(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int, glove_dim: int):
    super().__init__()
    cfg = self.cfg = config.hscnet
    d = cfg.hidden
    layer = lambda: TransformerLayer(d, cfg.num_heads, cfg.mlp_dim, cfg.dropout)
    level = lambda n: nn.ModuleList(
        MultiModalLayer(d, cfg.num_heads, cfg.mlp_dim, cfg.dropout, cfg.sigma_init)
        for _ in range(n))
    self.embedding = nn.Embedding(vocab_size, glove_dim)
    self.video_projection, self.word_projection = (nn.Linear(feature_dim, d),
                                                   nn.Linear(glove_dim, d))
    self.video_encoder = nn.ModuleList(layer() for _ in range(cfg.video_layers))
    self.text_encoder = nn.ModuleList(layer() for _ in range(cfg.text_layers))
    self.levels = nn.ModuleList(level(n) for n in (cfg.word_layers, cfg.sentence_layers,
                                                   cfg.paragraph_layers))
    self.sentence_query, self.sentence_video = layer(), layer()
    self.paragraph_query, self.paragraph_video = layer(), layer()
    self.paragraph_linear = nn.Linear(2 * d, d)
    self.paragraph_head, self.sentence_head = SpanHead(d, d), SpanHead(d, d)
    self.word_head, self.grounding_head = SpanHead(d, d), SpanHead(2 * d, d)
    self.sentence_lstm = nn.LSTM(4 * d, d, batch_first=True)
    self.word_lstm = nn.LSTM(3 * d, d, batch_first=True)
    self.word_selection = Attention(d, cfg.num_heads)
    self.dropout = nn.Dropout(cfg.dropout)

  @staticmethod
  def run_level(layers, video, video_mask, text, text_mask):
    for layer in layers:
      video, text = layer(video, video_mask, text, text_mask)
    return video, text

  def forward(self, batch):
    """-> the total loss; batch: the numeric arrays of a video-level batch, as tensors."""
    cfg, d = self.cfg, self.cfg.hidden
    video_mask, sentence_mask = batch["video_mask"], batch["query_valid"]
    word_mask = batch["query_mask"] & sentence_mask[..., None]
    b, q, length = word_mask.shape
    t = video_mask.shape[1]
    video = self.dropout(self.video_projection(batch["video_feats"]) + sinusoidal(t, d))
    for layer in self.video_encoder:
      video = layer(video, video_mask)
    positions = torch.cat([sinusoidal(length, d // 2)[None].expand(q, length, d // 2),
                           sinusoidal(q, d // 2)[:, None].expand(q, length, d // 2)], -1)
    words = self.word_projection(self.embedding(batch["query_tokens"])) + positions
    words, flat_mask = self.dropout(words).reshape(b, q * length, d), word_mask.reshape(b, -1)
    for layer in self.text_encoder:
      words = layer(words, flat_mask)

    video, words = self.run_level(self.levels[0], video, video_mask, words, flat_mask)
    g_word, a_word = aggregate(words, video, video_mask, cfg.tau)
    sentences = self.sentence_query(masked_mean(words.reshape(b, q, length, d), word_mask),
                                    sentence_mask, words, flat_mask)
    video = self.sentence_video(video, video_mask)
    video, sentences = self.run_level(self.levels[1], video, video_mask, sentences,
                                      sentence_mask)
    g_sentence, a_sentence = aggregate(sentences, video, video_mask, cfg.tau)
    paragraph_mask = torch.ones(b, 1, dtype=torch.bool)
    paragraph = self.paragraph_query(masked_mean(sentences, sentence_mask)[:, None],
                                     paragraph_mask, sentences, sentence_mask)
    video = self.paragraph_video(video, video_mask)
    video, paragraph = self.run_level(self.levels[2], video, video_mask, paragraph,
                                      paragraph_mask)
    g_paragraph, a_paragraph = aggregate(paragraph, video, video_mask, cfg.tau)

    paragraph_span = self.paragraph_head(self.paragraph_linear(g_paragraph[:, 0]))
    g_sp, _ = packed_rnn(self.sentence_lstm,
                         torch.cat([g_sentence, g_paragraph.expand(b, q, -1)], -1),
                         sentence_mask)
    sentence_spans = self.sentence_head(g_sp)
    word_inputs = torch.cat([g_word.reshape(b, q, length, 2 * d),
                             g_sp[:, :, None].expand(b, q, length, d)], -1)
    g_ws, _ = packed_rnn(self.word_lstm, word_inputs.reshape(b * q, length, 3 * d),
                         word_mask.reshape(b * q, length))
    word_spans = self.word_head(g_ws.reshape(b, q, length, d))
    selected = self.word_selection(g_sp.reshape(b * q, 1, d), g_ws,
                                   word_mask.reshape(b * q, length)).reshape(b, q, d)
    spans = self.grounding_head(torch.cat([selected, g_sp], -1))
    return self.loss(batch, a_word.reshape(b, q, length, t), a_sentence, a_paragraph[:, 0],
                     paragraph_span, sentence_spans, word_spans, spans, word_mask)

  def loss(self, batch, a_word, a_sentence, a_paragraph, paragraph_span, sentence_spans,
           word_spans, spans, word_mask):
    sentence_mask, video_mask = batch["query_valid"], batch["video_mask"]
    target = (batch["gt_times"] / batch["duration"][:, None, None]).clamp(0, 1)
    hull = torch.stack([target[..., 0].masked_fill(~sentence_mask, 1).amin(-1),
                        target[..., 1].masked_fill(~sentence_mask, 0).amax(-1)], -1)
    n = video_mask.sum(-1).float()[:, None, None]
    index = torch.arange(video_mask.shape[1]).float()
    start, end = target[..., :1], target[..., 1:]
    inside = ((index / n < end) & ((index + 1) / n > start)) | (
        index == torch.minimum(torch.floor(start * n), n - 1))
    inside = inside & video_mask[:, None]
    example = torch.ones(len(hull), dtype=torch.bool)
    word_hull = torch.stack([word_spans[..., 0].masked_fill(~word_mask, 2).amin(-1),
                             word_spans[..., 1].masked_fill(~word_mask, -1).amax(-1)], -1)
    has_words = word_mask.any(-1)
    word_hull = torch.where(has_words[..., None], word_hull, target)
    outside = ((target[:, :, None, 0] - word_spans[..., 0]).clamp(min=0)
               + (word_spans[..., 1] - target[:, :, None, 1]).clamp(min=0))
    return (alignment_nll(a_word, inside[:, :, None].expand_as(a_word), word_mask)
            + alignment_nll(a_sentence, inside, sentence_mask)
            + alignment_nll(a_paragraph, (inside & sentence_mask[..., None]).any(1), example)
            + l1_giou(paragraph_span, hull, example)
            + l1_giou(sentence_spans, target, sentence_mask)
            + l1_giou(word_hull, target, sentence_mask & has_words)
            + (outside * word_mask).sum() / word_mask.float().sum().clamp(min=1)
            + l1_giou(spans, target, sentence_mask))
