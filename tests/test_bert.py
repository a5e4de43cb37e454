"""Flax BERT loaded from transformers checkpoints, against transformers' PyTorch."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax.text import bert
from data_pipelines.wordpiece import WordPieceTokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=40)


def save_random_bert(directory, model_class=None, **overrides):
  torch.manual_seed(0)
  config = transformers.BertConfig(**{**TINY, **overrides})
  model = (model_class or transformers.BertModel)(config).eval()
  model.save_pretrained(directory)
  return model


def padded_batch():
  rng = np.random.default_rng(0)
  ids = rng.integers(1, TINY["vocab_size"], size=(3, 11))
  mask = np.ones_like(ids, dtype=bool)
  mask[1, 7:] = False
  mask[2, 3:] = False
  ids[~mask] = 0
  return ids, mask


def torch_outputs(model, ids, mask):
  with torch.no_grad():
    out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)))
  return out.last_hidden_state.numpy(), out.pooler_output.numpy()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  directory = tmp_path_factory.mktemp("bert")
  model = save_random_bert(directory)
  return directory, model


def test_parity_with_transformers(checkpoint):
  directory, model = checkpoint
  config, params = bert.load_pretrained(str(directory))
  assert config.hidden_size == 32 and config.num_hidden_layers == 2
  ids, mask = padded_batch()
  hidden, pooled = bert.BertModel(config).apply({"params": params}, jnp.asarray(ids),
                                                jnp.asarray(mask))
  want_hidden, want_pooled = torch_outputs(model, ids, mask)
  assert np.abs(np.asarray(hidden) - want_hidden).max() <= 1e-5
  assert np.abs(np.asarray(pooled) - want_pooled).max() <= 1e-5


def test_params_tree_matches_module_init(checkpoint):
  config, params = bert.load_pretrained(str(checkpoint[0]))
  init = bert.BertModel(config).init(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32),
                                     jnp.ones((1, 4), bool))["params"]
  assert jax.tree.map(np.shape, init) == jax.tree.map(np.shape, params)


def test_pretraining_checkpoint_and_pytorch_bin(tmp_path):
  """`BertForPreTraining` (bert. prefix, cls.* heads) saved as pytorch_model.bin."""
  model = save_random_bert(tmp_path, transformers.BertForPreTraining)
  state = model.state_dict()
  for f in tmp_path.glob("model*.safetensors*"):
    f.unlink()
  torch.save(state, tmp_path / "pytorch_model.bin")
  config, params = bert.load_pretrained(str(tmp_path))
  ids, mask = padded_batch()
  hidden, _ = bert.BertModel(config).apply({"params": params}, jnp.asarray(ids),
                                           jnp.asarray(mask))
  want, _ = torch_outputs(model.bert, ids, mask)
  assert np.abs(np.asarray(hidden) - want).max() <= 1e-5


def test_dropout_off_in_eval_on_in_training(checkpoint):
  config, params = bert.load_pretrained(str(checkpoint[0]))
  ids, mask = map(jnp.asarray, padded_batch())
  module = bert.BertModel(config)
  a, _ = module.apply({"params": params}, ids, mask)
  b, _ = module.apply({"params": params}, ids, mask, train=True,
                      rngs={"dropout": jax.random.PRNGKey(0)})
  assert not np.allclose(a, b)


@pytest.mark.parametrize("pooling", bert.POOLINGS)
def test_sentence_vector(pooling):
  hidden = jnp.arange(24, dtype=jnp.float32).reshape(2, 3, 4)
  pooled = -jnp.ones((2, 4))
  mask = jnp.array([[1, 1, 0], [1, 0, 0]], bool)
  got = bert.sentence_vector(hidden, pooled, mask, pooling)
  want = {"cls": hidden[:, 0], "pooled": pooled,
          "mean": jnp.stack([hidden[0, :2].mean(0), hidden[1, 0]])}[pooling]
  np.testing.assert_allclose(got, want)
  with pytest.raises(ValueError, match="pooling"):
    bert.sentence_vector(hidden, pooled, mask, "max")


def test_incomplete_or_mismatched_checkpoints(checkpoint, tmp_path):
  directory = checkpoint[0]
  with pytest.raises(FileNotFoundError, match=f"{tmp_path}: config.json is missing"):
    bert.load_pretrained(str(tmp_path))
  shutil.copy(directory / "config.json", tmp_path / "config.json")
  with pytest.raises(FileNotFoundError, match="no weights"):
    bert.load_pretrained(str(tmp_path))
  shutil.copy(directory / "model.safetensors", tmp_path / "model.safetensors")
  raw = json.loads((tmp_path / "config.json").read_text())
  (tmp_path / "config.json").write_text(json.dumps({**raw, "num_hidden_layers": 3}))
  with pytest.raises(ValueError, match=r"missing: \['encoder.layer.2"):
    bert.load_pretrained(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({**raw, "intermediate_size": 50}))
  with pytest.raises(ValueError, match="intermediate.dense.weight has shape"):
    bert.load_pretrained(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({**raw, "model_type": "roberta"}))
  with pytest.raises(ValueError, match="model_type"):
    bert.load_pretrained(str(tmp_path))


def test_tokenizer_from_checkpoint_dir(tmp_path, tiny_release):
  with pytest.raises(FileNotFoundError, match="vocab.txt is missing"):
    WordPieceTokenizer.from_bert_dir(str(tmp_path))
  shutil.copy(tiny_release / "vocab.txt", tmp_path / "vocab.txt")
  tokenizer = WordPieceTokenizer.from_bert_dir(str(tmp_path), vocab_size=TINY["vocab_size"])
  ids, mask = tokenizer.encode(["The person opens the doors.", "zz"], 10)
  tokens = tokenizer._tokenizer.convert_ids_to_tokens(ids[0][mask[0]].tolist())
  assert tokens == ["[CLS]", "the", "person", "opens", "the", "door", "##s", ".", "[SEP]"]
  assert ids.shape == (2, 10) and (ids[~mask] == tokenizer.pad_id).all()
  with pytest.raises(ValueError, match="vocab_size 50"):
    WordPieceTokenizer.from_bert_dir(str(tmp_path), vocab_size=50)
