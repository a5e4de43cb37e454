"""CLEAR as its authors released it (github.com/Huyp777/CSUN, README "CLEAR"; CSUN_T
for TACoS, CSUN_A for ActivityNet; it does not run end to end as released, so it is
read module by module): `config.clear.reading = "released"`, chosen by
`vmr_jax.models.clear.spec_for`. The paper's reading and the list of what differs
are in `vmr_jax.models.clear`.

Query-level batches, one (video, sentence) pair per example, as the release's batches
of 32 shuffled pairs. Two networks that share no parameter (`fine`, `coarse`), trained
on the sum of their losses:
- fine (`fineGraind/`): clips L2-normalized (`F.normalize` in `video2feats`; here
  after the input pipeline's resampling to `data.num_clips`), a 1x1 convolution to
  `frame_dim` with ReLU and an average pool of `frame_pool` (`fp`); 2D-TAN's sparse
  max-pool map of the L pooled clips (`scale_layers`), column L - 1's features zeroed
  (`f_2dmap`); a unidirectional `query_layers`-layer LSTM over the frozen GloVe
  words, its output at the last word, FC to `frame_dim`, and
  F = normalize(q (.) conv1x1(map)) over the whole L x L grid (`query_encode`): a grid
  position holding no cell feature (off the cells, below the diagonal, column L - 1)
  carries normalize(q (.) b), b the 1x1 convolution's bias; 2D-TAN's predictor
  (`moment_map.MapPredictor` on `moment_map.grown_layout`): `predictor_layers`
  kernel-`predictor_kernel` convolutions, the first padded so the grid keeps its
  size, a mask that starts at the candidates and grows, ReLU and 1/count; a 1x1
  convolution to one logit per candidate. The candidates (`mask2d`): 2D-TAN's sparse
  cells less row 0 (but (0, 0)) and column L - 1 (but (L - 1, L - 1)). Fine loss: BCE
  with logits against the IoU rescaled by (`iou_low`, `iou_high`) = (0.5, 1), averaged
  over the candidates and the batch (`fineloss`).
- coarse (`coarse/`): CMHN's residual TCN (`ResidualTCN`, `tcn_channels`, RReLU,
  dropout) over the `data.num_clips` normalized clips; one valid convolution per
  `coarse_kernels` / `coarse_strides` to the TCN's width, concatenated along time
  (P positions); RReLU and a Linear across the P positions to the A anchors
  (`video_trans`), then RReLU, Linear, RReLU, Linear to `coarse_dim` (`video_net`) ->
  v `[B, A, d]`; a separate LSTM (`sentence_layers` x `sentence_hidden`) -> FC to
  `sentence_fc`, RReLU, Linear to `coarse_dim` -> s `[B, d]`. The anchors are 2D-TAN's
  cells (0, j), then (i, L - 1), ((0, L - 1) twice), each timed [i T/L, j T/L] with no
  + 1 on the end (`anchor_spans`). Coarse loss: the sum over every sentence i, video
  b and anchor a of the batch of (s_i . v_(b, a) - `coarse_scale` IoU_(b, a))^2, IoU_b
  the anchors' IoU (union + 1e-7) with video b's own sentence.
- several windows per sentence (`gt_windows`, `data.duplicate_sentences = "merge"`;
  not in the release, whose data has one per pair): both targets are a candidate's
  or an anchor's largest IoU over the windows (`common.target_iou`, `anchor_iou`),
  as the released CMHN code does for duplicate sentences; neither loss regresses a
  boundary.
- inference (`utils/inference.py`): p = sigmoid(fine logit) per candidate; with
  c = s . v_a over the anchors, e = (c[-1] - c[`rule_anchor`]) / c[`rule_anchor`]; for
  `mu` <= e <= `rho` (the release's alpha) the candidates of row L - 4 (starting at
  pooled clip L - 4) are scaled by 10; for e > rho the release scales cell
  (L - 2, L - 1), which is not a candidate, so nothing changes. A cell (i, j) covers
  [i T/L, (j + 1) T/L); NMS (`eval.nms_threshold` 0.5) runs over every candidate.
- schedule (`train/`, the configs): Adam, TACoS lr 1.3e-3 with MultiStepLR milestones
  7, 11, 14 over 16 epochs, ActivityNet 5e-4 with 3, 5 over 6.

Differences from the release, and why:
- c is s . v of the sentence's own video; the release reads it on the batch's first
  video (`check[0, i]`), so a sentence's ranking there depends on which sentences
  share its evaluation batch;
- the clips are normalized after the input pipeline's resampling (the release
  normalizes the raw clips, then averages them to 256), as FVMR's 2dtan frame layer;
- the coarse IoU targets use the pipeline's ground truth, clipped to the video (the
  release's `sim` reads the unclipped timestamps, its fine targets the clipped ones);
- training uses the train split and keeps val for the best checkpoint (the release
  trains on train + val and reports its last epoch).
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmr_jax import registry
from vmr_jax.layers import moment_map, windows
from vmr_jax.layers.attention import l2_normalize
from vmr_jax.layers.bitcn import ResidualTCN
from vmr_jax.layers.losses import masked_average, scaled_iou_bce
from vmr_jax.layers.mlp import RReLU
from vmr_jax.layers.rnn import BiRNN
from vmr_jax.models import common


def map_clips(config) -> int:
  """L, the fine map's clips: `data.num_clips` over `clear.frame_pool`."""
  return config.data.num_clips // config.clear.frame_pool


