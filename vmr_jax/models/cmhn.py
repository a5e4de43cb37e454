"""CMHN: video moment localization via deep cross-modal hashing (Hu et al., IEEE TIP
2021; paper 001).

Video encoding network (Sec. III-B):
- Bi-TCN over the clips (Eq. 1): `config.cmhn.tcn_layers` dilated kernel-3 layers,
  dilations 1, 2, 4, ..., zero padding keeping the length (`vmr_jax.layers.bitcn`).
- Candidates (Eq. 2): one regular 1-D convolution per window size of
  `cmhn.kernels`, at the stride of `cmhn.strides`, no padding
  (`vmr_jax.layers.windows`), so a candidate covers the clips [i, i + size) of its
  window; times known exactly. The paper uses every size 1..Delta at stride 1, which
  `kernels = 1..Delta, strides = 1` reproduces; a size-k convolution has k x width^2
  weights, so sizes up to a whole ActivityNet video (64 clips) cost 545M weights at
  width 512. The dataset configs take the authors' code's scheme instead: every
  short size at stride 1, longer sizes sparser with strides of about k / 8 (their
  TACoS sizes 1..9, 11, 13, 16, 19, 23 at 1 clip/s), which bounds the weights (21M
  on TACoS, 26M on ActivityNet at the code's width 256).
- A 2-layer RReLU MLP to L = `code_bits` (Eq. 3, T = 2).
Query encoding network (Sec. III-C): the configured text encoder's sentence vector
(BERT in the paper) and a 3-layer RReLU MLP to L (Eq. 4).
Hashing (Sec. III-D): B = sgn(H) (Eq. 5-6) with a straight-through gradient.
Losses, summed over a batch's videos then divided by their number:
- Gamma_1 (Eq. 7) = ||H_C H_Q^T - L * M||_F^2, M = candidate/query IoU (Eq. 8),
  over valid candidate-query pairs;
- Gamma_2 (Eq. 9) = ||H_C - B_C||_F^2 + ||H_Q - B_Q||_F^2 (B without gradient);
- Gamma_3 (Eq. 10), bit balance. The printed U, Z (all-ones L x N, L x M) do not
  multiply H_C in R^{N x L} into a balance term; we take the stated intent (each bit
  balanced over the codes, as the cited DCMH): ||H_C^T 1_N||^2 + ||H_Q^T 1_M||^2;
- Psi = Gamma_1 + alpha Gamma_2 + beta Gamma_3 (Eq. 11), alpha = beta = 1.
`loss_reduction = "sum"` is Eq. 7-10 as printed; "mean" divides Gamma_1 by L^2 x the
valid pairs, Gamma_2 by L x the codes and Gamma_3 by L x the codes^2 (per pair, per
bit), so alpha = beta = 1 weigh terms of one scale whatever the number of
candidates; docs/results.md compares the two.
Inference (Sec. III-E): Hamming distance D = (L - b_c . b_s) / 2 (Eq. 12) between
codes, the candidates ranked by it with no NMS (the configs' `eval.nms_threshold` is
1: R@5 is the five nearest codes); video codes are computed once per video and used
for all its queries. Ties in D (integers) are broken by the real-valued inner
product of H_C and H_Q.

Two readings (`cmhn.reading`; the configs' default is "released", the code that made
the paper's tables, `configs/cmhn_<dataset>.py:paper` the other):
- "paper" (above): an input Dense, `BiTCN`, the candidate convolutions (tail windows
  included), the MLPs of Eq. 3-4 and H = their outputs; Gamma_1..3.
- "released", the authors' code (github.com/Huyp777/CMHN, `tacos.py`,
  `activitynet_captions.py`, `tcn.py`): clip features (each L2-normalized: the
  `cmhn.normalize_clips` option, which the release config sets) -> `ResidualTCN`
  (`cmhn.tcn_channels`, kernel `tcn_kernel`, dropout) -> one convolution per
  candidate size, no tail windows, named `conv1d_<i>` -> RReLU, Linear(L), RReLU,
  Linear(L) (`model_v`); the sentence vector -> Linear(512), RReLU, Linear(256),
  RReLU, Linear(L) (`model_s`, widths `query_hidden`); both sides' codes are
  H = smooth_sign(sqrt(L) h / ||h||) (`layers.hashing.smooth_sign`), the release's
  `hash_function`; the loss is its `loss1 + loss2` = Gamma_1 + Gamma_2 summed, with no
  balance term (the release config: beta 0, reduction "sum"); ranking by the
  Hamming distance of sgn(h) as in the paper reading. On TACoS a sentence annotated
  more than once in a video is one query whose targets M are the max IoU over its
  windows and which evaluation counts once, a hit on any window
  (`data.duplicate_sentences = "merge"`, which `configs/cmhn_tacos.py` sets for it;
  `models.common.target_iou`); its ActivityNet code keeps one window per sentence.
  Differences from the release, with the reason they are left:
  - its query side is a frozen, precomputed BERT-large sentence vector (1024-d);
    here `config.text` (the release config freezes the encoder, `text.trainable`);
  - it reads 1 clip per second, each the mean of the C3D features of that second, as
    many as the video lasts: `data.clip_seconds = 1` (`data_pipelines.input_pipeline`),
    which `configs/cmhn_<dataset>.py:released,seconds` sets with its candidate sizes
    in seconds and `data.num_clips` covering the longest video (padding masked;
    `cmhn_common.CLIP_RULES`, and docs/results.md for each config's default); clip i
    spans [i, i + 1) x duration / n here (n = ceil(duration)), [i, i + 1) s there (the
    last one past the video's end), so its bounds come up to i / n s earlier here, and
    a second's stored rows are found by rounding where the release truncates;
  - one video per step, over half the training videos per epoch (shuffled); here
    `train.batch_size` videos per step over the whole split;
  - sgn(0) = 0 in torch's evaluation, +1 here (a code entry is exactly 0 with
    probability 0); equal Hamming distances are ordered by the cosine (below), the
    release by `torch.topk`'s unspecified order;
  - its R@5 applies NMS at threshold m - 0.05 for IoU m: `eval.nms_offset`.

Choices the paper leaves open, each a config option where cheap:
- `final_activation`: Eq. 3-4 apply RReLU at every layer ("rrelu", the paper); "tanh"
  keeps codes in (-1, 1); "none" is the released code's linear last layer.
- `code_scale`: "none" (Eq. 3-4); "l2" scales every code to norm sqrt(L), as the
  released code does before its smooth surrogate of sgn, so inner products lie in
  [-L, L] as binary codes' do (docs/results.md measures both on TACoS-shaped data).
- `similarity_codes`: "continuous" uses H in Gamma_1 (the paper); "binary" uses
  sgn_ste(H), training the Hamming ranking itself.
- `causal`: the paper's Bi-TCN is not causal (default) and neither is the released
  code's TCN (its chomp is commented out); True is a plain causal TCN.
- The Bi-TCN width, MLP widths and dropout are not given in the paper (the paper
  configs: the released code's width 256, no dropout).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from vmr_jax import faiss_index, registry
from vmr_jax.layers import windows
from vmr_jax.layers.bitcn import BiTCN, ResidualTCN
from vmr_jax.layers.attention import l2_normalize
from vmr_jax.layers.hashing import (hamming_distance, pack_signs, packed_hamming_distance,
                                    sign, sign_ste, smooth_sign)
from vmr_jax.layers.losses import masked_average, similarity_preserving
from vmr_jax.layers.mlp import MLP, RReLU
from vmr_jax.models import common


def candidate_kernels(cfg) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """The candidate convolutions' window sizes and strides (`cmhn.kernels`,
  `cmhn.strides`)."""
  return tuple(cfg.kernels), tuple(cfg.strides)


def candidate_spans(num_clips: int, cfg) -> np.ndarray:
  """`[N, 2]` clip spans [start, end) in the order the convolutions emit them (the
  released reading has no tail windows)."""
  return windows.window_spans(num_clips, *candidate_kernels(cfg),
                              tail=reading(cfg) == "paper")


READINGS = ("paper", "released")


def reading(cfg) -> str:
  """`cmhn.reading`; "paper" for configs written before it existed (older exports)."""
  return cfg.get("reading", "paper")
LOSS_REDUCTIONS = ("sum", "mean")
CODE_SCALES = ("none", "l2")


class CMHN(common.TextVideoModule):
  """batch -> {"moment_codes": H_C [B, N, L], "query_codes": H_Q [B, Q, L]}."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    cfg = self.config
    if reading(cfg) == "released":
      return self.released(batch, train=train)
    feats, mask = batch["video_feats"], batch["video_mask"]
    x = nn.Dense(cfg.hidden, name="input")(feats)
    x = BiTCN(cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel, cfg.causal, cfg.dropout,
              name="bitcn")(x, mask, train=train)
    candidates = windows.window_conv(x, cfg.hidden, *candidate_kernels(cfg), "candidates")
    moment_codes = MLP((cfg.hidden, cfg.code_bits), last_activation=cfg.final_activation,
                       name="moment_mlp")(candidates, train=train)
    _, sentence = self.encode_text(batch, train=train)
    query_codes = MLP((cfg.hidden, cfg.hidden, cfg.code_bits),
                      last_activation=cfg.final_activation, name="query_mlp")(
                          sentence, train=train)
    if cfg.code_scale == "l2":
      moment_codes, query_codes = (np.sqrt(cfg.code_bits) * l2_normalize(h)
                                   for h in (moment_codes, query_codes))
    return {"moment_codes": moment_codes, "query_codes": query_codes}

  def released(self, batch, *, train: bool):
    """The released code's `VideoModule` (`model_v`) and `SentenceModule` (`model_s`)
    and its `hash_function` (module docstring)."""
    cfg = self.config
    feats, mask = batch["video_feats"], batch["video_mask"]
    if cfg.normalize_clips:
      feats = l2_normalize(feats)
    video = _ReleasedVideo(cfg, name="model_v")(feats, mask, train=train)
    _, sentence = self.encode_text(batch, train=train)
    query = _ReleasedSentence(cfg, name="model_s")(sentence, train=train)
    hashed = lambda h: smooth_sign(np.sqrt(cfg.code_bits) * l2_normalize(h))
    return {"moment_codes": hashed(video), "query_codes": hashed(query)}


