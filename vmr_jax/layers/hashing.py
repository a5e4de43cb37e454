"""Binary codes: sign with a straight-through gradient, the smooth surrogate of sgn of
CMHN's released code, and Hamming distances."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sign(x: jnp.ndarray) -> jnp.ndarray:
  """sgn(x) in {-1, +1}, 0 mapping to +1; no gradient."""
  return jax.lax.stop_gradient(jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype))


def sign_ste(x: jnp.ndarray) -> jnp.ndarray:
  """`sign(x)` forward; the identity's gradient backward (straight-through)."""
  return x + jax.lax.stop_gradient(sign(x) - x)


# The released code's constants: smooth_sign(+-1) = +-1 to 5 digits.
SMOOTH_SIGN_A, SMOOTH_SIGN_B = 3.92155, 1.59362


def smooth_sign(x: jnp.ndarray) -> jnp.ndarray:
  """CMHN's released `hash_function` after its normalization: a differentiable
  stand-in for sgn(x), f(x) = log(1 + a x^2) / (b x + 1e-7), odd in x (up to the
  1e-7), f(+-1) = +-1, |f| largest (1.11) at |x| ~ 2 and falling slowly past it. The
  release applies it to codes scaled to norm sqrt(L), whose entries lie near +-1."""
  return jnp.log1p(SMOOTH_SIGN_A * x * x) / (SMOOTH_SIGN_B * x + 1e-7)


def hamming_distance(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Codes `a [..., N, L]`, `b [..., M, L]` in {-1, +1} -> `[..., N, M]`.

  D = (L - a . b) / 2 (CMHN Eq. 12): the number of differing bits.
  """
  return 0.5 * (a.shape[-1] - jnp.einsum("...nl,...ml->...nm", a, b))


def pack_signs(codes: jnp.ndarray) -> jnp.ndarray:
  """Codes `[..., L]` (their signs: >= 0 is bit 1, as `sign`) -> `[..., ceil(L / 32)]`
  uint32 words, bit j of word w holding code bit 32 w + j (the last word's unused
  bits are 0)."""
  bits = codes >= 0
  length = bits.shape[-1]
  words = -(-length // 32)
  bits = jnp.pad(bits, [(0, 0)] * (bits.ndim - 1) + [(0, 32 * words - length)])
  bits = bits.reshape(*bits.shape[:-1], words, 32).astype(jnp.uint32)
  return jnp.sum(bits << jnp.arange(32, dtype=jnp.uint32), axis=-1, dtype=jnp.uint32)


def packed_hamming_distance(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Packed codes (`pack_signs`) `a [..., W]`, `b [..., W]` (broadcast) -> `[...]`
  int32 differing bits: the popcount of their XOR, summed over the words one word at
  a time (XLA's CPU code vectorizes that along the codes: twice as fast over 10^6
  codes of 2 words as a sum over the trailing axis)."""
  return sum(jax.lax.population_count(a[..., w] ^ b[..., w]).astype(jnp.int32)
             for w in range(a.shape[-1]))
