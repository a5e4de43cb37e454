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
  0), over the video's R anchors x M valid queries;
- Gamma_2 (Eq. 6-8): q (.) c for every query and candidate, an MLP to a logit,
  sigmoid confidence p; BCE against the soft IoU target o (Eq. 7 with the minus sign
  a loss needs), averaged over the A candidates and summed over the video's queries.
  `iou_low`/`iou_high` rescale the target as 2D-TAN (and the authors' code, with
  (0.5, 1)) do; (0, 1) is the paper's raw IoU.
- Psi = Gamma_1 + alpha Gamma_2 (Eq. 9), alpha = 1.
- A query with several windows (`gt_windows`, `data.duplicate_sentences = "merge"`):
  M* and o are a candidate's largest IoU over the windows (`common.target_iou`), so
  every window's candidates are positives; both losses are IoU-map losses, with no
  regression target to choose a window for.
`loss_reduction = "sum"` is Eq. 5 and Eq. 7 as printed; "mean" (the default) divides
Gamma_1 by d^2 R M (the mean squared error of A^T Q / d against the IoU) and Phi_k
by M. As printed, Gamma_1 is on the scale of d^2 (the targets reach d = 256) and
drowns the BCE of Gamma_2, the term that ranks the moments (docs/results.md, "CLEAR:
the scale of Gamma_1", measures both). (The authors' code sums the coarse loss over
all pairs and averages the fine BCE over the cells and the batch.)
Inference (Sec. III-E, Algorithm 1): `search = "exhaustive"` ranks every candidate by
p; `search = "pruned"` walks the tree (`tree_search`) and scores and ranks only the
chosen node's candidates (`pruned_logits`): a node smaller than `eval.top_k` yields
fewer moments. Moments come out as (start, end, score), span (i, j) of a video of
duration T covering [i T/L, (j + 1) T/L) seconds; NMS is the evaluator's. The share
of candidates searched is reported with the metrics (`eval_stats`, "searched"):
with Eq. 2's tree, which peels one unit off the end of the video per layer, the
root and left nodes hold almost every span, so the pruned search saves little
(docs/results.md and docs/benchmarks.md give the measured shares and speeds).

The fine MLP's first layer, W^T (q (.) c), is computed as c^T (diag(q) W): one
matmul per video over [N, d] x [d, Q h] with no [Q, N, d] product in memory.

Choices the paper leaves open are written above and in `configs/clear_common.py`:
widths, the moment MLP (2 layers, ReLU between, linear output: inner products and the
fusion may be signed), the normalization of Gamma_1, and the reading of Algorithm 1
in `tree_search`.

Two readings (`clear.reading`, `spec_for` picks the spec; the configs' default is
"released", `configs/clear_<dataset>.py:paper` the other): "paper", this module, and
"released", the authors' code (github.com/Huyp777/CSUN, README "CLEAR"; CSUN_T for
TACoS, CSUN_A for ActivityNet), in `vmr_jax.models.clear_released`, whose docstring
describes that code and the few points where it departs from it. What the release
changes from the paper reading: two parameter-disjoint networks, a fine 2D-TAN one
(sparse map less row 0 and column L - 1, LSTM query, growing-mask predictor) that
ranks the moments in place of the dense map and per-candidate MLP, and a coarse
CMHN-style one with 80 / 64 anchors (0, j) and (i, L - 1) in place of Eq. 2's 2P - 1,
real-valued codes and no hashing, trained on an all-pairs loss; BCE targets rescaled
to (0.5, 1); and in place of Algorithm 1's tree walk (not in the code) a rule that
scales one row of the fine map by 10.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmr_jax import registry
from vmr_jax.layers import moment_map
from vmr_jax.layers.bitcn import BiTCN
from vmr_jax.layers.losses import masked_average, scaled_iou_bce, similarity_preserving
from vmr_jax.layers.mlp import MLP
from vmr_jax.models import clear_released, common

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


@dataclasses.dataclass(frozen=True)
class SearchLayout:
  """The tree's nodes as static tables for `pruned_logits` (K = 3P - 2 nodes)."""
  in_node: np.ndarray  # [K, N] bool: `tree_nodes`
  large: np.ndarray  # [K] bool: root and left nodes, scored over the whole map
  small_cells: np.ndarray  # [K, L] int32: a right/between node's candidates, 0-padded
  small_valid: np.ndarray  # [K, L] bool


