"""A throwaway model added through the registry alone (`vmr_jax.registry.register`), so
that the per-model tests, which run `registry.variants()`, run it too:

    pytest -p tests.toy_model -k toy    # tests/test_registry.py does

Loaded as a pytest plugin, this module registers itself as model "toy" before the
tests are collected. The model scores every span (i, j) of the clip grid by the inner
product of the span's mean projected clip feature and the query's projected sentence
vector; its loss is the binary cross entropy against the spans' IoU with the ground
truth (`vmr_jax.layers.losses.scaled_iou_bce`). The module is also its own demo
config: `get_config("tiny")`, `get_config("small")`.
"""

import os

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vmr_jax import registry
from vmr_jax.configs import default
from vmr_jax.layers import losses, moment_map
from vmr_jax.models import common

NAME = "toy"
SIZES = {"tiny": {"toy.hidden": 8, "data.max_queries": 4, "data.eval_max_queries": 0,
                  "eval.top_k": 10},
         "small": {"toy.hidden": 8, "data.num_clips": 16}}


def get_config(arg: str = ""):
  size, _ = default.parse_arg(arg)
  config = default.get_config()
  default.use_synthetic(config)
  config.model = NAME
  config.data.batch_kind = "video"
  config.data.max_queries = 8
  config.data.eval_max_queries = 8
  config.toy = ml_collections.ConfigDict({"hidden": 32})
  default.shrink(config, size, "", SIZES)
  return config


class Toy(common.TextVideoModule):
  """-> {"logits": [B, Q, M] span scores, "valid": [B, M] spans within the video}."""

  @nn.compact
  def __call__(self, batch, *, train: bool = False):
    _, sentences = self.encode_text(batch, train=train)  # [B, Q, D]
    queries = nn.Dense(self.config.hidden, name="query")(sentences)
    mask = batch["video_mask"]
    clips = nn.Dense(self.config.hidden, name="video")(batch["video_feats"])
    clips = jnp.where(mask[..., None], clips, 0.0)  # [B, T, H]
    sums = jnp.pad(jnp.cumsum(clips, axis=1), ((0, 0), (1, 0), (0, 0)))  # [B, T + 1, H]
    spans = moment_map.dense_spans(mask.shape[1])  # [M, 2] inclusive
    lengths = jnp.asarray(spans[:, 1] - spans[:, 0] + 1, clips.dtype)
    means = (sums[:, spans[:, 1] + 1] - sums[:, spans[:, 0]]) / lengths[None, :, None]
    return {"logits": jnp.einsum("bmh,bqh->bqm", means, queries),
            "valid": spans[None, :, 1] < mask.sum(-1)[:, None]}


def create(config, info: registry.DataInfo) -> registry.Model:
  return common.with_text_encoder(config, info, lambda encoder, tokens, mask: Toy(
      config.toy, encoder, tokens, mask))


def _times(batch):
  """`[B, M, 2]` seconds of the grid's spans."""
  return common.inclusive_spans_to_times(moment_map.dense_spans(batch["video_mask"].shape[1]),
                                         batch)


def loss(outputs, batch, config):
  del config
  iou = common.target_iou(_times(batch), batch)  # [B, M, Q]
  bce = losses.scaled_iou_bce(outputs["logits"], jnp.swapaxes(iou, 1, 2))
  real = batch["query_valid"] & batch["example_valid"][:, None]
  value = losses.masked_average(bce, real[..., None] & outputs["valid"][:, None])
  return value, {"bce": value}


def decode(outputs, batch, config):
  scores = jnp.where(outputs["valid"][:, None], outputs["logits"].astype(jnp.float32),
                     -jnp.inf)
  return common.top_moments(scores, _times(batch), config.eval.top_k)


SPEC = registry.ModelSpec(create=create, loss=loss, decode=decode,
                          data={"batch_kind": "video"})
registry.register(NAME, model=__name__, config=__name__)
os.environ["VMR_JAX_TEST_MODELS"] = __name__  # tests.models.EXTRA_MODELS: subprocesses too
