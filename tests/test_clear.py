import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vmr_jax import evaluate, metrics, registry, sharding
from vmr_jax.layers import moment_map
from vmr_jax.models import clear
from vmr_jax.train import setup

from tests.models import overfit_one_batch, tiny_config

L, P = 16, 4  # the tiny config's units and tree layers


@pytest.fixture(scope="module")
def run(tiny_data_dir, tiny_release):
  return setup(tiny_config("clear/paper", tiny_data_dir, tiny_release))


def batch_of(run):
  return sharding.numeric(next(run.pipeline.eval_iterator("train", 8)))


def test_anchors_and_tree_nodes_for_8_units_and_4_layers():
  # Eq. 2, 1-indexed: c(1,8); c(1,7), c(8,8); c(1,6), c(7,7); c(1,5), c(6,6).
  assert clear.anchor_spans(8, 4).tolist() == [[0, 7], [0, 6], [7, 7], [0, 5], [6, 6],
                                               [0, 4], [5, 5]]
  spans = [tuple(s) for s in moment_map.dense_spans(8).tolist()]
  nodes = {name: sorted(s for s, inside in zip(spans, mask) if inside)
           for name, mask in zip(clear.node_names(4), clear.tree_nodes(8, 4))}
  ending_by = lambda e: sorted((i, j) for j in range(e + 1) for i in range(j + 1))
  assert nodes == {
      "root": sorted(spans),
      "left1": ending_by(6), "right1": [(7, 7)], "between1": [(i, 7) for i in range(7)],
      "left2": ending_by(5), "right2": [(6, 6)], "between2": [(i, 6) for i in range(6)],
      "left3": ending_by(4), "right3": [(5, 5)], "between3": [(i, 5) for i in range(5)],
  }
  assert len(nodes["left1"]) == 28 and len(nodes["left3"]) == 15


def test_tree_sizes_are_checked():
  with pytest.raises(ValueError, match="4-layer semantic tree needs"):
    clear.anchor_spans(3, 4)


# Inner products with the anchors [root, left1, right1, left2, right2, left3, right3]
# and the node Algorithm 1 (our reading; mu = 0.015, rho = 0.02) must choose.
SEARCH_TABLE = [
    ([1.0, 0.9, 0.2, 0, 0, 0, 0], "root"),  # no child beats the root
    ([0.5, 0.4, 0.9, 0, 0, 0, 0], "right1"),  # eta = 1.25 > rho
    ([0.5, 1.0, 1.018, 0, 0, 0, 0], "between1"),  # mu < eta = 0.018 <= rho
    ([0.5, 0.6, 0.1, 0.55, 0.2, 0, 0], "left1"),  # descends once, then stops
    ([0.5, 0.6, 0.1, 0.7, 0.9, 0, 0], "right2"),  # eta = 0.29 at layer 2
    ([0.5, 0.6, 0.1, 0.7, 0.1, 0.8, 0.1], "left3"),  # descends to the last layer
    ([0.5, 0.6, 0.1, 0.7, 0.1, 0.8, 0.813], "between3"),  # eta = 0.01625
    ([0.1, -0.2, 0.3, 0, 0, 0, 0], "right1"),  # a negative y: eta = 0.5 / |y|
]


@pytest.mark.parametrize("similarity,node", SEARCH_TABLE)
def test_pruned_search_picks_the_node_of_the_reading(similarity, node):
  got = clear.tree_search(jnp.array(similarity, jnp.float32), 4, 0.015, 0.02)
  assert clear.node_names(4)[int(got)] == node


def test_search_with_perfect_similarities_keeps_the_target_in_the_chosen_node():
  """With s = IoU(anchor, target) and thresholds that never force a leaf (mu = 0,
  rho = 1e6), the walk ends at a node containing the target, for every target."""
  spans = moment_map.dense_spans(8)
  anchors = clear.anchor_spans(8, 4) + [0, 1]
  iou = metrics.temporal_iou(anchors[None, :, :].astype(float),
                             (spans + [0, 1])[:, None, :].astype(float))  # [N, R]
  node = np.asarray(clear.tree_search(jnp.asarray(iou, jnp.float32), 4, 0.0, 1e6))
  inside = clear.tree_nodes(8, 4)[node, np.arange(len(spans))]
  assert inside.all()
  assert len(set(node.tolist())) > 5  # the walk does go to different nodes


def test_shapes(run, clear_config):
  batch = batch_of(run)
  out = run.model.module.apply({"params": run.state.params}, batch)
  n = moment_map.num_spans(L)
  assert out["fine_logits"].shape == (8, 4, n)
  assert out["anchors"].shape == (8, 2 * P - 1, 16) and out["queries"].shape == (8, 4, 16)
  assert clear.decode(out, batch, clear_config).shape == (8, 4, 10, 3)


