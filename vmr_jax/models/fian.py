"""FIAN: fine-grained iterative attention network for temporal language localization
(Qu et al., ACM MM 2020; paper 004). Query-level batches: one (video, query) pair per
example.

Representations (Sec. 3.2):
- query: the configured text encoder's word features `[B, n_q, d_h]`: GloVe + BiGRU
  (Eq. 1-3; the backward GRU starts at each query's last word);
- video: FC to d_h, self-attention (a `TransformerLayer`: attention and feed-forward
  with residuals and LayerNorm), BiGRU.
Iterative attention (Sec. 3.3): the cross-modal encoder Encoder(Q, V) = FFN(CGA(Q, V))
with residuals and LayerNorm (Eq. 4-8; `TransformerLayer(gated=True)`, CGA in
`vmr_jax.layers.attention.GatedCrossAttention`); two branches of two steps each, with
their own parameters:
    Q1 = Enc(Q, V), V1 = Enc(V, Q1) (Eq. 9);  V2 = Enc(V, Q), Q2 = Enc(Q, V2) (Eq. 10).
Video-enhanced integration (Eq. 11-14): Q1, Q2 are projected from the n_q word
positions onto the n_v clips by Dense layers over the word axis (W [n_v, n_q] and a
bias; padded words are zeroed first), V^ = [V1; V2], Q^ = [Q1^; Q2^], r = sigmoid(Q^ W_r
+ b_r), M = LayerNorm(V^ + r * Q^); a BiGRU over M.
Localization (Sec. 3.4): per window size w, a Conv1d of kernel w and stride
round(w * stride_ratio) with one output (the score logit) and another with two (start
and end offsets) (`vmr_jax.layers.windows.window_conv`); a window aligned to the end
covers the tail a stride would skip.
Loss (Sec. 3.5): L = L_align + alpha L_b (Eq. 18). L_align (Eq. 15-16): BCE of
sigmoid(score) against the candidate's IoU with the ground truth, averaged over the
positives (IoU > tau) and over the negatives separately, the two means summed. L_b
(Eq. 17): smooth L1 (beta 1) between predicted and true offsets, averaged over the
positives. Both are per example, then averaged over the batch's real examples.
Several windows per query (`gt_windows`, `data.duplicate_sentences = "merge"`): a
candidate's IoU (its BCE target and whether it is a positive) is its largest over
the windows (`common.target_iou`), and a positive regresses its offsets towards that
window, the one it overlaps most (`common.matched_window`; the first on ties), as
anchor-based detectors match each anchor to its best ground truth.
Inference: candidates moved by their offsets, clipped to [0, duration], ranked by
score; the evaluator's NMS (`eval.nms_threshold`) and top-n follow.

Choices the paper leaves open (no code was released):
- d_h = `fian.hidden` = 512 (the FC's width); "hidden dimension of all bi-directional
  GRUs is 512" is read as d_h, i.e. 256 units per direction, so every representation
  is d_h wide. The query encoder must give d_h-wide words (`text.head_hidden` =
  d_h / 2 with a BiGRU head).
- n_q (Eq. 11) is the padded query length the text encoder gets (`data.max_words`);
  the printed bias b in R^{n_q} must be R^{n_v} to add to W Q, so it is.
- Candidates are windows on the clip grid: window (s, e) covers clips [s, e), its
  time is [s, e) * duration / clips. Offsets are in clips, (true start - s, true end -
  e); the tail window is [n_v - w, n_v).
- No positive in an example (no candidate above tau): its best-IoU candidate counts
  as the positive, so both means and L_b stay defined. No negative: that mean is 0.
- A decoded moment whose moved end falls before its start is swapped to (end, start).
- FFN width `mlp_dim`, dropout, and the FC without an activation.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vmr_jax import registry
from vmr_jax.layers import windows
from vmr_jax.layers.attention import TransformerLayer
from vmr_jax.layers.losses import masked_average, scaled_iou_bce
from vmr_jax.layers.rnn import BiRNN
from vmr_jax.models import common


class FIAN(common.TextVideoModule):
  """Query-level batch -> {"logits": [B, N] candidate scores before the sigmoid,
  "offsets": [B, N, 2] start and end offsets in clips}."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    cfg = self.config
    words, _ = self.encode_text(batch, train=train)  # [B, n_q, d_h]
    word_mask = batch[self.mask_key]
    if words.shape[-1] != cfg.hidden:
      raise ValueError(f"FIAN needs {cfg.hidden}-wide word features (fian.hidden); the "
                       f"text encoder gives {words.shape[-1]} (a BiGRU head needs "
                       f"text.head_hidden = {cfg.hidden // 2})")
    feats, clip_mask = batch["video_feats"], batch["video_mask"]
    num_clips = feats.shape[1]

    def layer(name, gated=False):
      return TransformerLayer(cfg.num_heads, cfg.mlp_dim, cfg.dropout, cfg.dropout,
                              gated=gated, name=name)

    video = nn.Dense(cfg.hidden, name="video_input")(feats)
    video = layer("video_self_attention")(video, clip_mask, train=train)
    video, _ = BiRNN(cfg.hidden // 2, 1, "gru", name="video_gru")(video, clip_mask)

    def encode(name, x, x_mask, context, context_mask):
      return layer(name, gated=True)(x, x_mask, context=context, context_mask=context_mask,
                                     train=train)

    q1 = encode("qv_query", words, word_mask, video, clip_mask)  # Eq. 9
    v1 = encode("qv_video", video, clip_mask, q1, word_mask)
    v2 = encode("vq_video", video, clip_mask, words, word_mask)  # Eq. 10
    q2 = encode("vq_query", words, word_mask, v2, clip_mask)

    def to_clips(name, q):
      """`[B, n_q, d_h]` -> `[B, n_v, d_h]` (Eq. 11)."""
      q = jnp.where(word_mask[..., None], q, 0.0)
      return jnp.swapaxes(nn.Dense(num_clips, name=name)(jnp.swapaxes(q, 1, 2)), 1, 2)

    video_pair = jnp.concatenate([v1, v2], axis=-1)  # Eq. 12
    query_pair = jnp.concatenate([to_clips("q1_to_clips", q1), to_clips("q2_to_clips", q2)],
                                 axis=-1)
    ratio = nn.sigmoid(nn.Dense(2 * cfg.hidden, name="filter")(query_pair))  # Eq. 13
    fused = nn.LayerNorm(name="integration_norm")(video_pair + ratio * query_pair)  # Eq. 14
    fused, _ = BiRNN(cfg.hidden // 2, 1, "gru", name="fused_gru")(fused, clip_mask)

    sizes, strides = window_layout(cfg)
    logits = windows.window_conv(fused, 1, sizes, strides, "score")[..., 0]
    offsets = windows.window_conv(fused, 2, sizes, strides, "offset")
    return {"logits": logits, "offsets": offsets}


def window_layout(cfg) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """The window sizes of `cfg.windows` and their strides."""
  sizes = tuple(cfg.windows)
  return sizes, windows.ratio_strides(sizes, cfg.stride_ratio)


def _candidates(batch, config):
  """Candidate times `[B, N, 2]` in seconds, validity `[B, N]`, seconds per clip `[B]`."""
  spans = windows.window_spans(config.data.num_clips, *window_layout(config.fian))
  times, valid = common.clip_spans_to_times(jnp.asarray(spans), batch["video_mask"],
                                            batch["duration"])
  return times, valid, common.clip_seconds(batch["video_mask"], batch["duration"])


def positives(iou: jnp.ndarray, valid: jnp.ndarray, threshold: float) -> jnp.ndarray:
  """`[B, N]` IoU and validity -> `[B, N]` positives: IoU > threshold, or, where no
  candidate passes, the best valid one (the first on ties)."""
  above = (iou > threshold) & valid
  best = jnp.argmax(jnp.where(valid, iou, -1.0), axis=-1)
  fallback = (jnp.arange(iou.shape[-1]) == best[:, None]) & ~above.any(-1, keepdims=True)
  return above | fallback


def loss(outputs, batch, config):
  cfg = config.fian
  times, valid, clip_seconds = _candidates(batch, config)
  iou = common.target_iou(times, batch)  # [B, N], the best window's
  positive = positives(iou, valid, cfg.positive_iou)
  negative = valid & ~positive
  bce = scaled_iou_bce(outputs["logits"], iou)  # Eq. 15, raw IoU targets
  align = (masked_average(bce, positive, axis=-1)
           + masked_average(bce, negative, axis=-1))  # Eq. 16
  gt = common.matched_window(times, batch)  # [B, N, 2], each candidate's best window
  target = (gt - times) / clip_seconds[:, None, None]  # offsets in clips
  smooth_l1 = optax.huber_loss(outputs["offsets"], target, delta=1.0).sum(-1)
  boundary = masked_average(smooth_l1, positive, axis=-1)  # Eq. 17
  examples = batch["example_valid"]
  terms = {"align": masked_average(align, examples),
           "boundary": masked_average(boundary, examples)}
  return terms["align"] + cfg.alpha * terms["boundary"], terms  # Eq. 18


def decode(outputs, batch, config):
  """`[B, K, 3]`: the K best moved candidates by sigmoid(score)."""
  times, valid, clip_seconds = _candidates(batch, config)
  moved = times + outputs["offsets"] * clip_seconds[:, None, None]
  moved = jnp.clip(moved, 0.0, batch["duration"][:, None, None])
  moved = jnp.sort(moved, axis=-1)  # an end moved before its start: swapped
  scores = jnp.where(valid, jax.nn.sigmoid(outputs["logits"]), -jnp.inf)
  return common.top_moments(scores[:, None], moved, config.eval.top_k)[:, 0]


def create(config, info: registry.DataInfo) -> registry.Model:
  cfg = config.fian
  if cfg.hidden % 2 or cfg.hidden % cfg.num_heads:
    raise ValueError(f"fian.hidden {cfg.hidden} must be even and split into "
                     f"{cfg.num_heads} heads")
  if not 0.0 <= cfg.positive_iou < 1.0:
    raise ValueError(f"fian.positive_iou must be in [0, 1), got {cfg.positive_iou}")
  windows.window_spans(config.data.num_clips, *window_layout(cfg))  # checks the windows
  return common.with_text_encoder(config, info, lambda *encoder: FIAN(cfg, *encoder))


SPEC = registry.ModelSpec(create=create, loss=loss, decode=decode,
                          data={"batch_kind": "query"})
