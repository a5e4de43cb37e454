"""HSCNet in eager PyTorch: the twin of `vmr_jax.models.hscnet` (GloVe word vectors, no
recurrent text head)."""

from __future__ import annotations

import torch
from torch import nn

from vmr_jax.tools.twins import common


class MultiModalLayer(nn.Module):
  """`hscnet.MultiModalLayer` (Eq. 1-2)."""

  def __init__(self, dim, heads, mlp_dim, dropout, sigma):
    super().__init__()
    self.projection = nn.Linear(dim, dim)
    self.attention = common.MultiHeadAttention(dim, heads, dropout, "cosine", sigma)
    self.attention_norm = common.layer_norm(dim)
    self.video_mlp = common.MLP(dim, (mlp_dim, dim), "relu", "none")
    self.text_mlp = common.MLP(dim, (mlp_dim, dim), "relu", "none")
    self.video_norm, self.text_norm = common.layer_norm(dim), common.layer_norm(dim)
    self.dropout = nn.Dropout(dropout)

  def forward(self, video, video_mask, text, text_mask):
    t = video.shape[1]
    m = self.projection(torch.cat([video, text], 1))
    mask = torch.cat([video_mask, text_mask], 1)
    h = self.attention_norm(m + self.dropout(self.attention(m, m, mask)))
    return (self.video_norm(h[:, :t] + self.dropout(self.video_mlp(h[:, :t]))),
            self.text_norm(h[:, t:] + self.dropout(self.text_mlp(h[:, t:]))))


class SpanHead(nn.Module):
  """`hscnet.SpanHead`: sigmoid (center, width) -> (start, end)."""

  def __init__(self, inputs, hidden):
    super().__init__()
    self.mlp = common.MLP(inputs, (hidden, 2), "relu", "none")

  def forward(self, x):
    center, width = self.mlp(x).sigmoid().unbind(-1)
    return torch.stack([center - width / 2, center + width / 2], -1)


def aggregate(text, video, video_mask, tau):
  """`hscnet.aggregate` (Eq. 5-6)."""
  q, v = common.l2_normalize(text), common.l2_normalize(video)
  a = (q @ v.transpose(1, 2) / tau).masked_fill(~video_mask[:, None], torch.finfo(q.dtype).min)
  return torch.cat([q, a.softmax(-1) @ v], -1), a


def clips_in_spans(spans, video_mask):
  """`hscnet.clips_in_spans`: `[B, *S, 2]`, `[B, T]` -> `[B, *S, T]`."""
  extra = (1,) * (spans.dim() - 2)
  n = video_mask.sum(-1).to(spans.dtype).reshape(-1, *extra, 1)
  index = torch.arange(video_mask.shape[1], dtype=spans.dtype)
  start, end = spans[..., :1], spans[..., 1:]
  overlaps = (index / n < end) & ((index + 1) / n > start)
  holds_start = index == torch.minimum(torch.floor(start * n).clamp(min=0), n - 1)
  return (overlaps | holds_start) & video_mask.reshape(video_mask.shape[0], *extra, -1)


def alignment_nll(similarity, inside, valid):
  floor = torch.finfo(similarity.dtype).min
  nll = similarity.logsumexp(-1) - similarity.masked_fill(~inside, floor).logsumexp(-1)
  return common.masked_average(nll, valid)


def temporal_giou(pred, target):
  inter = (torch.minimum(pred[..., 1], target[..., 1])
           - torch.maximum(pred[..., 0], target[..., 0])).clamp(min=0)
  union = (pred[..., 1] - pred[..., 0]) + (target[..., 1] - target[..., 0]) - inter
  hull = torch.maximum(pred[..., 1], target[..., 1]) - torch.minimum(pred[..., 0],
                                                                     target[..., 0])
  one = torch.ones_like(union)
  iou = torch.where(union > 0, inter / torch.where(union > 0, union, one), 0.0)
  return iou - torch.where(hull > 0, (hull - union) / torch.where(hull > 0, hull, one), 0.0)