def numpy_losses(anchors, queries, logits, times, gts, query_valid, d, reduction):
  """Gamma_1 (Eq. 5) and Phi_k (Eq. 7, the negated sum) for one video; with "mean",
  Gamma_1 / d^2 R M and Phi_k / M."""
  queries, gts, logits = queries[query_valid], gts[query_valid], logits[query_valid]
  anchor_times = times[clear.anchor_index(L, P)]
  m = np.array([[metrics.temporal_iou(a, g) for g in gts] for a in anchor_times])
  gamma1 = np.sum((anchors @ queries.T - d * m) ** 2)
  o = np.array([[metrics.temporal_iou(c, g) for c in times] for g in gts])  # [M, A]
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  phi = np.sum(np.mean(-(o * np.log(p) + (1 - o) * np.log(1 - p)), axis=1))
  if reduction == "mean":
    return gamma1 / (d ** 2 * m.size), phi / len(gts)
  return gamma1, phi


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_losses_match_numpy_transcription(run, clear_config, reduction):
  clear_config.clear.loss_reduction = reduction
  batch = batch_of(run)
  batch["query_valid"][1, 2:] = False  # a video with fewer queries
  rng = np.random.default_rng(0)
  n = moment_map.num_spans(L)
  outputs = {"anchors": rng.normal(size=(8, 2 * P - 1, 16)).astype(np.float32),
             "queries": rng.normal(size=(8, 4, 16)).astype(np.float32),
             "fine_logits": rng.normal(size=(8, 4, n)).astype(np.float32)}
  total, terms = clear.loss(outputs, batch, clear_config)
  spans = (moment_map.dense_spans(L) + [0, 1]).astype(float)
  want = np.zeros(2)
  for b in range(8):
    times = spans * batch["duration"][b] / L
    want += numpy_losses(outputs["anchors"][b], outputs["queries"][b],
                         outputs["fine_logits"][b], times, batch["gt_times"][b],
                         batch["query_valid"][b], 16, reduction)
  want /= 8
  assert float(terms["gamma1"]) == pytest.approx(want[0], rel=1e-4)
  assert float(terms["gamma2"]) == pytest.approx(want[1], rel=1e-4)
  assert float(total) == pytest.approx(want.sum(), rel=1e-4)  # alpha = 1


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_pruned_search_scores_only_the_chosen_nodes(chunk):
  """Algorithm 1's logits = the whole map's logits inside each query's node and -inf
  outside it, whatever the chunk of the whole-map loop; decode ranks those alone."""
  rng = np.random.default_rng(1)
  n, d = moment_map.num_spans(L), 6
  moments = jnp.asarray(rng.normal(size=(3, n, d)), jnp.float32)
  queries = jnp.asarray(rng.normal(size=(3, 5, d)), jnp.float32)
  anchors = moments[:, clear.anchor_index(L, P)]
  w = {"fuse_kernel": jnp.asarray(rng.normal(size=(d, 4)), jnp.float32),
       "fuse_bias": jnp.zeros(4), "confidence_bias": jnp.ones(1),
       "confidence_kernel": jnp.asarray(rng.normal(size=(4, 1)), jnp.float32)}
  config = ml_collections.ConfigDict({
      "clear": {"tree_layers": P, "mu": -0.5, "rho": 2.0, "search_chunk": chunk},
      "data": {"num_clips": L}, "eval": {"top_k": 40}})
  logits, node = clear.pruned_logits(w, moments, queries, anchors, L, config.clear)
  kinds = {clear.node_names(P)[k][:4] for k in np.asarray(node).ravel()}
  assert len(kinds) >= 2, kinds  # whole-map and gathered nodes both taken
  in_node = clear.tree_nodes(L, P)[np.asarray(node)]
  full = np.asarray(clear.fine_logits(w, moments, queries))
  np.testing.assert_allclose(np.asarray(logits), np.where(in_node, full, -np.inf),
                             rtol=1e-5, atol=1e-5)
  batch = {"video_mask": np.ones((3, L), bool), "duration": np.full(3, 32.0, np.float32)}
  ranked = np.asarray(clear.decode({"fine_logits": logits}, batch, config))
  assert (np.isfinite(ranked[..., 2]).sum(-1) == np.minimum(in_node.sum(-1), 40)).all()


def test_overfits_one_batch(clear_config):
  """200 Adam steps on one batch: the loss halves and the batch's own moments are
  found (R@1,IoU=0.5 >= 0.6 with the pruned search)."""
  clear_config.clear.hidden = 32
  clear_config.clear.dim = 32
  losses, recall = overfit_one_batch(clear_config, 200, 3e-3)
  assert losses[-1] < losses[0] / 2
  assert recall >= 0.6


