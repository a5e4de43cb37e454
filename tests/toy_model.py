"""A throwaway model added through the registry alone (`vmr_jax.registry.register`), so
that the per-model tests, which run `registry.variants()`, run it too:

    pytest -p tests.toy_model -k toy    # tests/test_registry.py does

Loaded as a pytest plugin, this module registers itself as model "toy" before the
tests are collected. The model scores every span (i, j) of the clip grid by the inner
product of the span's mean projected clip feature and the query's projected sentence
vector (`tests.span_scorer`); its loss is the binary cross entropy against the spans' IoU with the ground
truth (`vmr_jax.layers.losses.scaled_iou_bce`). The module is also its own demo
config: `get_config("tiny")`, `get_config("small")`.
"""

import os

import jax.numpy as jnp
import ml_collections

from vmr_jax import registry
from vmr_jax.configs import default
from vmr_jax.layers import losses
from vmr_jax.models import common
from tests import span_scorer

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


def create(config, info: registry.DataInfo) -> registry.Model:
  return common.with_text_encoder(config, info, lambda encoder, tokens, mask: span_scorer.SpanScorer(
      config.toy, encoder, tokens, mask))


def loss(outputs, batch, config):
  del config
  iou = common.target_iou(span_scorer.span_times(batch), batch)  # [B, M, Q]
  bce = losses.scaled_iou_bce(outputs["logits"], jnp.swapaxes(iou, 1, 2))
  real = batch["query_valid"] & batch["example_valid"][:, None]
  value = losses.masked_average(bce, real[..., None] & outputs["valid"][:, None])
  return value, {"bce": value}


SPEC = registry.ModelSpec(create=create, loss=loss, decode=span_scorer.decode,
                          data={"batch_kind": "video"})
registry.register(NAME, model=__name__, config=__name__)
os.environ["VMR_JAX_TEST_MODELS"] = __name__  # tests.models.EXTRA_MODELS: subprocesses too
