"""FVMR: fast video moment retrieval by fine-grained semantic distillation (Gao and Xu,
ICCV 2021; paper 002).

Video encoder (Sec. 3.1, 4.1 "Implementation details"; 2D-TAN's proposal map):
clip features `[B, L, F]` -> the frame layer (`fvmr.frame_layer`) -> 2D-TAN's
sparse max-pool map (`moment_map.sparse_max_pool_map`, the schedule
`fvmr.scale_layers`) on the (start, end) grid -> per kernel of `map_kernels` (5, 3)
a masked map convolution (`moment_map.MapConv`), BatchNorm over the map's cells of
the batch's real videos, Tanh -> m_i `[B, M, D_v]` for the M cells (Eq. 1).
Frame layers: "paper", FC to D_v with ReLU on the L clips (the map has L clips);
"2dtan", the layer of 2D-TAN's released code (github.com/microsoft/2D-TAN,
`FrameAvgPool` on `NORMALIZE: True` features), on which FVMR builds: each clip
L2-normalized, FC (a 1x1 convolution) with ReLU, then an average pool of
`fvmr.frame_pool` clips at that stride, so `data.num_clips` = 256 input clips make a
128-clip map on TACoS (`map_clips`). 2D-TAN normalizes its frame features before
averaging them to the 256 clips; here the clips are normalized after the input
pipeline's resampling (the same for features already at 256 clips).
Text encoder: GloVe 300-d and a 2-layer BiLSTM (`config.text`, head "bilstm"; 256
per direction, so D_s = 512 as the paper's widths require); s = w_1 + w_L (Eq. 2).
Fine-grained semantic extractor (Sec. 3.2, the teacher; training only): the query's
semantic role tree (`verb_tokens`, `noun_tokens`, `role_edges` of the batch, from
`config.data.srl_file`); node embeddings g(s), g(v), g(n) are the final states of
one BiGRU (as HGR's) over the GloVe vectors of the sentence's or node's words
(the text encoder's own table); Eq. 3 importance scores per level, Eq. 4 phrase
features, Eq. 5 u = g(s) (.) mean_i h_i (`SemanticGuidedAttention`).
Common space (Sec. 3.3): phi_m, phi_s, phi_u MLPs (one hidden layer, ReLU; linear
D-dim output, so scores may be signed); p_i = phi_m(m_i) . phi_s(s) (Eq. 6);
q_i = phi_fuse(phi_m(m_i) (.) phi_u(u)) (Eq. 7) with phi_fuse = a kernel-3 map
convolution (ReLU) and a kernel-9 gated map convolution (Yu et al. 2019: a feature
channel times the sigmoid of a gate channel) to one logit per cell. phi_fuse sums over
its windows' cells (`MapConv(normalize=False)`): 2D-TAN's division by the cell count
shrinks the kernel-9 logits by up to the ~45 cells of a window, which keeps softmax(q)
nearly uniform and makes the distillation pull p towards a flat distribution
(docs/results.md, "FVMR: phi_fuse's cell-count division", measures both).
Losses (Eq. 8-10), per (video, query) pair, averaged over the batch's real pairs:
BCE of sigmoid(p) and of sigmoid(q) against 2D-TAN's scaled IoU
y = clip((o - o_min) / (o_max - o_min), 0, 1), averaged over the M cells (the paper
prints the formula and the thresholds garbled; (o_min, o_max) = (0.3, 0.7) as
2D-TAN's TACoS setting); distillation = lambda x Eq. 9, no gradient through q, and
zero while the example's `epoch` < `distill_warmup_epochs` (the warm-up). A query
with several windows (`gt_windows`, `data.duplicate_sentences = "merge"`): o is a
cell's largest IoU over them (`common.target_iou`), for both BCE terms (the
distillation reads no ground truth).
Eq. 9 is L_ce(sigma(p / T), sigma(q / T)) with L_ce Eq. 8's BCE and sigma "the
softmax function"; `fvmr.distill_loss` picks a reading (`losses.distillation`):
"softmax_bce" (the default, the text as printed: Eq. 8's per-cell BCE of the
softmax distributions), "sigmoid_bce" (Eq. 8's BCE of sigmoid(p / T) against the
teacher's sigmoid scores as soft targets) or "softmax_ce" (the distributions' cross
entropy, Hinton et al.'s distillation loss). softmax_bce is kept because it measured
best of the three on the synthetic benchmark (docs/results.md, "FVMR: Eq. 9", with
and without distillation).
Inference (Sec. 3.3): p only. The model's evaluation output holds no teacher:
`p_logits [B, Q, M]` is one product of each video's moment embeddings phi_m(m)
(computed once per video) with all its queries' phi_s(s), then the evaluator's NMS.

Choices the paper leaves open are written above and in `configs/fvmr_common.py`:
separate Eq. 3 weights for the (s, v) and (v, n) levels, no biases in Eq. 3, the
BiGRU node encoder shared by all node kinds, phi_fuse's hidden width and ReLU, and
the video map's masked convolutions: inputs off the map's cells read as zero and each
output is divided by its window's cell count (2D-TAN's re-weighting), while 2D-TAN
also grows its mask after each convolution; here the cells stay the sparse map's.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from vmr_jax import registry
from vmr_jax.layers import moment_map
from vmr_jax.layers.attention import l2_normalize, masked_mean, masked_softmax
from vmr_jax.layers.losses import DISTILLATIONS, distillation, masked_average, scaled_iou_bce
from vmr_jax.layers.mlp import MLP
from vmr_jax.layers.rnn import BiRNN
from vmr_jax.models import common
from data_pipelines.words import PAD_ID

TREE_KEYS = ("verb_tokens", "noun_tokens", "role_edges")


class RoleImportance(nn.Module):
  """Eq. 3's importance scores of one tree level: the upper level's summary
  `[..., Df]` and the lower level's nodes `[..., K, Df]` -> alpha `[..., K]`,
  alpha_k = W_alpha tanh([W_top g^ || W_low g_k])."""

  @nn.compact
  def __call__(self, top: jnp.ndarray, nodes: jnp.ndarray) -> jnp.ndarray:
    d = nodes.shape[-1]
    low = nn.Dense(d, use_bias=False, name="low")(nodes)
    top = jnp.broadcast_to(nn.Dense(d, use_bias=False, name="top")(top)[..., None, :],
                           low.shape)
    joint = jnp.tanh(jnp.concatenate([top, low], axis=-1))
    return nn.Dense(1, use_bias=False, name="alpha")(joint)[..., 0]


class SemanticGuidedAttention(nn.Module):
  """Eq. 3-5: node embeddings -> the fine-grained semantic feature u `[..., Df]`.

  sentence `[..., Df]` g(s); verbs `[..., V, Df]` g(v); nouns `[..., N, Df]` g(n);
  verb_valid `[..., V]`, noun_valid `[..., N]`; edges `[..., V, N]` (verb i governs
  noun j). (s, v): the root is one node, so its summary is g(s) itself; (v, n): the
  summary is sum_l a_l g_l^(v), a = softmax of the verbs' alpha. Phrase i (Eq. 4)
  weighs verb i and its nouns by the softmax of their alpha; u (Eq. 5) is g(s)
  times the mean of the valid phrases.
  """

  @nn.compact
  def __call__(self, sentence, verbs, nouns, verb_valid, noun_valid, edges):
    verb_alpha = RoleImportance(name="verb_importance")(sentence, verbs)
    verb_summary = jnp.einsum("...k,...kd->...d", masked_softmax(verb_alpha, verb_valid),
                              verbs)
    noun_alpha = RoleImportance(name="noun_importance")(verb_summary, nouns)
    links = edges & noun_valid[..., None, :]
    weights = masked_softmax(
        jnp.concatenate([verb_alpha[..., None],
                         jnp.broadcast_to(noun_alpha[..., None, :], links.shape)], -1),
        jnp.concatenate([verb_valid[..., None], links], -1))  # b_i: [..., V, 1 + N]
    phrases = (weights[..., :1] * verbs
               + jnp.einsum("...vn,...nd->...vd", weights[..., 1:], nouns))
    return sentence * masked_mean(phrases, verb_valid)


def first_plus_last(words: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Eq. 2's s = w_1 + w_L: `[..., L, D]`, `[..., L]` -> `[..., D]`."""
  last = jnp.maximum(mask.sum(-1) - 1, 0)[..., None, None]
  return words[..., 0, :] + jnp.take_along_axis(words, last, axis=-2)[..., 0, :]


