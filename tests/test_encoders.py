"""The text-encoder registry on the synthetic dataset's own files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines import input_pipeline as ip
from vmr_jax import registry
from vmr_jax.text import bert, encoders

from tests.conftest import TINY_SPEC


@pytest.fixture(scope="module")
def pipeline(tiny_data_dir, tiny_release):
  return ip.Pipeline(ip.DataConfig(
      name="synthetic", builder_config="tiny", data_dir=str(tiny_data_dir), num_clips=16,
      wordpiece_vocab=str(tiny_release / "vocab.txt"), max_wordpiece=16))


def text_config(**overrides):
  config = encoders.default_config()
  config.update(overrides)
  return config


@pytest.mark.parametrize("head,width", [("", TINY_SPEC.glove_dim), ("bilstm", 12),
                                        ("bigru", 12)])
def test_glove_encoder_on_a_batch(pipeline, tiny_release, tmp_path, head, width):
  config = text_config(glove_file=str(tiny_release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt"),
                       head=head, head_hidden=6)
  encoder = encoders.create(config, pipeline.vocab.words, cache_dir=str(tmp_path))
  batch = next(pipeline.eval_iterator("val", batch_size=2))
  tokens, mask = batch[encoder.token_key], batch[encoder.mask_key]
  params = encoder.module.init(jax.random.PRNGKey(0), tokens, mask)
  words, sentence = encoder.module.apply(params, tokens, mask)
  assert words.shape == tokens.shape + (width,) and sentence.shape == tokens.shape[:-1] + (width,)
  table = np.asarray(params["params"]["embedding"]["embedding"])
  vectors = encoders.glove.load_glove(config.glove_file, pipeline.vocab.words, str(tmp_path))
  np.testing.assert_array_equal(table, vectors.vectors)  # initialized from the file


def test_frozen_glove_gets_no_gradient(pipeline, tiny_release):
  for trainable in (False, True):
    config = text_config(glove_file=str(tiny_release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt"),
                         trainable=trainable)
    encoder = encoders.create(config, pipeline.vocab.words)
    tokens = jnp.array([[2, 3, 0]])
    mask = tokens > 0
    params = encoder.module.init(jax.random.PRNGKey(0), tokens, mask)
    grads = jax.grad(lambda p: encoder.module.apply(p, tokens, mask)[1].sum())(params)
    norm = float(jnp.abs(grads["params"]["embedding"]["embedding"]).sum())
    assert (norm > 0) == trainable


def test_glove_vectors_need_a_file_or_random_by_name(tmp_path):
  words = ["<pad>", "<unk>", "door"]
  with pytest.raises(ValueError, match="text.glove_file is empty.*text.vectors=random"):
    encoders.create(text_config(), words)
  with pytest.raises(FileNotFoundError, match="text.glove_file .*nowhere.txt"):
    encoders.create(text_config(glove_file=str(tmp_path / "nowhere.txt")), words)
  with pytest.raises(ValueError, match="text.vectors must be"):
    encoders.create(text_config(vectors="randn"), words)
  encoder = encoders.create(text_config(vectors="random", glove_dim=5), words)
  tokens = jnp.array([[2, 1, 0]])
  params = encoder.module.init(jax.random.PRNGKey(0), tokens, tokens > 0)
  assert params["params"]["embedding"]["embedding"].shape == (3, 5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_bert_encoder_loads_its_checkpoint(pipeline, tmp_path, tiny_release, pooling):
  transformers = pytest.importorskip("transformers")
  pytest.importorskip("torch")
  config = transformers.BertConfig(vocab_size=len(pipeline.wordpiece), hidden_size=16,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=20, max_position_embeddings=32)
  transformers.BertModel(config).save_pretrained(tmp_path)
  encoder = encoders.create(text_config(encoder="bert", bert_dir=str(tmp_path),
                                        pooling=pooling, trainable=True))
  batch = next(pipeline.eval_iterator("val", batch_size=2))
  tokens, mask = batch[encoder.token_key], batch[encoder.mask_key]
  init = encoder.module.init(jax.random.PRNGKey(0), tokens, mask)["params"]
  params = registry.load_pretrained(init, encoder.pretrained)
  words, sentence = encoder.module.apply({"params": params}, tokens, mask)
  assert tokens.ndim == 3  # video-level batch [B, Q, L]: leading axes are kept
  bert_config, bert_params = bert.load_pretrained(str(tmp_path))
  flat_tokens, flat_mask = tokens.reshape(-1, tokens.shape[-1]), mask.reshape(-1, mask.shape[-1])
  hidden, pooled = bert.BertModel(bert_config).apply({"params": bert_params}, flat_tokens,
                                                     flat_mask)
  np.testing.assert_allclose(words.reshape(hidden.shape), hidden, atol=1e-6)
  want = bert.sentence_vector(hidden, pooled, flat_mask, pooling)
  np.testing.assert_allclose(sentence.reshape(want.shape), want, atol=1e-6)


def test_random_bert_base_only_by_name():
  """`vectors="random"` with BERT: BERT-base's shapes (109.5M parameters with the
  pooler), nothing to load, no checkpoint read (shapes only: nothing is computed)."""
  encoder = encoders.create(text_config(encoder="bert", vectors="random", trainable=True))
  assert encoder.pretrained is None and encoder.frozen == ()
  tokens = jax.ShapeDtypeStruct((2, 3, 16), jnp.int32)
  shapes = jax.eval_shape(encoder.module.init, jax.random.PRNGKey(0), tokens,
                          jax.ShapeDtypeStruct((2, 3, 16), bool))
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == 109_482_240
  with pytest.raises(FileNotFoundError, match="config.json is missing"):
    encoders.create(text_config(encoder="bert", bert_dir="/nowhere"))


def test_registry_errors():
  with pytest.raises(ValueError, match="unknown text encoder"):
    encoders.create(text_config(encoder="elmo"))
  with pytest.raises(ValueError, match="vocabulary"):
    encoders.create(text_config(encoder="glove"))
  with pytest.raises(ValueError, match="text.head"):
    encoders.create(text_config(head="transformer"), words=["a"])
