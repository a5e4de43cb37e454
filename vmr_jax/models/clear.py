"""CLEAR: coarse-to-fine semantic alignment for cross-modal moment localization (Hu et
al., IEEE TIP 2021; paper 000).

Video representation (Sec. III-B):
- Bi-TCN over the L units (Eq. 1): `config.clear.tcn_layers` non-causal dilated
  kernel-3 layers with length-keeping zero padding (`vmr_jax.layers.bitcn`).
- Multi-scale max pooling over every span i <= j: the dense L(L+1)/2 map
  (`vmr_jax.layers.moment_map`), then an MLP to d: the moments C^ [N, d].
- Anchors (Eq. 2) and the visual semantic tree with P layers, 0-indexed spans
  (start, end) inclusive over L units (`anchor_spans`, `tree_nodes`):
  a_1 = (0, L-1), the root; layer l = 1..P-1 has the left anchor (0, L-1-l) and the
  right anchor, the single unit (L-l, L-l). A node holds the spans inside its anchor:
  left(l) = the spans ending at or before unit L-1-l, right(l) = the one cell
  (L-l, L-l). left(l-1) = left(l) + right(l) + between(l), where between(l) =
  left(l-1) - left(l) - right(l) = the spans ending at unit L-l that start earlier
  (Algorithm 1, line 16).
Query representation (Sec. III-C): the configured text encoder's sentence vector (BERT
in the paper) and one FC layer with ReLU to d (Eq. 3).
Losses (Sec. III-D), per video, then averaged over the batch's videos:
- Gamma_1 (Eq. 5) = ||A^T Q - d M*||_F^2, M* = anchor/query IoU (Eq. 4; clamped at
  0), over the video's valid queries; divided by d^2 R M (R anchors, M queries) so it
  is the mean squared error of A^T Q / d against the IoU, on the scale of Gamma_2.
- Gamma_2 (Eq. 6-8): q (.) c for every query and candidate, an MLP to a logit,
  sigmoid confidence p; BCE against the soft IoU target o (Eq. 7 with the minus sign
  a loss needs), averaged over the A candidates and then over the video's queries.
  `iou_low`/`iou_high` rescale the target as 2D-TAN (and the authors' code, with
  (0.5, 1)) do; (0, 1) is the paper's raw IoU.
- Psi = Gamma_1 + alpha Gamma_2 (Eq. 9), alpha = 1.
Inference (Sec. III-E, Algorithm 1): `search = "exhaustive"` ranks every candidate by
p; `search = "pruned"` first walks the tree (`tree_search`) and ranks the chosen
node's candidates first. Moments come out as (start, end, score), span (i, j) of a
video of duration T covering [i T/L, (j + 1) T/L) seconds; NMS is the evaluator's.

The fine MLP's first layer, W^T (q (.) c), is computed as c^T (diag(q) W): one
matmul per video over [N, d] x [d, Q h] with no [Q, N, d] product in memory.

Choices the paper leaves open, and differences from the authors' code
(Huyp777/CSUN: GloVe + LSTM queries, a sparse 2D-TAN map, a rescaled BCE), are
written above and in `configs/clear_common.py`: widths, the moment MLP (2 layers,
ReLU between, linear output: inner products and the fusion may be signed), the
normalization of Gamma_1, and the reading of Algorithm 1 in `tree_search`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmr_jax import registry
from vmr_jax.layers import moment_map
from vmr_jax.layers.bitcn import BiTCN
from vmr_jax.layers.losses import masked_average, scaled_iou_bce, similarity_preserving
from vmr_jax.layers.mlp import MLP
from vmr_jax.models import common

SEARCHES = ("pruned", "exhaustive")


def anchor_spans(num_clips: int, num_layers: int) -> np.ndarray:
  """`[R, 2]` anchor spans (Eq. 2), R = 2P - 1: root, then (left, right) per layer."""
  if num_layers < 1 or num_clips < num_layers:
    raise ValueError(f"a {num_layers}-layer semantic tree needs 1 <= P <= L clips, got "
                     f"L = {num_clips}")
  last = num_clips - 1
  spans = [(0, last)]
  for layer in range(1, num_layers):
    spans += [(0, last - layer), (last - layer + 1, last - layer + 1)]
  return np.array(spans, dtype=np.int32)


def node_names(num_layers: int) -> list[str]:
  """The tree's nodes in id order: root, then left/right/between of each layer."""
  return ["root"] + [f"{kind}{layer}" for layer in range(1, num_layers)
                     for kind in ("left", "right", "between")]


