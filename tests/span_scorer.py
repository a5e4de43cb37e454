"""What the two test models (`tests/toy_model.py`, `tests/event_model.py`) share: a
module that scores every span (i, j) of the clip grid by the inner product of its
pooled projected clips and the query's projected sentence vector, and the decode of
those scores. Registers nothing."""

import flax.linen as nn
import jax.numpy as jnp

from vmr_jax.layers import moment_map
from vmr_jax.models import common


class SpanScorer(common.TextVideoModule):
  """-> {"logits": [B, Q, M] span scores, "valid": [B, M] spans within the video}.

  `config.pooling`: "mean" (the span's mean clip) or "sum" (its sum: a span grows
  with every clip pointing along the query); `config.bias`: the projections' biases."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    _, sentences = self.encode_text(batch, train=train)  # [B, Q, D]
    bias = self.config.get("bias", True)
    queries = nn.Dense(self.config.hidden, use_bias=bias, name="query")(sentences)
    mask = batch["video_mask"]
    clips = nn.Dense(self.config.hidden, use_bias=bias, name="video")(batch["video_feats"])
    clips = jnp.where(mask[..., None], clips, 0.0)  # [B, T, H]
    sums = jnp.pad(jnp.cumsum(clips, axis=1), ((0, 0), (1, 0), (0, 0)))  # [B, T + 1, H]
    spans = moment_map.dense_spans(mask.shape[1])  # [M, 2] inclusive
    pooled = sums[:, spans[:, 1] + 1] - sums[:, spans[:, 0]]  # [B, M, H]
    if self.config.get("pooling", "mean") == "mean":
      pooled = pooled / jnp.asarray(spans[:, 1] - spans[:, 0] + 1, clips.dtype)[None, :, None]
    return {"logits": jnp.einsum("bmh,bqh->bqm", pooled, queries),
            "valid": spans[None, :, 1] < mask.sum(-1)[:, None]}


def span_times(batch):
  """`[B, M, 2]` seconds of the grid's spans."""
  return common.inclusive_spans_to_times(moment_map.dense_spans(batch["video_mask"].shape[1]),
                                         batch)


def decode(outputs, batch, config):
  scores = jnp.where(outputs["valid"][:, None], outputs["logits"].astype(jnp.float32),
                     -jnp.inf)
  return common.top_moments(scores, span_times(batch), config.eval.top_k)