class _ReleasedVideo(nn.Module):
  """`[B, T, D]` clips, `[B, T]` mask -> `[B, N, L]` candidate codes before hashing."""
  config: object

  @nn.compact
  def __call__(self, feats, mask, *, train: bool):
    cfg = self.config
    x = ResidualTCN(cfg.tcn_channels, cfg.tcn_kernel, cfg.dropout, name="tcn")(
        feats, mask, train=train)
    x = windows.window_conv(x, cfg.hidden, *candidate_kernels(cfg), "conv1d", tail=False,
                            index_names=True)
    x = nn.Dense(cfg.code_bits, name="net_1")(RReLU()(x, train=train))
    return nn.Dense(cfg.code_bits, name="net_3")(RReLU()(x, train=train))


class _ReleasedSentence(nn.Module):
  """`[B, Q, D]` sentence vectors -> `[B, Q, L]` codes before hashing."""
  config: object

  @nn.compact
  def __call__(self, x, *, train: bool):
    widths = (*self.config.query_hidden, self.config.code_bits)
    for i, width in enumerate(widths):
      x = nn.Dense(width, name=f"net_{2 * i}")(x)
      if i < len(widths) - 1:
        x = RReLU()(x, train=train)
    return x


def _candidates(batch, config):
  """`[B, N, 2]` candidate times in seconds and `[B, N]` validity."""
  spans = jnp.asarray(candidate_spans(config.data.num_clips, config.cmhn))
  return common.clip_spans_to_times(spans, batch["video_mask"], batch["duration"])