@functools.lru_cache(maxsize=None)
def search_layout(num_clips: int, num_layers: int) -> SearchLayout:
  in_node = tree_nodes(num_clips, num_layers)
  large = np.array([name == "root" or name.startswith("left")
                    for name in node_names(num_layers)])
  small_cells = np.zeros((len(in_node), num_clips), np.int32)
  small_valid = np.zeros((len(in_node), num_clips), bool)
  for k in np.flatnonzero(~large):
    cells = np.flatnonzero(in_node[k])
    small_cells[k, :len(cells)], small_valid[k, :len(cells)] = cells, True
  return SearchLayout(in_node, large, small_cells, small_valid)


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


class FineWeights(nn.Module):
  """The confidence MLP's parameters (Eq. 6 fusion, one hidden layer of `hidden`
  units, ReLU, one logit), for the pure scoring functions below: the pruned search
  calls them inside a `lax.while_loop`."""
  hidden: int

  @nn.compact
  def __call__(self, dim: int) -> dict[str, jnp.ndarray]:
    return {
        "fuse_kernel": self.param("fuse_kernel", nn.initializers.lecun_normal(),
                                  (dim, self.hidden)),
        "fuse_bias": self.param("fuse_bias", nn.initializers.zeros, (self.hidden,)),
        "confidence_kernel": self.param("confidence_kernel", nn.initializers.lecun_normal(),
                                        (self.hidden, 1)),
        "confidence_bias": self.param("confidence_bias", nn.initializers.zeros, (1,)),
    }


def fine_logits(w, moments: jnp.ndarray, queries: jnp.ndarray) -> jnp.ndarray:
  """MLP(q (.) c) of every query with every moment of its video: moments `[B, N, d]`,
  queries `[B, Q, d]` -> logits `[B, Q, N]`. The first layer W^T (q (.) c) is
  computed as c^T (diag(q) W): one matmul per video, no [Q, N, d] product."""
  per_query = queries[..., :, None] * w["fuse_kernel"]  # [B, Q, d, h]
  hidden = nn.relu(jnp.einsum("bnd,bqdh->bqnh", moments, per_query) + w["fuse_bias"])
  return (hidden @ w["confidence_kernel"])[..., 0] + w["confidence_bias"][0]


def cell_logits(w, cells: jnp.ndarray, queries: jnp.ndarray) -> jnp.ndarray:
  """MLP(q (.) c) of each query with its own cells: `[..., K, d]`, `[..., d]` ->
  `[..., K]`."""
  per_query = queries[..., :, None] * w["fuse_kernel"]  # [..., d, h]
  hidden = nn.relu(jnp.einsum("...kd,...dh->...kh", cells, per_query) + w["fuse_bias"])
  return (hidden @ w["confidence_kernel"])[..., 0] + w["confidence_bias"][0]