FRAME_LAYERS = ("paper", "2dtan")


def frame_layer(cfg) -> str:
  """`fvmr.frame_layer`; "paper" for configs written before it existed (older exports)."""
  return cfg.get("frame_layer", "paper")


def map_clips(config) -> int:
  """The 2D map's clips: `data.num_clips`, or that over `fvmr.frame_pool` with the
  "2dtan" frame layer."""
  if frame_layer(config.fvmr) == "2dtan":
    return config.data.num_clips // config.fvmr.frame_pool
  return config.data.num_clips


class FVMR(common.TextVideoModule):
  """batch -> {"p_logits": [B, Q, M], the common space's "moment_embeddings"
  phi_m(m) [B, M, D] and "query_embeddings" phi_s(s) [B, Q, D]}, plus the teacher's "q_logits" [B, Q, M] in
  training (and at initialization, which creates every parameter)."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    cfg = self.config
    phi = lambda name: MLP((cfg.mlp_hidden, cfg.dim), activation="relu",
                           last_activation="none", name=name)
    feats = batch["video_feats"]
    if frame_layer(cfg) == "2dtan":
      feats = l2_normalize(feats)
    clips = nn.relu(nn.Dense(cfg.video_dim, name="clip_fc")(feats))
    if frame_layer(cfg) == "2dtan":
      clips = nn.avg_pool(clips, (cfg.frame_pool,), (cfg.frame_pool,))
    spans = moment_map.sparse_spans(clips.shape[1], cfg.scale_layers)
    neighbours = lambda kernel: moment_map.cell_neighbours(clips.shape[1], spans, kernel)
    cells = moment_map.sparse_max_pool_map(clips, cfg.scale_layers)  # [B, M, D_v]
    real = jnp.broadcast_to(batch["example_valid"][:, None, None], cells.shape[:2] + (1,))
    for i, kernel in enumerate(cfg.map_kernels):
      cells = moment_map.MapConv(cfg.video_dim, kernel, name=f"map_conv_{i}")(
          cells, neighbours(kernel))
      cells = jnp.tanh(nn.BatchNorm(use_running_average=not train, momentum=cfg.bn_momentum,
                                    name=f"map_norm_{i}")(cells, mask=real))
    moments = phi("phi_m")(cells)  # [B, M, D]

    words, _ = self.encode_text(batch, train=train)
    queries = phi("phi_s")(first_plus_last(words, batch[self.mask_key]))  # [B, Q, D]
    outputs = {"p_logits": jnp.einsum("bmd,bqd->bqm", moments, queries),  # Eq. 6
               "moment_embeddings": moments, "query_embeddings": queries}
    if train or self.is_initializing():
      semantic = phi("phi_u")(self.semantic_feature(batch))  # [B, Q, D]
      fused = moments[:, None] * semantic[:, :, None]  # [B, Q, M, D]
      b, q = fused.shape[:2]
      h = nn.relu(moment_map.MapConv(cfg.fuse_hidden, cfg.fuse_kernels[0], normalize=False,
                                     name="fuse_conv")(
                                         fused.reshape(b * q, *fused.shape[2:]),
                                         neighbours(cfg.fuse_kernels[0])))
      gated = moment_map.MapConv(2, cfg.fuse_kernels[1], normalize=False,
                                 name="fuse_gated_conv")(h, neighbours(cfg.fuse_kernels[1]))
      outputs["q_logits"] = (gated[..., 0] * nn.sigmoid(gated[..., 1])).reshape(b, q, -1)
    return outputs

  def semantic_feature(self, batch) -> jnp.ndarray:
    """The teacher's u `[B, Q, Df]` from the batch's role trees (Sec. 3.2)."""
    missing = [key for key in TREE_KEYS if key not in batch]
    if missing:
      raise ValueError(f"FVMR's teacher needs semantic role trees in the batch ({missing} "
                       "missing): set config.data.srl_file to an AllenNLP SRL JSON lines "
                       "file (data_pipelines.semantic_roles)")
    node_rnn = BiRNN(self.config.node_hidden, 1, "gru", name="node_gru")

    def embed(tokens, mask):
      """Word ids `[..., W]` -> final BiGRU states `[..., Df]`."""
      vectors = self.text_encoder.embed(tokens)
      lead = tokens.shape[:-1]
      _, final = node_rnn(vectors.reshape(-1, *vectors.shape[-2:]),
                          mask.reshape(-1, mask.shape[-1]))
      return final.reshape(*lead, -1)

    verbs, nouns = batch["verb_tokens"], batch["noun_tokens"]
    return SemanticGuidedAttention(name="semantic_attention")(
        embed(batch["query_tokens"], batch["query_mask"]),
        embed(verbs, verbs != PAD_ID), embed(nouns, nouns != PAD_ID),
        verbs[..., 0] != PAD_ID, nouns[..., 0] != PAD_ID, batch["role_edges"])


def _candidates(batch, config):
  """`[B, M, 2]` cell times in seconds: cell (i, j) of a map of L clips covers
  [i T/L, (j + 1) T/L) of a video of duration T (every video is resampled)."""
  length = map_clips(config)
  return common.grid_times(moment_map.sparse_spans(length, config.fvmr.scale_layers)
                           + np.array([0, 1]), batch["duration"], length)


def loss(outputs, batch, config):
  cfg = config.fvmr
  iou = jnp.swapaxes(common.target_iou(_candidates(batch, config), batch),
                     1, 2)  # [B, Q, M], the best window's
  pairs = batch["query_valid"] & batch["example_valid"][:, None]
  p, q = outputs["p_logits"], outputs["q_logits"]
  bce = lambda logits: scaled_iou_bce(logits, iou, cfg.iou_low, cfg.iou_high).mean(-1)
  distill = distillation(p, q, cfg.temperature, cfg.distill_loss)  # [B, Q]
  warm = (batch["epoch"] >= cfg.distill_warmup_epochs)[:, None]
  terms = {"bce_p": masked_average(bce(p), pairs), "bce_q": masked_average(bce(q), pairs),
           "distill": masked_average(distill, pairs)}
  total = (terms["bce_p"] + terms["bce_q"]
           + cfg.distill_weight * masked_average(jnp.where(warm, distill, 0.0), pairs))
  return total, terms


def decode(outputs, batch, config):
  """`[B, Q, K, 3]`: the K best cells by sigmoid(p) (Eq. 6 alone)."""
  return common.top_moments(nn.sigmoid(outputs["p_logits"]), _candidates(batch, config),
                            config.eval.top_k)


def retrieval_moments(outputs, batch, config):
  """The cells' common-space embeddings phi_m(m) `[B, M, D]`."""
  times = _candidates(batch, config)
  return outputs["moment_embeddings"], times, jnp.ones(times.shape[:2], bool)


