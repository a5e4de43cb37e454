"""Data parallelism over a 1-D device mesh (`jax.sharding`, not pmap).

Batches are split along their leading axis over the mesh axis `data`; parameters and
optimizer state are replicated. Each process feeds its own share of the global batch
(`host_to_global`), so the same code runs on one CPU, N local devices or many hosts.
"""

from __future__ import annotations

from typing import Mapping

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """The 1-D `data` mesh over `devices` (default: every process's, `jax.devices()`)."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """The per-process batch size; the global one must split over every device."""
  if global_batch_size % mesh.devices.size:
    raise ValueError(f"batch size {global_batch_size} does not split over "
                     f"{mesh.devices.size} devices")
  return global_batch_size // jax.process_count()


def numeric(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The arrays a device can hold: strings (video ids, sentences) stay on the host."""
  return {k: v for k, v in batch.items() if v.dtype.kind in "biuf"}


def host_to_global(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows of the batch -> global arrays sharded over `data`."""
  sharding = data_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in numeric(batch).items()}


def global_to_host(tree):
  """Global (data-sharded) outputs -> numpy arrays of the whole batch, every process."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return multihost_utils.process_allgather(tree, tiled=True)
