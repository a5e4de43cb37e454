"""BiLSTM/BiGRU against torch.nn.LSTM/GRU with transferred weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax.layers.rnn import BiRNN, params_from_torch

torch = pytest.importorskip("torch")


def torch_reference(cell, num_layers, x, lengths, hidden, bidirectional=True):
  torch.manual_seed(0)
  rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
      x.shape[-1], hidden, num_layers=num_layers, bidirectional=bidirectional,
      batch_first=True)
  packed = torch.nn.utils.rnn.pack_padded_sequence(
      torch.tensor(x), torch.tensor(lengths), batch_first=True, enforce_sorted=False)
  with torch.no_grad():
    out, state = rnn(packed)
  out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                  total_length=x.shape[1])
  h_n = state[0] if cell == "lstm" else state
  final = torch.cat([h_n[-2], h_n[-1]], dim=-1) if bidirectional else h_n[-1]
  weights = {k: v.numpy() for k, v in rnn.state_dict().items()}
  return weights, out.numpy(), final.numpy()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, True), (2, True), (2, False)])
def test_matches_torch_on_padded_batch(cell, num_layers, bidirectional):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 7, 5)).astype(np.float32)
  lengths = np.array([7, 4, 1, 6])
  mask = np.arange(7)[None] < lengths[:, None]
  x[~mask] = 99.0  # padding must not leak into any output
  weights, want, want_final = torch_reference(cell, num_layers, x, lengths, 6, bidirectional)
  params = params_from_torch(weights, cell, num_layers, bidirectional)
  model = BiRNN(6, num_layers, cell, bidirectional=bidirectional)
  init = model.init(jax.random.PRNGKey(0), jnp.asarray(x), jnp.asarray(mask))
  assert jax.tree.structure(init["params"]) == jax.tree.structure(params)
  got, final = model.apply({"params": params}, jnp.asarray(x), jnp.asarray(mask))
  assert np.abs(np.asarray(got) - want).max() <= 1e-5
  assert np.abs(np.asarray(final) - want_final).max() <= 1e-5
  assert (np.asarray(got)[~mask] == 0).all()


def test_dropout_between_layers_only_in_training():
  model = BiRNN(4, 2, "gru", dropout=0.5)
  x, mask = jnp.ones((2, 5, 3)), jnp.ones((2, 5), bool)
  params = model.init(jax.random.PRNGKey(0), x, mask)
  a, _ = model.apply(params, x, mask)
  b, _ = model.apply(params, x, mask)
  c, _ = model.apply(params, x, mask, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_unknown_cell():
  with pytest.raises(ValueError, match="cell must be one of"):
    BiRNN(4, cell="rnn").init(jax.random.PRNGKey(0), jnp.ones((1, 2, 3)), jnp.ones((1, 2)))