def loss(outputs, batch, config):
  cfg = config.cmhn
  h_c, h_q = outputs["moment_codes"], outputs["query_codes"]
  times, cand_valid = _candidates(batch, config)
  query_valid = batch["query_valid"]
  iou = common.target_iou(times, batch)  # [B, N, Q], max over a sentence's windows
  pair_mask = cand_valid[:, :, None] & query_valid[:, None, :]
  if cfg.similarity_codes == "binary":
    c, q = sign_ste(h_c), sign_ste(h_q)
  elif cfg.similarity_codes == "continuous":
    c, q = h_c, h_q
  else:
    raise ValueError(f"cmhn.similarity_codes must be continuous or binary, "
                     f"got {cfg.similarity_codes!r}")
  gamma1 = similarity_preserving(c, q, iou, cfg.code_bits, pair_mask)
  gamma2 = [quantization_loss(h_c, cand_valid), quantization_loss(h_q, query_valid)]
  gamma3 = [balance_loss(h_c, cand_valid), balance_loss(h_q, query_valid)]
  if cfg.loss_reduction == "mean":  # per pair, per bit
    count = lambda m: jnp.maximum(m.sum(axis=tuple(range(1, m.ndim))), 1).astype(h_c.dtype)
    codes = (count(cand_valid), count(query_valid))
    gamma1 = gamma1 / (cfg.code_bits ** 2 * count(pair_mask))
    gamma2 = [g / (cfg.code_bits * n) for g, n in zip(gamma2, codes)]
    gamma3 = [g / (cfg.code_bits * n ** 2) for g, n in zip(gamma3, codes)]
  terms = {"gamma1": gamma1, "gamma2": sum(gamma2)}
  if cfg.beta:  # the released reading has no balance term
    terms["gamma3"] = sum(gamma3)
  terms = {k: masked_average(v, batch["example_valid"]) for k, v in terms.items()}
  total = terms["gamma1"] + cfg.alpha * terms["gamma2"] + cfg.beta * terms.get("gamma3", 0.0)
  return total, terms


