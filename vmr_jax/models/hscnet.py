"""HSCNet: hierarchical semantic correspondence networks for video paragraph
grounding (Tan et al., CVPR 2023; paper 003).

A batch example is one paragraph: a video and up to Q = `hscnet.max_sentences`
sentences in temporal order (video-level batches with `data.paragraphs`). The
batch's `[B, Q, L]` word layout is the word-to-sentence index: word (q, l) belongs to
sentence q, and the paragraph's words are the Q * L slots of valid words
(`query_valid`, and the text encoder's word mask).

What a paragraph is (`data.paragraphs`): the synthetic set's videos' sentences in
time order ("time"), or a release's own descriptions ("release": TACoS lists each
annotator's description of a video in turn). The paragraph context helps when the
paragraph is one description, as the paper's are (docs/results.md, "HSCNet: what a
paragraph is", measures both).

Feature encoder (Sec. 3.2): video = projection to D + sinusoidal clip positions +
`video_layers` self-attention layers; text = the configured word vectors (GloVe in
the paper) projected to D + position encodings + `text_layers` self-attention layers
over the whole paragraph. The paper gives no position encoding; without one no
boundary could be regressed, so clips get sinusoidal encodings of their index and
words the concatenation of encodings of (position in sentence, sentence index), D/2
channels each. Both are unchanged by padding.

Hierarchical multi-modal encoder (Sec. 3.3), three levels of `MultiModalLayer`s:
- word level: C1 `MultiModalLayer`s over [video; words] (Eq. 1-2: cosine similarity
  over a shared projection M, divided by a learned sigma per layer, then modality
  MLPs);
- sentence level: word pooling by sentence (Eq. 3), cross-attention from the pooled
  tokens to the paragraph's words (Eq. 4), a self-attention layer on the video, then
  C2 multi-modal layers over [video; sentences];
- paragraph level: sentence pooling, cross-attention to the sentences, video
  self-attention, C3 multi-modal layers over [video; paragraph token].
Visual-to-textual aggregation (Eq. 5-6) at each level: A = norm(Q) norm(V)^T / tau,
g = [norm(Q); softmax(A) norm(V)] (2D channels).

Progressive decoder (Sec. 3.4): paragraph = linear on g^P + 2-layer MLP; sentence =
LSTM over [g^S_i; g^P] (Eq. 7) + MLP; word = LSTM over each sentence's
[g^W_ij; g^SP_i] (Eq. 8) + MLP; final = cross-attention from g^SP_i to its sentence's
word features g^WS (its words only), then an MLP on [g^WS_i; g^SP_i].

Losses (Sec. 3.5, Eq. 9-11, all weights 1), times normalized by the duration:
- alignment (Eq. 9): for each textual token of a level, -log of the softmax(A)
  probability mass on the clips of its target span. A word's target is its
  sentence's span (words have no labels), a sentence's its own, the paragraph's the
  union of its sentences' spans. A clip belongs to a span if its interval overlaps
  it (the clip holding the span's start always does, so the set is never empty).
  Averaged over the level's valid tokens.
- L1 + GIoU (`vmr_jax.layers.losses.l1_giou_loss`) for the paragraph (target: the
  sentences' hull [first start, last end], the one segment covering their union),
  the sentences (Eq. 10) and the final prediction (Eq. 11).
- weak word losses (Eq. 10): union = L1 + GIoU between the hull of a sentence's word
  spans and the sentence span; subset = mean over words of the length of the word
  span outside its sentence span, relu(s_gt - s) + relu(e - e_gt).
The paper leaves these details to its supplement; the readings above are ours.

Several windows per sentence (`gt_windows`, `data.duplicate_sentences = "merge"`
with `data.paragraphs = "time"`, the merged sentences in the order of their first
window's start): the alignment targets are the clips of any of the sentence's
windows (the paragraph's: of any window of its sentences), the paragraph hull covers
every window, and the span losses (sentence, final, weak word losses) all regress
towards one window per sentence, the one the final prediction `spans` overlaps most
(`common.best_window`; the first on ties): a best-of-K target, so a sentence is not
pulled towards the middle of windows far apart, and one window for every head, so
the heads do not learn different windows. `paragraphs = "release"` stays one
window per sentence: merging would move a repeated sentence out of its
description (`data_pipelines.data_config`).

Spans are predicted as sigmoid (center, width) in units of the duration, so end >=
start always; decoding clips them to the video. Choices not in the paper, in
`config.hscnet`: heads, feed-forward width, dropout, sigma's initial value, residual
connections + LayerNorm around every attention and MLP (as in [28]).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vmr_jax import registry
from vmr_jax.layers.attention import (MultiHeadAttention, TransformerLayer,
                                      l2_normalize, masked_mean, sinusoidal_encoding)
from vmr_jax.layers.losses import l1_giou_loss, masked_average
from vmr_jax.layers.mlp import MLP
from vmr_jax.layers.rnn import BiRNN
from vmr_jax.models import common


class MultiModalLayer(nn.Module):
  """Multi-modal self-attention (Eq. 1-2) and the two modality-specific MLPs.

  `video [B, T, D]`, `text [B, N, D]` and their masks -> new `video`, `text`.
  M = Dense([video; text]); H = Softmax(cos(phi M, rho M) / sigma) psi M, multi-head
  (`MultiHeadAttention(similarity="cosine")`); then LayerNorm(M + H), and per modality
  LayerNorm(H + MLP(H)).
  """
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  temperature_init: float = 0.1

  @nn.compact
  def __call__(self, video, video_mask, text, text_mask, *, train: bool = False):
    width, num_clips = video.shape[-1], video.shape[1]
    dropout = nn.Dropout(self.dropout, deterministic=not train)
    m = nn.Dense(width, name="projection")(jnp.concatenate([video, text], axis=1))
    mask = jnp.concatenate([video_mask, text_mask], axis=1)
    h = MultiHeadAttention(self.num_heads, self.dropout, "cosine", self.temperature_init,
                           name="attention")(m, m, mask, train=train)
    h = nn.LayerNorm(name="attention_norm")(m + dropout(h))
    outputs = []
    for name, part in (("video", h[:, :num_clips]), ("text", h[:, num_clips:])):
      y = MLP((self.mlp_dim, width), "relu", "none", name=f"{name}_mlp")(part)
      outputs.append(nn.LayerNorm(name=f"{name}_norm")(part + dropout(y)))
    return tuple(outputs)


def aggregate(text: jnp.ndarray, video: jnp.ndarray, video_mask: jnp.ndarray,
              tau: float) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Visual-to-textual aggregation (Eq. 5-6).

  `text [B, N, D]`, `video [B, T, D]`, `video_mask [B, T]` -> grounding features
  g `[B, N, 2D]` and similarities A `[B, N, T]` (padded clips at the dtype's min).
  """
  q, v = l2_normalize(text), l2_normalize(video)
  a = jnp.einsum("bnd,btd->bnt", q, v) / tau
  a = jnp.where(video_mask[:, None, :], a, jnp.finfo(a.dtype).min)
  return jnp.concatenate([q, jnp.einsum("bnt,btd->bnd", jax.nn.softmax(a, -1), v)], -1), a