@dataclasses.dataclass(frozen=True)
class FineLayout:
  """The fine network's static tables for an L-clip map (M sparse cells)."""
  feature_cells: np.ndarray  # [R - 1] the cells (of M) whose features reach the grid
  candidates: np.ndarray  # [C, 2] the scored cells (start, end), row-major
  layers: tuple  # `moment_map.grown_layout` over rows [feature_cells..., background]


@functools.lru_cache(maxsize=None)
def fine_layout(num_clips: int, scale_layers: tuple[int, ...], kernel_size: int,
                num_layers: int) -> FineLayout:
  spans = moment_map.sparse_spans(num_clips, scale_layers)
  last = num_clips - 1
  grid = np.zeros((num_clips, num_clips), bool)
  grid[spans[:, 0], spans[:, 1]] = True
  candidates = grid.copy()
  candidates[0, 1:] = candidates[:last, last] = False
  feature_cells = np.flatnonzero(spans[:, 1] < last)
  inputs = np.full((num_clips, num_clips), len(feature_cells))  # the background row
  inputs[spans[feature_cells, 0], spans[feature_cells, 1]] = np.arange(len(feature_cells))
  outputs = np.argwhere(candidates)
  layers = moment_map.grown_layout(num_clips, inputs, candidates, outputs, kernel_size,
                                   num_layers)
  return FineLayout(feature_cells, outputs.astype(np.int32), tuple(layers))


def config_layout(config) -> FineLayout:
  """`fine_layout` of `config`'s map."""
  cfg = config.clear
  return fine_layout(map_clips(config), tuple(cfg.scale_layers), cfg.predictor_kernel,
                     cfg.predictor_layers)


def anchor_spans(num_clips: int, scale_layers) -> np.ndarray:
  """`[A, 2]` the coarse anchors: the sparse cells (0, j) by j, then (i, L - 1) by i."""
  spans = moment_map.sparse_spans(num_clips, scale_layers)
  first = spans[spans[:, 0] == 0]
  last = spans[spans[:, 1] == num_clips - 1]
  return np.concatenate([first[np.argsort(first[:, 1])], last[np.argsort(last[:, 0])]])


class Fine(nn.Module):
  """Clips `[B, T, F]` (normalized), words `[B, W, E]` and their mask -> logits
  `[B, C]` of the candidates."""
  config: object
  num_clips: int  # L

  @nn.compact
  def __call__(self, clips, words, word_mask):
    cfg = self.config
    layout = fine_layout(self.num_clips, tuple(cfg.scale_layers), cfg.predictor_kernel,
                         cfg.predictor_layers)
    x = nn.relu(nn.Dense(cfg.frame_dim, name="fp_conv")(clips))
    x = nn.avg_pool(x, (cfg.frame_pool,), (cfg.frame_pool,))
    cells = moment_map.sparse_max_pool_map(x, cfg.scale_layers)[:, layout.feature_cells]
    rows = jnp.concatenate([cells, jnp.zeros_like(cells[:, :1])], axis=1)  # [B, R, D]
    rows = nn.Dense(cfg.frame_dim, name="query_encode_conv")(rows)
    _, last = BiRNN(cfg.query_hidden, cfg.query_layers, "lstm", bidirectional=False,
                    name="query_encode_lstm")(words, word_mask)
    query = nn.Dense(cfg.frame_dim, name="query_encode_fc")(last)  # [B, D]
    fused = l2_normalize(query[:, None] * rows)
    return moment_map.MapPredictor(cfg.predictor_hidden, cfg.predictor_kernel,
                                   name="predictor")(fused, layout.layers)


