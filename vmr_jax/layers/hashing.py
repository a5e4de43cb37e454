"""Binary codes: sign with a straight-through gradient, and Hamming distances."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sign_ste(x: jnp.ndarray) -> jnp.ndarray:
  """sgn(x) in {-1, +1} (0 maps to +1) forward; the identity's gradient backward."""
  hard = jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)
  return x + jax.lax.stop_gradient(hard - x)


def hamming_distance(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Codes `a [..., N, L]`, `b [..., M, L]` in {-1, +1} -> `[..., N, M]`.

  D = (L - a . b) / 2 (CMHN Eq. 12): the number of differing bits.
  """
  return 0.5 * (a.shape[-1] - jnp.einsum("...nl,...ml->...nm", a, b))