def l1_giou(pred, target, mask):
  """`vmr_jax.layers.losses.l1_giou_loss`."""
  per = (pred - target).abs().sum(-1) + 1 - temporal_giou(pred, target)
  return common.masked_average(per, mask)


class HSCNet(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    cfg = self.cfg = config.hscnet
    d = cfg.hidden
    layer = lambda: common.TransformerLayer(d, cfg.num_heads, cfg.mlp_dim, cfg.dropout,
                                            cfg.dropout)
    self.text_encoder = common.text_encoder(config, vocab_size)
    self.video_projection = nn.Linear(feature_dim, d)
    self.word_projection = nn.Linear(config.text.glove_dim, d)
    for name, count in (("video_encoder", cfg.video_layers), ("text_encoder", cfg.text_layers)):
      for i in range(count):
        self.add_module(f"{name}_{i}", layer())
    for name, count in (("word_level", cfg.word_layers), ("sentence_level", cfg.sentence_layers),
                        ("paragraph_level", cfg.paragraph_layers)):
      for k in range(count):
        self.add_module(f"{name}_{k}", MultiModalLayer(d, cfg.num_heads, cfg.mlp_dim,
                                                       cfg.dropout, cfg.sigma_init))
    self.sentence_query, self.sentence_video = layer(), layer()
    self.paragraph_query, self.paragraph_video = layer(), layer()
    self.paragraph_linear = nn.Linear(2 * d, d)
    self.paragraph_head, self.sentence_head = SpanHead(d, d), SpanHead(d, d)
    self.word_head, self.grounding_head = SpanHead(d, d), SpanHead(2 * d, d)
    self.sentence_lstm = common.rnn("lstm", 4 * d, d, bidirectional=False)
    self.word_lstm = common.rnn("lstm", 3 * d, d, bidirectional=False)
    self.word_selection = common.MultiHeadAttention(d, cfg.num_heads)
    self.dropout = nn.Dropout(cfg.dropout)

  def level(self, name, count, video, video_mask, text, text_mask):
    for k in range(count):
      video, text = getattr(self, f"{name}_{k}")(video, video_mask, text, text_mask)
    return video, text

  def forward(self, batch):
    """-> the outputs of `hscnet.HSCNet` (alignments, spans, word_mask)."""
    cfg, d = self.cfg, self.cfg.hidden
    video_mask, sentence_mask = batch["video_mask"], batch["query_valid"]
    word_mask = batch["query_mask"] & sentence_mask[..., None]
    b, q, length = word_mask.shape
    t = video_mask.shape[1]
    video = self.dropout(self.video_projection(batch["video_feats"])
                         + common.sinusoidal_encoding(t, d))
    for i in range(cfg.video_layers):
      video = getattr(self, f"video_encoder_{i}")(video, video_mask)
    words, _ = self.text_encoder(batch["query_tokens"], batch["query_mask"])
    positions = torch.cat(
        [common.sinusoidal_encoding(length, d // 2)[None].expand(q, length, d // 2),
         common.sinusoidal_encoding(q, d // 2)[:, None].expand(q, length, d // 2)], -1)
    words = self.dropout(self.word_projection(words) + positions).reshape(b, q * length, d)
    flat_mask = word_mask.reshape(b, q * length)
    for i in range(cfg.text_layers):
      words = getattr(self, f"text_encoder_{i}")(words, flat_mask)

    video, words = self.level("word_level", cfg.word_layers, video, video_mask, words,
                              flat_mask)
    g_word, a_word = aggregate(words, video, video_mask, cfg.tau)
    pooled = common.masked_mean(words.reshape(b, q, length, d), word_mask)
    sentences = self.sentence_query(pooled, sentence_mask, words, flat_mask)
    video = self.sentence_video(video, video_mask)
    video, sentences = self.level("sentence_level", cfg.sentence_layers, video, video_mask,
                                  sentences, sentence_mask)
    g_sentence, a_sentence = aggregate(sentences, video, video_mask, cfg.tau)
    paragraph_mask = torch.ones(b, 1, dtype=torch.bool)
    paragraph = self.paragraph_query(common.masked_mean(sentences, sentence_mask)[:, None],
                                     paragraph_mask, sentences, sentence_mask)
    video = self.paragraph_video(video, video_mask)
    video, paragraph = self.level("paragraph_level", cfg.paragraph_layers, video, video_mask,
                                  paragraph, paragraph_mask)
    g_paragraph, a_paragraph = aggregate(paragraph, video, video_mask, cfg.tau)

    paragraph_span = self.paragraph_head(self.paragraph_linear(g_paragraph[:, 0]))
    g_sp, _ = common.packed_rnn(self.sentence_lstm,
                                torch.cat([g_sentence, g_paragraph.expand(b, q, -1)], -1),
                                sentence_mask)
    word_inputs = torch.cat([g_word.reshape(b, q, length, 2 * d),
                             g_sp[:, :, None].expand(b, q, length, d)], -1)
    g_ws, _ = common.packed_rnn(self.word_lstm, word_inputs.reshape(b * q, length, 3 * d),
                                word_mask.reshape(b * q, length))
    selected = self.word_selection(g_sp.reshape(b * q, 1, d), g_ws,
                                   word_mask.reshape(b * q, length)).reshape(b, q, d)
    return {
        "word_alignment": a_word.reshape(b, q, length, t),
        "sentence_alignment": a_sentence,
        "paragraph_alignment": a_paragraph[:, 0],
        "paragraph_span": paragraph_span,
        "sentence_spans": self.sentence_head(g_sp),
        "word_spans": self.word_head(g_ws.reshape(b, q, length, d)),
        "spans": self.grounding_head(torch.cat([selected, g_sp], -1)),
        "word_mask": word_mask,
    }

  def loss(self, outputs, batch):
    """`hscnet.loss`."""
    sentence_mask = batch["query_valid"] & batch["example_valid"][:, None]
    spans = (batch["gt_times"] / batch["duration"].clamp(min=1e-6)[:, None, None]).clamp(0, 1)
    hull = torch.stack([torch.where(sentence_mask, spans[..., 0], 1.0).amin(-1),
                        torch.where(sentence_mask, spans[..., 1], 0.0).amax(-1)], -1)
    example = batch["example_valid"] & sentence_mask.any(-1)
    word_mask = outputs["word_mask"] & sentence_mask[..., None]
    inside = clips_in_spans(spans, batch["video_mask"])
    word_spans = outputs["word_spans"]
    has_words = word_mask.any(-1)
    word_hull = torch.stack([torch.where(word_mask, word_spans[..., 0], torch.inf).amin(-1),
                             torch.where(word_mask, word_spans[..., 1], -torch.inf).amax(-1)],
                            -1)
    word_hull = torch.where(has_words[..., None], word_hull, spans)
    outside = ((spans[:, :, None, 0] - word_spans[..., 0]).clamp(min=0)
               + (word_spans[..., 1] - spans[:, :, None, 1]).clamp(min=0))
    terms = {
        "align_word": alignment_nll(outputs["word_alignment"],
                                    inside[:, :, None].expand_as(outputs["word_alignment"]),
                                    word_mask),
        "align_sentence": alignment_nll(outputs["sentence_alignment"], inside, sentence_mask),
        "align_paragraph": alignment_nll(outputs["paragraph_alignment"],
                                         (inside & sentence_mask[..., None]).any(1), example),
        "paragraph": l1_giou(outputs["paragraph_span"], hull, example),
        "sentence": l1_giou(outputs["sentence_spans"], spans, sentence_mask),
        "word_union": l1_giou(word_hull, spans, sentence_mask & has_words),
        "word_subset": common.masked_average(outside, word_mask),
        "grounding": l1_giou(outputs["spans"], spans, sentence_mask),
    }
    return sum(terms.values()), terms

  def decode(self, outputs, batch):
    spans = outputs["spans"].clamp(0, 1).sort(-1).values
    inside = clips_in_spans(spans, batch["video_mask"])
    cosine = outputs["sentence_alignment"].masked_fill(~inside, 0.0) * self.cfg.tau
    score = cosine.sum(-1) / inside.sum(-1).clamp(min=1)
    times = spans * batch["duration"][:, None, None]
    return torch.cat([times, score[..., None]], -1)[:, :, None]