class Coarse(nn.Module):
  """Clips `[B, T, F]` (normalized) and their mask, words and their mask -> anchor
  codes v `[B, A, d]` and sentence codes s `[B, d]`."""
  config: object
  num_anchors: int

  @nn.compact
  def __call__(self, clips, clip_mask, words, word_mask, *, train: bool):
    cfg = self.config
    x = ResidualTCN(cfg.tcn_channels, cfg.tcn_kernel, cfg.dropout, name="video_tcn")(
        clips, clip_mask, train=train)
    x = windows.window_conv(x, cfg.tcn_channels[-1], cfg.coarse_kernels,
                            cfg.coarse_strides, "video_conv1d", tail=False,
                            index_names=True)  # [B, P, C]
    x = nn.Dense(self.num_anchors, name="video_trans")(
        jnp.swapaxes(RReLU()(x, train=train), 1, 2))  # across the P positions
    x = nn.Dense(cfg.coarse_dim, name="video_net_1")(
        RReLU()(jnp.swapaxes(x, 1, 2), train=train))
    anchors = nn.Dense(cfg.coarse_dim, name="video_net_3")(RReLU()(x, train=train))
    _, last = BiRNN(cfg.sentence_hidden, cfg.sentence_layers, "lstm", bidirectional=False,
                    name="sentence_lstm")(words, word_mask)
    s = nn.Dense(cfg.sentence_fc, name="sentence_fc")(last)
    sentences = nn.Dense(cfg.coarse_dim, name="sentence_net_1")(RReLU()(s, train=train))
    return anchors, sentences