def tree_nodes(num_clips: int, num_layers: int) -> np.ndarray:
  """`[3P - 2, N]`: which candidates (`moment_map.dense_spans` order) each node of
  `node_names` holds."""
  anchor_spans(num_clips, num_layers)  # checks the sizes
  start, end = moment_map.dense_spans(num_clips).T
  last = num_clips - 1
  nodes = [np.ones_like(start, dtype=bool)]
  for layer in range(1, num_layers):
    unit = last - layer + 1  # the right anchor's unit
    nodes += [end < unit, (start == unit) & (end == unit), (end == unit) & (start < unit)]
  return np.stack(nodes)


def tree_search(similarity: jnp.ndarray, num_layers: int, mu: float, rho: float
                ) -> jnp.ndarray:
  """Algorithm 1 (coarse step): anchor/query inner products `[..., R]` -> the chosen
  node `[...]` (an index into `node_names`).

  The printed pseudo-code compares Euclidean distances while its example (Fig. 6)
  needs similarities, and steps its anchors by one per layer, which follows Eq. 2 only
  for P = 2. Our reading, with inner products s(.) and the current node's anchor x
  (the root first), its children's anchors y (left) and z (right):
  - if max(y, z) <= x, no child matches better: stop at the current node (line 18);
  - else eta = (z - y) / |y| (line 9): eta > rho, the right leaf matches clearly
    better: stop there (line 11); eta <= mu: descend to the left child and repeat
    (lines 13-14); otherwise stop at between = current - left - right (line 16);
  - at layer P - 1 the walk ends at its left node.
  "Some child matches better" rather than the printed "both children closer": with
  similarities trained towards the IoU (Gamma_1), both children can never beat their
  parent (a right leaf overlaps a moment only if it ends the parent's span, and then
  the left child's IoU is below the parent's), so the printed test would always stop
  at the root. Under this reading a perfectly trained model descends while the
  moment lies inside the left child and stops where the moment's last unit is peeled
  off: at the right leaf for a one-unit moment, at between(l) for a longer one.
  """
  node = jnp.zeros(similarity.shape[:-1], jnp.int32)
  walking = jnp.ones(similarity.shape[:-1], bool)
  for layer in range(1, num_layers):
    x = similarity[..., 0 if layer == 1 else 2 * layer - 3]
    y, z = similarity[..., 2 * layer - 1], similarity[..., 2 * layer]
    better_child = jnp.maximum(y, z) > x
    eta = (z - y) / jnp.maximum(jnp.abs(y), 1e-12)
    left, right, between = 3 * layer - 2, 3 * layer - 1, 3 * layer
    chosen = jnp.where(eta > rho, right, jnp.where(eta <= mu, left, between))
    node = jnp.where(walking & better_child, chosen, node)
    walking = walking & better_child & (eta <= mu)
  return node


class FineScorer(nn.Module):
  """Eq. 6 and the confidence MLP: moments `[B, N, d]`, queries `[B, Q, d]` -> logits
  `[B, Q, N]` of MLP(q (.) c) (hidden layer `hidden`, ReLU)."""
  hidden: int

  @nn.compact
  def __call__(self, moments: jnp.ndarray, queries: jnp.ndarray) -> jnp.ndarray:
    d = moments.shape[-1]
    kernel = self.param("fuse_kernel", nn.initializers.lecun_normal(), (d, self.hidden))
    bias = self.param("fuse_bias", nn.initializers.zeros, (self.hidden,))
    per_query = queries[..., :, None] * kernel  # diag(q) W: [B, Q, d, h]
    hidden = nn.relu(jnp.einsum("bnd,bqdh->bqnh", moments, per_query) + bias)
    return nn.Dense(1, name="confidence")(hidden)[..., 0]