def retrieval_queries(outputs, config):
  return outputs["query_embeddings"][0]  # [Q, D]


def retrieval_score(moments, queries, config):
  """`[V, M, D]`, `[S, D]` -> `[S, V, M]` sigmoid(p) (Eq. 6), as `decode`."""
  del config
  return nn.sigmoid(common.collection_products(moments, queries))


def create(config, info: registry.DataInfo) -> registry.Model:
  cfg = config.fvmr
  if config.text.encoder != "glove":
    raise ValueError("FVMR's node encoder reads the text encoder's GloVe table: "
                     f"config.text.encoder must be 'glove', got {config.text.encoder!r}")
  if len(cfg.fuse_kernels) != 2:
    raise ValueError(f"fvmr.fuse_kernels: (convolution, gated convolution) kernels, got "
                     f"{cfg.fuse_kernels}")
  if frame_layer(cfg) not in FRAME_LAYERS:
    raise ValueError(f"fvmr.frame_layer must be one of {FRAME_LAYERS}, got "
                     f"{frame_layer(cfg)!r}")
  if frame_layer(cfg) == "2dtan" and config.data.num_clips % cfg.frame_pool:
    raise ValueError(f"the 2dtan frame layer pools {cfg.frame_pool} clips: "
                     f"data.num_clips = {config.data.num_clips} is not a multiple")
  moment_map.sparse_spans(map_clips(config), cfg.scale_layers)  # checks the schedule
  if cfg.distill_loss not in DISTILLATIONS:
    raise ValueError(f"fvmr.distill_loss must be one of {DISTILLATIONS}, got "
                     f"{cfg.distill_loss!r}")
  return common.with_text_encoder(config, info, lambda *encoder: FVMR(cfg, *encoder))


# 2D-TAN resamples every video to the map's L clips.
SPEC = registry.ModelSpec(
    create=create, loss=loss, decode=decode,
    data={"batch_kind": "video", "short_videos": "stretch", "clip_seconds": 0.0},
    retrieval=registry.Retrieval(retrieval_moments, retrieval_queries, retrieval_score),
    map_clips=map_clips)