class ReleasedCLEAR(common.TextVideoModule):
  """Query-level batch -> {"fine_logits": [B, C], "anchors": v [B, A, d],
  "sentences": s [B, d]}."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    cfg = self.config
    clips = l2_normalize(batch["video_feats"])
    words, _ = self.encode_text(batch, train=train)  # GloVe vectors [B, W, E]
    word_mask = batch[self.mask_key]
    length = clips.shape[1] // cfg.frame_pool
    num_anchors = len(anchor_spans(length, tuple(cfg.scale_layers)))
    logits = Fine(cfg, length, name="fine")(clips, words, word_mask)
    anchors, sentences = Coarse(cfg, num_anchors, name="coarse")(
        clips, batch["video_mask"], words, word_mask, train=train)
    return {"fine_logits": logits, "anchors": anchors, "sentences": sentences}


def _candidate_times(batch, config) -> jnp.ndarray:
  """`[B, C, 2]` seconds: cell (i, j) covers [i T/L, (j + 1) T/L)."""
  return common.grid_times(config_layout(config).candidates + np.array([0, 1]),
                           batch["duration"], map_clips(config))


def anchor_iou(batch, config) -> jnp.ndarray:
  """`[B, A]` the coarse targets: each anchor's IoU with the example's moment, the
  anchors timed [i T/L, j T/L] and the union plus 1e-7 (`coarse/utils.iou`); with
  several windows (`gt_windows [B, K, 2]`) the largest over them."""
  length = map_clips(config)
  times = common.grid_times(anchor_spans(length, tuple(config.clear.scale_layers)),
                            batch["duration"], length)[:, :, None]  # [B, A, 1, 2]
  gt = common.gt_windows(batch)[:, None]  # [B, 1, K, 2]
  inter = jnp.maximum(jnp.minimum(times[..., 1], gt[..., 1])
                      - jnp.maximum(times[..., 0], gt[..., 0]), 0.0)
  union = jnp.maximum(times[..., 1], gt[..., 1]) - jnp.minimum(times[..., 0], gt[..., 0])
  return (inter / (union + 1e-7)).max(axis=-1)


def loss(outputs, batch, config):
  cfg = config.clear
  valid = batch["example_valid"]
  iou = common.target_iou(_candidate_times(batch, config), batch)  # [B, C], best window
  fine = scaled_iou_bce(outputs["fine_logits"], iou, cfg.iou_low, cfg.iou_high)
  scores = jnp.einsum("id,bad->bia", outputs["sentences"], outputs["anchors"])
  residual = scores - cfg.coarse_scale * anchor_iou(batch, config)[:, None]  # [B, B, A]
  pairs = valid[:, None, None] & valid[None, :, None]
  terms = {"fine": masked_average(fine.mean(-1), valid),
           "coarse": jnp.sum(jnp.where(pairs, residual, 0.0) ** 2)}
  return terms["fine"] + terms["coarse"], terms


def rule_applies(outputs, config) -> jnp.ndarray:
  """`[B]` whether the inference rule scales row L - 4: mu <= e <= rho."""
  cfg = config.clear
  c = jnp.einsum("bd,bad->ba", outputs["sentences"], outputs["anchors"],
                 preferred_element_type=jnp.float32)
  e = (c[:, -1] - c[:, cfg.rule_anchor]) / c[:, cfg.rule_anchor]
  return (e >= cfg.mu) & (e <= cfg.rho)


def scores(outputs, config) -> jnp.ndarray:
  """`[B, C]` the candidates' ranking scores: sigmoid(logit), row L - 4 times 10 where
  the rule applies."""
  in_row = jnp.asarray(config_layout(config).candidates[:, 0] == map_clips(config) - 4)
  p = jax.nn.sigmoid(outputs["fine_logits"].astype(jnp.float32))
  return jnp.where(rule_applies(outputs, config)[:, None] & in_row, 10.0 * p, p)


def decode(outputs, batch, config):
  """`[B, K, 3]`: the K best candidates by `scores` (K = `eval.top_k`, 0: all)."""
  return common.top_moments(scores(outputs, config)[:, None],
                            _candidate_times(batch, config), config.eval.top_k)[:, 0]


def eval_stats(outputs, batch, config):
  """Per query, whether the inference rule changed its ranking (`[B]`)."""
  del batch
  return {"rule": rule_applies(outputs, config).astype(jnp.float32)}


def create(config, info: registry.DataInfo) -> registry.Model:
  cfg = config.clear
  if config.data.batch_kind != "query":
    raise ValueError("CLEAR's released reading trains on (video, sentence) pairs: "
                     f"config.data.batch_kind must be 'query', got "
                     f"{config.data.batch_kind!r}")
  if config.text.head:
    raise ValueError("CLEAR's released reading runs its own LSTMs over the word vectors: "
                     f"config.text.head must be '', got {config.text.head!r}")
  if config.data.num_clips % cfg.frame_pool:
    raise ValueError(f"clear.frame_pool = {cfg.frame_pool} does not divide "
                     f"data.num_clips = {config.data.num_clips}")
  if cfg.predictor_kernel % 2 != 1:
    raise ValueError(f"the map predictor needs an odd clear.predictor_kernel, got "
                     f"{cfg.predictor_kernel}")
  length = map_clips(config)
  if length < 5:
    raise ValueError(f"the released rule scales row L - 4 of the map: L = {length} clips "
                     "is too few")
  anchors = len(anchor_spans(length, tuple(cfg.scale_layers)))
  if not 0 <= cfg.rule_anchor < anchors:
    raise ValueError(f"clear.rule_anchor {cfg.rule_anchor} is not one of the {anchors} "
                     "anchors")
  if not cfg.mu <= cfg.rho:
    raise ValueError(f"the released rule needs clear.mu <= clear.rho, got {cfg.mu} and "
                     f"{cfg.rho}")
  windows.window_spans(config.data.num_clips, cfg.coarse_kernels, cfg.coarse_strides,
                       tail=False)  # checks that every window fits
  return common.with_text_encoder(
      config, info, lambda *encoder: ReleasedCLEAR(cfg, *encoder))


# 2D-TAN resamples every video to the map's clips.
SPEC = registry.ModelSpec(
    create=create, loss=loss, decode=decode,
    data={"batch_kind": "query", "short_videos": "stretch", "clip_seconds": 0.0},
    eval_stats=eval_stats,
    map_clips=map_clips)