def quantization_loss(h, valid):
  """`[B, N, L]` codes, `[B, N]` validity -> `[B]` ||H - sgn(H)||_F^2 (Eq. 9)."""
  b = sign(h)
  return jnp.sum(jnp.where(valid[..., None], h - b, 0.0) ** 2, axis=(1, 2))


def balance_loss(h, valid):
  """`[B, N, L]`, `[B, N]` -> `[B]` ||H^T 1||^2: each bit's sum over valid codes."""
  return jnp.sum(jnp.sum(jnp.where(valid[..., None], h, 0.0), axis=1) ** 2, axis=-1)


def ranking_score(distance: jnp.ndarray, cosine: jnp.ndarray) -> jnp.ndarray:
  """The score candidates are ranked by: minus the Hamming distance (Eq. 12), equal
  distances ordered by the cosine of the real-valued codes (in [-1, 1], so 0.25 x it
  never reorders different distances). `decode` (evaluation) and the `Retrieval`
  score (`vmr_jax.predictor`) both rank by it."""
  return -distance + 0.25 * cosine


def decode(outputs, batch, config):
  """`[B, Q, K, 3]`: per query the K candidates of smallest Hamming distance
  (`ranking_score`)."""
  h_c, h_q = outputs["moment_codes"], outputs["query_codes"]
  times, cand_valid = _candidates(batch, config)
  distance = hamming_distance(sign(h_c), sign(h_q))
  cosine = jnp.einsum("bnl,bml->bnm", l2_normalize(h_c), l2_normalize(h_q))
  score = jnp.where(cand_valid[:, :, None], ranking_score(distance, cosine), -jnp.inf)
  return common.top_moments(jnp.swapaxes(score, 1, 2), times, config.eval.top_k)


def retrieval_moments(outputs, batch, config):
  """Every candidate's binary code packed into uint32 words `[B, N, ceil(L / 32)]`
  and its real-valued code of unit norm `[B, N, L]` (for `ranking_score`'s ties)."""
  times, valid = _candidates(batch, config)
  h_c = outputs["moment_codes"]
  return (pack_signs(h_c), l2_normalize(h_c)), times, valid


def retrieval_queries(outputs, config):
  h_q = outputs["query_codes"][0]
  return pack_signs(h_q), l2_normalize(h_q)  # [Q, W], [Q, L]


def retrieval_score(moments, queries, config):
  """Packed and unit codes `([V, N, W], [V, N, L])`, `([S, W], [S, L])` -> `[S, V, N]`
  `ranking_score`s, as `decode`'s: the Hamming distance from the popcount of the
  XOR, its ties ordered by the cosine."""
  del config
  (moment_words, moment_units), (query_words, query_units) = moments, queries
  distance = packed_hamming_distance(moment_words[None], query_words[:, None, None])
  return ranking_score(distance, common.collection_products(moment_units, query_units))


def create(config, info: registry.DataInfo) -> registry.Model:
  cfg = config.cmhn
  if reading(cfg) not in READINGS:
    raise ValueError(f"cmhn.reading must be one of {READINGS}, got {reading(cfg)!r}")
  if cfg.loss_reduction not in LOSS_REDUCTIONS:
    raise ValueError(f"cmhn.loss_reduction must be one of {LOSS_REDUCTIONS}, got "
                     f"{cfg.loss_reduction!r}")
  if cfg.code_scale not in CODE_SCALES:
    raise ValueError(f"cmhn.code_scale must be one of {CODE_SCALES}, got {cfg.code_scale!r}")
  if len(cfg.kernels) != len(cfg.strides):
    raise ValueError(f"cmhn.kernels {tuple(cfg.kernels)} and cmhn.strides "
                     f"{tuple(cfg.strides)} differ in length")
  candidate_spans(config.data.num_clips, cfg)  # checks that every window fits
  return common.with_text_encoder(
      config, info, lambda *encoder: CMHN(config.cmhn, *encoder))


SPEC = registry.ModelSpec(
    create=create, loss=loss, decode=decode, data={"batch_kind": "video"},
    retrieval=registry.Retrieval(
        retrieval_moments, retrieval_queries, retrieval_score,
        host_index=functools.partial(faiss_index.HammingIndex, rank=ranking_score),
        host_available=faiss_index.available))