def pruned_logits(w, moments: jnp.ndarray, queries: jnp.ndarray, anchors: jnp.ndarray,
                  num_clips: int, config) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Algorithm 1: the tree walk (`tree_search`) picks a node per query, and only that
  node's candidates are scored. `[B, N, d]`, `[B, Q, d]`, `[B, R, d]` -> logits
  `[B, Q, N]` (-inf outside the node) and the node `[B, Q]`.

  Static shapes in two buckets: a right leaf or a between node holds at most L - 1
  candidates, gathered and scored for every query (a `[B, Q, L]` product); a root or
  left node holds most of the map and is scored in full, only for the queries that
  chose one, `config.search_chunk` queries per iteration of a `lax.while_loop` whose
  trip count is the number of such queries.
  """
  cfg = config
  b, q, d = queries.shape
  layout = search_layout(num_clips, cfg.tree_layers)
  # Similarities in float32 whatever the compute dtype: eta compares differences of
  # nearly equal inner products with mu and rho, 0.005 apart (bfloat16 keeps 8 bits).
  similarity = jnp.einsum("bqd,brd->bqr", queries, anchors,
                          preferred_element_type=jnp.float32)
  node = tree_search(similarity, cfg.tree_layers, cfg.mu, cfg.rho)
  in_node = jnp.asarray(layout.in_node)[node]  # [B, Q, N]
  small_cells = jnp.asarray(layout.small_cells)[node]  # [B, Q, L]
  small = cell_logits(w, moments[jnp.arange(b)[:, None, None], small_cells], queries)
  scattered = jnp.full((b, q, moments.shape[1]), -jnp.inf).at[
      jnp.arange(b)[:, None, None], jnp.arange(q)[None, :, None], small_cells].max(
          jnp.where(jnp.asarray(layout.small_valid)[node], small, -jnp.inf))

  chunk, total = cfg.search_chunk, b * q
  large = jnp.asarray(layout.large)[node].reshape(-1)
  order = jnp.concatenate([jnp.argsort(~large, stable=True),
                           jnp.full(-total % chunk, total)])  # padding: a spare row
  count = large.sum()
  flat_queries, video = queries.reshape(total, d), jnp.arange(total) // q

  def body(state):
    i, logits = state
    rows = jax.lax.dynamic_slice(order, (i * chunk,), (chunk,))
    real = jnp.minimum(rows, total - 1)
    scored = cell_logits(w, moments[video[real]], flat_queries[real])  # [chunk, N]
    live = (i * chunk + jnp.arange(chunk) < count)[:, None]
    return i + 1, logits.at[rows].set(jnp.where(live, scored, logits[rows]))

  _, full = jax.lax.while_loop(lambda s: s[0] * chunk < count, body,
                               (0, jnp.full((total + 1, moments.shape[1]), -jnp.inf)))
  full = full[:total].reshape(b, q, -1)
  logits = jnp.where(jnp.asarray(layout.large)[node][..., None], full, scattered)
  return jnp.where(in_node, logits, -jnp.inf), node


class CLEAR(common.TextVideoModule):
  """batch -> {"queries": Q^ [B, Q, d], "anchors": A [B, R, d], "moments": C [B, N, d],
  "fine": the confidence MLP's weights, "fine_logits": [B, Q, N]} (N = L(L+1)/2
  candidates, R = 2P - 1 anchors). With
  `search = "pruned"` in evaluation, the fine logits are those of Algorithm 1
  (`pruned_logits`: -inf outside the chosen node) and "node" [B, Q] is added."""

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
    w = FineWeights(cfg.fine_hidden, name="fine")(cfg.dim)
    outputs = {"queries": queries, "anchors": anchors, "moments": moments, "fine": w}
    if cfg.search == "pruned" and not (train or self.is_initializing()):
      outputs["fine_logits"], outputs["node"] = pruned_logits(
          w, moments, queries, anchors, feats.shape[1], cfg)
    else:
      outputs["fine_logits"] = fine_logits(w, moments, queries)
    return outputs


def anchor_index(num_clips: int, num_layers: int) -> np.ndarray:
  """`[R]` packed candidate index of each anchor."""
  start, end = anchor_spans(num_clips, num_layers).T
  return moment_map.span_index(num_clips)[start, end]


def _candidates(batch, config):
  """`[B, N, 2]` candidate times in seconds."""
  return common.inclusive_spans_to_times(moment_map.dense_spans(config.data.num_clips),
                                         batch)


LOSS_REDUCTIONS = ("sum", "mean")


def coarse_loss(anchors, queries, anchor_iou, query_valid, dim, reduction):
  """Gamma_1 (Eq. 5) per video, `[B]`: anchors `[B, R, d]`, queries `[B, Q, d]`,
  anchor/query IoU `[B, R, Q]`, `query_valid [B, Q]`. "sum": ||A^T Q - d M*||_F^2 over
  the video's R x M pairs, as printed; "mean": divided by d^2 R M (the mean squared
  error of A^T Q / d against the IoU)."""
  pair_mask = jnp.broadcast_to(query_valid[:, None, :], anchor_iou.shape)
  total = similarity_preserving(anchors, queries, anchor_iou, dim, pair_mask)
  if reduction == "sum":
    return total
  return total / (dim ** 2 * jnp.maximum(pair_mask.sum((1, 2)), 1).astype(anchors.dtype))


def fine_loss(logits, iou, query_valid, low, high, reduction):
  """Gamma_2's Phi_k (Eq. 7) per video, `[B]`: logits and IoU `[B, Q, N]`; the BCE
  averaged over the N candidates, then summed over the valid queries ("sum", as
  printed) or averaged over them ("mean")."""
  per_query = scaled_iou_bce(logits, iou, low, high).mean(-1)
  if reduction == "sum":
    return jnp.sum(jnp.where(query_valid, per_query, 0.0), axis=-1)
  return masked_average(per_query, query_valid, axis=-1)


def loss(outputs, batch, config):
  cfg = config.clear
  iou = common.target_iou(_candidates(batch, config), batch)  # [B, N, Q], best window
  anchor_iou = iou[:, anchor_index(config.data.num_clips, cfg.tree_layers)]
  gamma1 = coarse_loss(outputs["anchors"], outputs["queries"], anchor_iou,
                       batch["query_valid"], cfg.dim, cfg.loss_reduction)
  gamma2 = fine_loss(outputs["fine_logits"], jnp.swapaxes(iou, 1, 2),
                     batch["query_valid"], cfg.iou_low, cfg.iou_high, cfg.loss_reduction)
  terms = {"gamma1": masked_average(gamma1, batch["example_valid"]),
           "gamma2": masked_average(gamma2, batch["example_valid"])}
  return terms["gamma1"] + cfg.alpha * terms["gamma2"], terms


def decode(outputs, batch, config):
  """`[B, Q, K, 3]`: the K best candidates by confidence p = sigmoid(logit). With the
  pruned search only the chosen node's candidates are ranked: a node smaller than K
  fills the rest with score -inf rows, which are no moments (the evaluator drops
  them)."""
  logits = outputs["fine_logits"]
  scores = jnp.where(jnp.isfinite(logits), jax.nn.sigmoid(logits), -jnp.inf)
  return common.top_moments(scores, _candidates(batch, config), config.eval.top_k)


def eval_stats(outputs, batch, config):
  """Per query, the share of the candidates Algorithm 1 searched (`[B, Q]`; 1 for
  the exhaustive search)."""
  if "node" not in outputs:
    return {"searched": jnp.ones(outputs["fine_logits"].shape[:2])}
  layout = search_layout(config.data.num_clips, config.clear.tree_layers)
  sizes = jnp.asarray(layout.in_node.mean(-1, dtype=np.float32))
  return {"searched": sizes[outputs["node"]]}


def retrieval_moments(outputs, batch, config):
  """Every candidate's moment embedding C `[B, N, d]` (the anchors are among them)."""
  times = _candidates(batch, config)
  return outputs["moments"], times, jnp.ones(times.shape[:2], bool)


