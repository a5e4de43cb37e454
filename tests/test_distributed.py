"""`vmr_jax.distributed`'s settings: flags before JAX's environment variables, nothing
started without either, one-line errors; `gather_json` with one process. (Several
processes for real: tests/test_multiprocess.py.)"""

import pytest

from tests.cli import free_port
from vmr_jax import distributed


def test_flags_before_the_environment(monkeypatch):
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
  monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
  monkeypatch.setenv("JAX_PROCESS_ID", "3")
  assert distributed.requested() == {"coordinator_address": "10.0.0.1:1234",
                                     "num_processes": 4, "process_id": 3}
  assert distributed.requested("h:1", 2, 0) == {"coordinator_address": "h:1",
                                                "num_processes": 2, "process_id": 0}


def test_nothing_given_starts_nothing(monkeypatch):
  for variable in distributed.ENV.values():
    monkeypatch.delenv(variable, raising=False)
  assert distributed.initialize() is False


def test_bad_settings_are_one_line(monkeypatch):
  monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
  with pytest.raises(distributed.DistributedError, match="JAX_NUM_PROCESSES='two' is not"):
    distributed.requested()
  monkeypatch.delenv("JAX_NUM_PROCESSES")
  with pytest.raises(distributed.DistributedError, match="num_processes must be >= 1"):
    distributed.initialize("127.0.0.1:1", 0, 0)
  with pytest.raises(distributed.DistributedError, match="not HOST:PORT"):
    distributed.initialize("nowhere", 2, 1)
  port = free_port()  # nothing listens there
  with pytest.raises(distributed.DistributedError,
                     match=f"no coordinator at 127.0.0.1:{port} after 1 s"):
    distributed.initialize(f"127.0.0.1:{port}", 2, 1, timeout_s=1)


def test_gather_json_in_one_process():
  assert distributed.gather_json({"a": [1.5, None]}) == [{"a": [1.5, None]}]
