"""Several processes, one device mesh: `jax.distributed` from the command line.

`initialize(coordinator_address, num_processes, process_id)` starts JAX's
multi-controller runtime before anything touches a device, from (in this order) the
arguments (`--coordinator_address`, `--num_processes`, `--process_id`), the
environment variables JAX documents (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
`JAX_PROCESS_ID`), and what JAX detects of the cluster (Cloud TPU, Slurm, Open MPI,
Kubernetes) for whatever is still unset. On CPUs the processes' collectives use gloo
(JAX's default); each process has `JAX_NUM_CPU_DEVICES` devices. A bad or missing
setting is one line naming what was given (`DistributedError`); a process other
than 0 first waits up to `timeout_s` for the coordinator's port to open and says so
if it never does. One thing cannot be caught: when not every process connects within
`timeout_s`, JAX's runtime aborts the process (`DEADLINE_EXCEEDED ... RegisterTask`);
the line printed before connecting says what it waited for.

After it, `jax.devices()` are every process's devices: the trainer's mesh spans them
all, each process feeds its rows of every global batch, host-side results travel
between processes as JSON (`gather_json`: evaluation's records, the Predictor's
candidates), and files are written by process 0 (`is_main`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import jax
import numpy as np

ENV = {"coordinator_address": "JAX_COORDINATOR_ADDRESS",
       "num_processes": "JAX_NUM_PROCESSES", "process_id": "JAX_PROCESS_ID"}


class DistributedError(RuntimeError):
  pass


def requested(coordinator_address: str | None = None, num_processes: int | None = None,
              process_id: int | None = None) -> dict[str, str | int | None]:
  """The settings given as arguments or in the environment (None where neither)."""
  given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
           "process_id": process_id}
  for name, variable in ENV.items():
    if given[name] is None and os.environ.get(variable):
      value = os.environ[variable]
      if name != "coordinator_address":
        try:
          value = int(value)
        except ValueError:
          raise DistributedError(f"{variable}={value!r} is not an integer") from None
      given[name] = value
  return given


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, detect: bool = False,
               timeout_s: int = 300) -> bool:
  """Starts `jax.distributed` when any setting is given (or `detect`: from the
  cluster alone); returns whether it did. `timeout_s`: how long process 0 waits for
  the others to connect."""
  given = requested(coordinator_address, num_processes, process_id)
  if not detect and all(v is None for v in given.values()):
    return False
  if given["num_processes"] is not None and given["num_processes"] < 1:
    raise DistributedError(f"num_processes must be >= 1, got {given['num_processes']}")
  address, count, index = (given[k] for k in ENV)
  if address and index:
    _wait_for_port(address, timeout_s)
  if address and count:
    print(f"connecting to the coordinator {address} as process {index} of {count} "
          f"(waiting up to {timeout_s} s for all {count})", file=sys.stderr, flush=True)
  try:
    jax.distributed.initialize(**given, initialization_timeout=timeout_s)
  except (ValueError, TypeError, RuntimeError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    shown = ", ".join(f"{k}={v}" for k, v in given.items() if v is not None) or "nothing"
    raise DistributedError(
        f"jax.distributed.initialize failed ({first}); given {shown}: set "
        "--coordinator_address=HOST:PORT, --num_processes and --process_id (or "
        f"{', '.join(ENV.values())}) on every process, or run where JAX detects the "
        "cluster (Cloud TPU, Slurm, Open MPI, Kubernetes)") from None
  return True


def _wait_for_port(address: str, timeout_s: float) -> None:
  host, _, port = address.rpartition(":")
  if not port.isdigit():
    raise DistributedError(f"coordinator_address {address!r} is not HOST:PORT")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
      return
    except OSError:
      if time.monotonic() > deadline:
        raise DistributedError(f"no coordinator at {address} after {timeout_s} s: start "
                               "process 0 there (--process_id=0)") from None
      time.sleep(0.2)


def is_main() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def warn(message: str) -> None:
  """Prints `warning: message` on stderr, on process 0 (every process says the same)."""
  if is_main():
    print(f"warning: {message}", file=sys.stderr, flush=True)


def barrier(name: str) -> None:
  """Waits for every process (no-op with one)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def gather_json(value) -> list:
  """Every process's `value` (anything JSON holds exactly: records, lists of
  numbers), in process order, on every process; `[value]` with one process."""
  if jax.process_count() == 1:
    return [value]
  from jax.experimental import multihost_utils
  data = np.frombuffer(json.dumps(value).encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.array([data.size]))).reshape(-1)
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[:data.size] = data
  parts = np.asarray(multihost_utils.process_allgather(padded))
  return [json.loads(parts[i, :size].tobytes()) for i, size in enumerate(sizes)]