def retrieval_queries(outputs, config):
  return {"queries": outputs["queries"][0], "fine": outputs["fine"]}  # [Q, d], weights


def retrieval_score(moments, queries, config):
  """`[V, N, d]` moments, the query side -> `[S, V, N]` confidences, as `decode`:
  with the pruned search, Algorithm 1 in every video (-inf outside its node)."""
  cfg = config.clear
  w = queries["fine"]
  q = jnp.broadcast_to(queries["queries"][None], (len(moments), *queries["queries"].shape))
  if cfg.search == "pruned":
    anchors = moments[:, anchor_index(config.data.num_clips, cfg.tree_layers)]
    logits, _ = pruned_logits(w, moments, q, anchors, config.data.num_clips, cfg)
  else:
    logits = fine_logits(w, moments, q)
  scores = jnp.where(jnp.isfinite(logits), jax.nn.sigmoid(logits), -jnp.inf)
  return jnp.swapaxes(scores, 0, 1)


def _check_search(search: str) -> None:
  if search not in SEARCHES:
    raise ValueError(f"clear.search must be one of {SEARCHES}, got {search!r}")


def create(config, info: registry.DataInfo) -> registry.Model:
  anchor_spans(config.data.num_clips, config.clear.tree_layers)  # checks the sizes
  _check_search(config.clear.search)
  if config.clear.loss_reduction not in LOSS_REDUCTIONS:
    raise ValueError(f"clear.loss_reduction must be one of {LOSS_REDUCTIONS}, got "
                     f"{config.clear.loss_reduction!r}")
  if not config.clear.mu < config.clear.rho:
    raise ValueError(f"Algorithm 1 needs clear.mu < clear.rho, got {config.clear.mu} and "
                     f"{config.clear.rho}")
  return common.with_text_encoder(
      config, info, lambda *encoder: CLEAR(config.clear, *encoder))


READINGS = ("paper", "released")


def reading(cfg) -> str:
  """`clear.reading`; "paper" for configs written before it existed (older exports)."""
  return cfg.get("reading", "paper")


def spec_for(config) -> registry.ModelSpec:
  """The paper reading's `SPEC`, or the released code's (`clear_released.SPEC`)."""
  if reading(config.clear) not in READINGS:
    raise ValueError(f"clear.reading must be one of {READINGS}, got "
                     f"{reading(config.clear)!r}")
  return clear_released.SPEC if reading(config.clear) == "released" else SPEC


# Eq. 2 defines the anchors on L units spanning the whole video: every video must be
# resampled to exactly L clips.
SPEC = registry.ModelSpec(
    create=create, loss=loss, decode=decode,
    data={"batch_kind": "video", "short_videos": "stretch", "clip_seconds": 0.0},
    eval_stats=eval_stats,
    retrieval=registry.Retrieval(retrieval_moments, retrieval_queries, retrieval_score))