class SpanHead(nn.Module):
  """Two-layer MLP predictor `[..., F]` -> span `[..., 2]` (start, end) in units of the
  duration, from sigmoid (center, width). Computes in float32 whatever the compute
  dtype: in bfloat16 a span near the video's end would step by 1/256 of its length."""
  hidden: int

  @nn.compact
  def __call__(self, x):
    center, width = jnp.moveaxis(nn.sigmoid(
        MLP((self.hidden, 2), "relu", "none", dtype=jnp.float32, name="mlp")(x)), -1, 0)
    return jnp.stack([center - width / 2, center + width / 2], axis=-1)


class HSCNet(common.TextVideoModule):
  """batch -> alignment similarities and predicted spans (see `loss`, `decode`):

  word_alignment `[B, Q, L, T]`, sentence_alignment `[B, Q, T]`,
  paragraph_alignment `[B, T]`, paragraph_span `[B, 2]`, sentence_spans `[B, Q, 2]`,
  word_spans `[B, Q, L, 2]`, spans `[B, Q, 2]` (final), word_mask `[B, Q, L]`.
  """

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    cfg = self.config
    d = cfg.hidden
    feats, video_mask = batch["video_feats"], batch["video_mask"]
    sentence_mask = batch["query_valid"]
    word_mask = batch[self.mask_key].astype(bool) & sentence_mask[..., None]
    b, q, length = word_mask.shape
    dropout = nn.Dropout(cfg.dropout, deterministic=not train)

    def transformer(name):
      return TransformerLayer(cfg.num_heads, cfg.mlp_dim, cfg.dropout, cfg.dropout,
                              name=name)

    def level(name, num_layers, video, text, text_mask):
      """One level's C_l multi-modal layers over [video; text]."""
      for k in range(num_layers):
        video, text = MultiModalLayer(cfg.num_heads, cfg.mlp_dim, cfg.dropout,
                                      cfg.sigma_init, name=f"{name}_{k}")(
                                          video, video_mask, text, text_mask, train=train)
      return video, text

    # Feature encoders (Sec. 3.2).
    video = nn.Dense(d, name="video_projection")(feats)
    video = dropout(video + sinusoidal_encoding(jnp.arange(feats.shape[1]), d, video.dtype))
    for i in range(cfg.video_layers):
      video = transformer(f"video_encoder_{i}")(video, video_mask, train=train)
    words, _ = self.encode_text(batch, train=train)
    words = nn.Dense(d, name="word_projection")(words)
    encode = lambda n: sinusoidal_encoding(jnp.arange(n), d // 2, words.dtype)
    positions = jnp.concatenate(
        [jnp.broadcast_to(encode(length), (q, length, d // 2)),
         jnp.broadcast_to(encode(q)[:, None], (q, length, d // 2))], axis=-1)
    words = dropout(words + positions)
    words, flat_word_mask = words.reshape(b, q * length, d), word_mask.reshape(b, q * length)
    for i in range(cfg.text_layers):
      words = transformer(f"text_encoder_{i}")(words, flat_word_mask, train=train)

    # Word level.
    video, words = level("word_level", cfg.word_layers, video, words, flat_word_mask)
    g_word, a_word = aggregate(words, video, video_mask, cfg.tau)
    # Sentence level: pooling (Eq. 3), cross-attention (Eq. 4), video self-attention.
    pooled = masked_mean(words.reshape(b, q, length, d), word_mask)
    sentences = transformer("sentence_query")(pooled, sentence_mask, context=words,
                                              context_mask=flat_word_mask, train=train)
    video = transformer("sentence_video")(video, video_mask, train=train)
    video, sentences = level("sentence_level", cfg.sentence_layers, video, sentences,
                             sentence_mask)
    g_sentence, a_sentence = aggregate(sentences, video, video_mask, cfg.tau)
    # Paragraph level.
    paragraph_mask = jnp.ones((b, 1), bool)
    paragraph = transformer("paragraph_query")(
        masked_mean(sentences, sentence_mask)[:, None], paragraph_mask, context=sentences,
        context_mask=sentence_mask, train=train)
    video = transformer("paragraph_video")(video, video_mask, train=train)
    video, paragraph = level("paragraph_level", cfg.paragraph_layers, video, paragraph,
                             paragraph_mask)
    g_paragraph, a_paragraph = aggregate(paragraph, video, video_mask, cfg.tau)

    # Progressive decoder (Sec. 3.4).
    paragraph_span = SpanHead(d, name="paragraph_head")(
        nn.Dense(d, name="paragraph_linear")(g_paragraph[:, 0]))
    g_sp, _ = BiRNN(d, bidirectional=False, name="sentence_lstm")(  # Eq. 7
        jnp.concatenate([g_sentence, jnp.broadcast_to(g_paragraph, g_sentence.shape)], -1),
        sentence_mask)
    sentence_spans = SpanHead(d, name="sentence_head")(g_sp)
    word_inputs = jnp.concatenate(  # Eq. 8, one sequence per sentence
        [g_word.reshape(b, q, length, 2 * d),
         jnp.broadcast_to(g_sp[:, :, None], (b, q, length, d))], -1)
    g_ws, _ = BiRNN(d, bidirectional=False, name="word_lstm")(
        word_inputs.reshape(b * q, length, 3 * d), word_mask.reshape(b * q, length))
    word_spans = SpanHead(d, name="word_head")(g_ws.reshape(b, q, length, d))
    selected = MultiHeadAttention(cfg.num_heads, name="word_selection")(
        g_sp.reshape(b * q, 1, d), g_ws, word_mask.reshape(b * q, length)).reshape(b, q, d)
    spans = SpanHead(d, name="grounding_head")(jnp.concatenate([selected, g_sp], -1))
    return {
        "word_alignment": a_word.reshape(b, q, length, -1),
        "sentence_alignment": a_sentence,
        "paragraph_alignment": a_paragraph[:, 0],
        "paragraph_span": paragraph_span,
        "sentence_spans": sentence_spans,
        "word_spans": word_spans,
        "spans": spans,
        "word_mask": word_mask,
    }


def clips_in_spans(spans: jnp.ndarray, video_mask: jnp.ndarray) -> jnp.ndarray:
  """`spans [B, *S, 2]` (units of the duration), `video_mask [B, T]` -> `[B, *S, T]`:
  valid clips whose interval [i, i + 1) / n (n valid clips) overlaps the span, and
  the clip holding the span's start."""
  n = video_mask.sum(-1).astype(spans.dtype)
  extra = (1,) * (spans.ndim - 2)
  n = n.reshape(-1, *extra, 1)
  index = jnp.arange(video_mask.shape[1], dtype=spans.dtype)
  start, end = spans[..., :1], spans[..., 1:]
  overlaps = (index / n < end) & ((index + 1) / n > start)
  holds_start = index == jnp.clip(jnp.floor(start * n), 0, n - 1)
  return (overlaps | holds_start) & video_mask.reshape(video_mask.shape[0], *extra, -1)


def alignment_nll(similarity: jnp.ndarray, inside: jnp.ndarray, valid: jnp.ndarray
                  ) -> jnp.ndarray:
  """Mean over valid rows of -log sum_{t in target} softmax(similarity)_t.

  `similarity [..., T]` (padded clips at the dtype's min), `inside [..., T]` the
  target clips, `valid [...]`.
  """
  floor = jnp.finfo(similarity.dtype).min
  nll = (jax.nn.logsumexp(similarity, -1)
         - jax.nn.logsumexp(jnp.where(inside, similarity, floor), -1))
  return masked_average(nll, valid)


def word_union_loss(word_spans: jnp.ndarray, word_mask: jnp.ndarray, target: jnp.ndarray,
                    sentence_mask: jnp.ndarray) -> jnp.ndarray:
  """L1 + GIoU between each sentence's hull of word spans and its span.

  `word_spans [B, Q, L, 2]`, `word_mask [B, Q, L]`, `target [B, Q, 2]`,
  `sentence_mask [B, Q]` -> scalar (mean over valid sentences with words).
  """
  start = jnp.min(jnp.where(word_mask, word_spans[..., 0], jnp.inf), -1)
  end = jnp.max(jnp.where(word_mask, word_spans[..., 1], -jnp.inf), -1)
  has_words = word_mask.any(-1)
  hull = jnp.where(has_words[..., None], jnp.stack([start, end], -1), target)
  return l1_giou_loss(hull, target, sentence_mask & has_words)


def word_subset_loss(word_spans: jnp.ndarray, word_mask: jnp.ndarray,
                     target: jnp.ndarray) -> jnp.ndarray:
  """Mean over valid words of the word span's length outside its sentence span.

  `word_spans [B, Q, L, 2]`, `word_mask [B, Q, L]`, `target [B, Q, 2]` -> scalar.
  """
  outside = (jax.nn.relu(target[:, :, None, 0] - word_spans[..., 0])
             + jax.nn.relu(word_spans[..., 1] - target[:, :, None, 1]))
  return masked_average(outside, word_mask)


def normalized_windows(batch) -> jnp.ndarray:
  """`[B, Q, K, 2]` each sentence's windows (`common.gt_windows`; K = 1 without
  `gt_windows`) in units of the duration, clipped to [0, 1]."""
  duration = jnp.maximum(batch["duration"], 1e-6)[:, None, None, None]
  return jnp.clip(common.gt_windows(batch) / duration, 0.0, 1.0)


def targets(batch, predicted=None):
  """Normalized sentence spans `[B, Q, 2]`, their masks, the paragraph hull `[B, 2]`
  and every window `[B, Q, K, 2]` (`normalized_windows`).

  A sentence's span is its one window, or with several (`gt_windows`) the one with
  the largest IoU with its `predicted` span `[B, Q, 2]` (units of the duration;
  `common.best_window`, the first on ties); the hull covers every window of the
  paragraph's sentences."""
  sentence_mask = batch["query_valid"] & batch["example_valid"][:, None]
  every = normalized_windows(batch)
  if "gt_windows" in batch and predicted is not None:
    spans = common.best_window(predicted, every)
  else:
    spans = every[:, :, 0]
  mask = sentence_mask[..., None]
  hull = jnp.stack([jnp.min(jnp.where(mask, every[..., 0], 1.0), (-2, -1)),
                    jnp.max(jnp.where(mask, every[..., 1], 0.0), (-2, -1))], -1)
  return spans, sentence_mask, hull, every


def loss(outputs, batch, config):
  spans, sentence_mask, hull, every = targets(batch, outputs["spans"])
  example = batch["example_valid"] & sentence_mask.any(-1)
  word_mask = outputs["word_mask"] & sentence_mask[..., None]
  video_mask = batch["video_mask"]
  inside = clips_in_spans(every, video_mask).any(2)  # [B, Q, T], in any window
  terms = {
      "align_word": alignment_nll(outputs["word_alignment"], inside[:, :, None], word_mask),
      "align_sentence": alignment_nll(outputs["sentence_alignment"], inside, sentence_mask),
      "align_paragraph": alignment_nll(
          outputs["paragraph_alignment"], (inside & sentence_mask[..., None]).any(1), example),
      "paragraph": l1_giou_loss(outputs["paragraph_span"], hull, example),
      "sentence": l1_giou_loss(outputs["sentence_spans"], spans, sentence_mask),
      "word_union": word_union_loss(outputs["word_spans"], word_mask, spans, sentence_mask),
      "word_subset": word_subset_loss(outputs["word_spans"], word_mask, spans),
      "grounding": l1_giou_loss(outputs["spans"], spans, sentence_mask),
  }
  return sum(terms.values()), terms


def decode(outputs, batch, config):
  """`[B, Q, 1, 3]`: each sentence's final span in seconds, clipped to the video,
  scored by the sentence's mean cosine similarity to the clips the span covers (its
  Eq. 5 alignment A times tau). One span per sentence needs no score within a video;
  this one ranks the spans of different videos for corpus search (`vmr_jax.Predictor`)."""
  spans = jnp.sort(jnp.clip(outputs["spans"], 0.0, 1.0), axis=-1)
  inside = clips_in_spans(spans, batch["video_mask"])  # [B, Q, T]
  cosine = jnp.where(inside, outputs["sentence_alignment"], 0.0) * config.hscnet.tau
  score = cosine.sum(-1) / jnp.maximum(inside.sum(-1), 1)
  times = spans * batch["duration"][:, None, None]
  return jnp.concatenate([times, score[..., None]], -1)[:, :, None]


def create(config, info: registry.DataInfo) -> registry.Model:
  cfg = config.hscnet
  if cfg.hidden % 2 or cfg.hidden % cfg.num_heads:
    raise ValueError(f"hscnet.hidden {cfg.hidden} must be even and divisible by "
                     f"hscnet.num_heads {cfg.num_heads}")
  return common.with_text_encoder(
      config, info, lambda *encoder: HSCNet(cfg, *encoder))


SPEC = registry.ModelSpec(create=create, loss=loss, decode=decode,
                          data={"batch_kind": "video", "paragraphs": ("time", "release")})
