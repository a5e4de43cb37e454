"""Binary codes: sign with a straight-through gradient, and Hamming distances."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sign(x: jnp.ndarray) -> jnp.ndarray:
  """sgn(x) in {-1, +1}, 0 mapping to +1; no gradient."""
  return jax.lax.stop_gradient(jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype))


def sign_ste(x: jnp.ndarray) -> jnp.ndarray:
  """`sign(x)` forward; the identity's gradient backward (straight-through)."""
  return x + jax.lax.stop_gradient(sign(x) - x)


def hamming_distance(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Codes `a [..., N, L]`, `b [..., M, L]` in {-1, +1} -> `[..., N, M]`.

  D = (L - a . b) / 2 (CMHN Eq. 12): the number of differing bits.
  """
  return 0.5 * (a.shape[-1] - jnp.einsum("...nl,...ml->...nm", a, b))