class CLEAR(common.TextVideoModule):
  """batch -> {"queries": Q^ [B, Q, d], "anchors": A [B, R, d],
  "fine_logits": [B, Q, N]} (N = L(L+1)/2 candidates, R = 2P - 1 anchors)."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    cfg = self.config
    feats, mask = batch["video_feats"], batch["video_mask"]
    units = BiTCN(cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel, dropout=cfg.dropout,
                  name="bitcn")(feats, mask, train=train)
    moments = MLP((cfg.hidden, cfg.dim), activation="relu", last_activation="none",
                  name="moment_mlp")(moment_map.max_pool_map(units))
    _, sentence = self.encode_text(batch, train=train)
    queries = nn.relu(nn.Dense(cfg.dim, name="query_fc")(sentence))  # Eq. 3
    anchors = moments[:, anchor_index(feats.shape[1], cfg.tree_layers)]
    return {"queries": queries, "anchors": anchors,
            "fine_logits": FineScorer(cfg.fine_hidden, name="fine")(moments, queries)}


def anchor_index(num_clips: int, num_layers: int) -> np.ndarray:
  """`[R]` packed candidate index of each anchor."""
  start, end = anchor_spans(num_clips, num_layers).T
  return moment_map.span_index(num_clips)[start, end]


def _candidates(batch, config):
  """`[B, N, 2]` candidate times in seconds."""
  return common.inclusive_spans_to_times(moment_map.dense_spans(config.data.num_clips),
                                         batch)


def coarse_loss(anchors, queries, anchor_iou, query_valid, dim):
  """Gamma_1 (Eq. 5) per video, `[B]`: anchors `[B, R, d]`, queries `[B, Q, d]`,
  anchor/query IoU `[B, R, Q]`, `query_valid [B, Q]`; / (d^2 R M)."""
  pair_mask = jnp.broadcast_to(query_valid[:, None, :], anchor_iou.shape)
  pairs = jnp.maximum(pair_mask.sum((1, 2)), 1).astype(anchors.dtype)
  return similarity_preserving(anchors, queries, anchor_iou, dim, pair_mask) / (
      dim ** 2 * pairs)


def fine_loss(logits, iou, query_valid, low, high):
  """Gamma_2's Phi_k (Eq. 7) per video, `[B]`: logits and IoU `[B, Q, N]`; the BCE
  averaged over the N candidates, then over the valid queries."""
  per_query = scaled_iou_bce(logits, iou, low, high).mean(-1)
  return masked_average(per_query, query_valid, axis=-1)


def loss(outputs, batch, config):
  cfg = config.clear
  iou = common.pairwise_iou(_candidates(batch, config), batch["gt_times"])  # [B, N, Q]
  anchor_iou = iou[:, anchor_index(config.data.num_clips, cfg.tree_layers)]
  gamma1 = coarse_loss(outputs["anchors"], outputs["queries"], anchor_iou,
                       batch["query_valid"], cfg.dim)
  gamma2 = fine_loss(outputs["fine_logits"], jnp.swapaxes(iou, 1, 2),
                     batch["query_valid"], cfg.iou_low, cfg.iou_high)
  terms = {"gamma1": masked_average(gamma1, batch["example_valid"]),
           "gamma2": masked_average(gamma2, batch["example_valid"])}
  return terms["gamma1"] + cfg.alpha * terms["gamma2"], terms


def decode(outputs, batch, config):
  """`[B, Q, K, 3]`: the K best candidates by confidence p. Pruned search ranks the
  chosen node's candidates first and the others after them (p - 2), so R@5 always
  has five moments while R@1 is the pruned search's answer (the authors' code
  likewise boosts the chosen region's scores rather than dropping the rest)."""
  cfg = config.clear
  scores = jax.nn.sigmoid(outputs["fine_logits"])
  if cfg.search == "pruned":
    similarity = jnp.einsum("bqd,brd->bqr", outputs["queries"], outputs["anchors"])
    node = tree_search(similarity, cfg.tree_layers, cfg.mu, cfg.rho)
    in_node = jnp.asarray(tree_nodes(config.data.num_clips, cfg.tree_layers))[node]
    scores = jnp.where(in_node, scores, scores - 2.0)
  else:
    _check_search(cfg.search)
  return common.top_moments(scores, _candidates(batch, config), config.eval.top_k)


def _check_search(search: str) -> None:
  if search not in SEARCHES:
    raise ValueError(f"clear.search must be one of {SEARCHES}, got {search!r}")


def create(config, info: registry.DataInfo) -> registry.Model:
  anchor_spans(config.data.num_clips, config.clear.tree_layers)  # checks the sizes
  _check_search(config.clear.search)
  if not config.clear.mu < config.clear.rho:
    raise ValueError(f"Algorithm 1 needs clear.mu < clear.rho, got {config.clear.mu} and "
                     f"{config.clear.rho}")
  return common.with_text_encoder(
      config, info, lambda *encoder: CLEAR(config.clear, *encoder))


# Eq. 2 defines the anchors on L units spanning the whole video: every video must be
# resampled to exactly L clips.
SPEC = registry.ModelSpec(create=create, loss=loss, decode=decode,
                          data={"batch_kind": "video", "short_videos": "stretch"})
