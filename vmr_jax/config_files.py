"""`--config` for every command: a config file's path, or one of the installed configs.

`--config=configs/hscnet_tacos.py` loads that file where it exists (relative to the
working directory, or an absolute path), as ml_collections does. Where it does not,
`configs/NAME.py` or `NAME.py` is the file `NAME.py` of the installed `configs`
package, so the commands work from any directory after `pip install .`. A `:ARG`
suffix is passed to `get_config` either way. A file found in neither place is a flag
error that lists the installed configs.
"""

from __future__ import annotations

import os

from absl import flags
from vmr_jax import configs
from ml_collections import config_flags

CONFIGS_DIR = os.path.dirname(os.path.abspath(configs.__file__))


def available() -> list[str]:
  """The config files of the installed `configs` package."""
  return sorted(name for name in os.listdir(CONFIGS_DIR)
                if name.endswith(".py") and name != "__init__.py")


def resolve(value: str) -> str:
  """`PATH[:ARG]` -> the same value with PATH pointing at an existing file."""
  path, colon, arg = value.partition(":")
  if os.path.exists(path):
    return value
  folder, name = os.path.split(os.path.normpath(path))
  packaged = os.path.join(CONFIGS_DIR, name)
  if folder in ("", "configs") and os.path.isfile(packaged):
    return packaged + colon + arg
  raise ValueError(f"no config file {path} (from {os.getcwd()}) and no {name} in the "
                   f"installed configs ({CONFIGS_DIR}); they are: {', '.join(available())}")


class _Resolving(flags.ArgumentParser):
  """ml_collections' config file parser, given the resolved path."""

  def __init__(self, parser: flags.ArgumentParser):
    self._parser = parser

  def parse(self, argument):
    return self._parser.parse(resolve(argument))

  def flag_type(self):
    return self._parser.flag_type()


def DEFINE_config_file(name: str, help_string: str) -> flags.FlagHolder:  # pylint: disable=invalid-name
  """`config_flags.DEFINE_config_file(name, lock_config=True)` (overrides
  `--NAME.field=value` included) whose value goes through `resolve`."""
  holder = config_flags.DEFINE_config_file(name, None, help_string, lock_config=True)
  flags.FLAGS[name].parser = _Resolving(flags.FLAGS[name].parser)
  return holder