def test_config_checks(clear_config, tiny_data_dir):
  assert registry.get("clear") is clear.SPEC
  clear_config.clear.rho = 0.01
  with pytest.raises(ValueError, match="mu < clear.rho"):
    setup(clear_config)
  clear_config.clear.rho = 0.02
  clear_config.data.short_videos = "pad"
  with pytest.raises(ValueError, match="short_videos='stretch'"):
    setup(clear_config)
  clear_config.data.short_videos = "stretch"
  clear_config.data.clip_seconds = 1.0  # Eq. 2's anchors need every video at L clips
  with pytest.raises(ValueError, match="clip_seconds=0.0"):
    setup(clear_config)


def brute_force_recall(in_node, scores, times, gts, n, threshold, nms_threshold):
  """R@n,IoU=m over each query's candidates in its node alone (the pruned search's),
  written without vmr_jax: rank by score, greedy NMS (suppress IoU > nms_threshold),
  a hit if one of the first n kept reaches IoU `threshold` with the ground truth."""
  def iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0
  hits = []
  for inside, score, spans, gt in zip(in_node, scores, times, gts):
    ranked = [spans[i] for i in sorted(np.flatnonzero(inside), key=lambda i: -score[i])]
    kept = []
    for span in ranked:
      if all(iou(span, k) <= nms_threshold for k in kept):
        kept.append(span)
    hits.append(any(iou(span, gt) >= threshold for span in kept[:n]))
  return float(np.mean(hits))


def test_evaluation_of_the_pruned_search_ranks_its_node_alone(tmp_path):
  """Guards evaluation's filter of non-finite scores (`evaluate.prediction_records`):
  the pruned search scores only its node's candidates, -inf elsewhere, and a node
  smaller than `eval.top_k` (a right leaf holds one candidate) fills the decode's rows
  with -inf ones. Each such query's ground truth is its first -inf row's span, so
  counting those rows as moments would hit at R@5 (and write -Infinity scores):
  R@n equals a brute-force computation over the nodes' candidates alone, and every
  written score is finite."""
  rng = np.random.default_rng(0)
  names = clear.node_names(P)
  nodes = np.array([[names.index(k) for k in row] for row in (
      ("right1", "between1", "root", "right3", "left2"),
      ("right2", "between3", "right1", "left3", "between2"))])  # [B, Q]
  in_node = clear.tree_nodes(L, P)[nodes]  # [B, Q, N]
  full = rng.normal(size=in_node.shape).astype(np.float32)
  logits = np.where(in_node, full, -np.inf).astype(np.float32)
  b, q = nodes.shape
  config = ml_collections.ConfigDict({"data": {"num_clips": L}, "eval": {"top_k": 10}})
  duration = np.array([32.0, 50.0], np.float32)
  batch = {"video_mask": np.ones((b, L), bool), "duration": duration}
  ranked = np.asarray(clear.decode({"fine_logits": jnp.asarray(logits)}, batch, config))
  times = np.asarray(clear._candidates(batch, config))  # [B, N, 2]
  gts = np.zeros((b, q, 2), np.float32)
  for i, j in np.ndindex(b, q):
    outside = ranked[i, j][~np.isfinite(ranked[i, j, :, 2])]
    gts[i, j] = outside[0, :2] if len(outside) else times[i, rng.integers(times.shape[1])]
  small = in_node.sum(-1) < config.eval.top_k  # the four right leaves
  assert small.sum() == 4
  np.testing.assert_array_equal((~np.isfinite(ranked[..., 2])).any(-1), small)
  batch.update({
      "video_id": np.array([b"v0", b"v1"]), "query_index": np.tile(np.arange(q), (b, 1)),
      "sentence": np.full((b, q), b"s"), "gt_times": gts,
      "query_valid": np.ones((b, q), bool), "example_valid": np.ones(b, bool)})
  records = evaluate.prediction_records(batch, ranked, 0.5, 5)
  assert all(np.isfinite(score) for r in records for _, _, score in r["pred"])
  result = evaluate.metrics_of_records(records, (1, 5), (0.3, 0.5, 0.7))
  scores = 1 / (1 + np.exp(-full))
  for n in (1, 5):
    for m in (0.3, 0.5, 0.7):
      want = brute_force_recall(in_node.reshape(b * q, -1), scores.reshape(b * q, -1),
                                np.repeat(times, q, axis=0), gts.reshape(-1, 2), n, m, 0.5)
      assert result[f"R@{n},IoU={m}"] == pytest.approx(want, abs=1e-9), (n, m)
  evaluate.write(str(tmp_path), "test", result, records)
  for name in ("test_predictions.jsonl", "test_submission.jsonl"):
    assert "Infinity" not in (tmp_path / "eval" / name).read_text()
