"""`--config` for every command: a config file's path, or one of the installed configs.

`--config=configs/hscnet_tacos.py` loads that file where it exists (relative to the
working directory, or an absolute path), as ml_collections does. Where it does not,
`configs/NAME.py` or `NAME.py` is the file `NAME.py` of the installed `configs`
package, so the commands work from any directory after `pip install .`. A `:ARG`
suffix is passed to `get_config` either way. A file found in neither place is a flag
error that lists the installed configs. An override `--NAME.field=value` of a field
the config lacks is a one-line flag error naming the closest field (`unknown_field`).
"""

from __future__ import annotations

import difflib
import os

from absl import flags
from ml_collections import config_dict, config_flags

from vmr_jax import configs

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


def unknown_field(config: config_dict.ConfigDict, path: str) -> str | None:
  """The error of an override of the dotted field `path` (e.g. "train.num_stepz")
  where `config` lacks it: `path` with its first unknown part replaced by the closest
  field of its section, or else that section's fields; None where `config` has it."""
  holder, parts = config, path.split(".")
  for depth, part in enumerate(parts):
    section = ".".join(parts[:depth])
    if not isinstance(holder, config_dict.ConfigDict):
      return f"unknown config field {path}: {section} = {holder!r} has no fields"
    fields = [str(key) for key in holder.keys()]
    if part not in fields:
      close = difflib.get_close_matches(part, fields, n=1)
      hint = (f"did you mean {'.'.join([*parts[:depth], close[0], *parts[depth + 1:]])}?"
              if close else
              f"the fields of {section or 'the config'} are {', '.join(sorted(fields))}")
      return f"unknown config field {path}: {hint}"
    holder = holder[part]
  return None


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
  `--NAME.field=value` included) whose value goes through `resolve`, and whose
  overrides of fields the config lacks are one-line flag errors (`unknown_field`)."""
  holder = config_flags.DEFINE_config_file(name, None, help_string, lock_config=True)
  flag = flags.FLAGS[name]
  flag.parser = _Resolving(flag.parser)
  parse = flag._parse  # pylint: disable=protected-access

  def parse_checked(argument):
    try:
      return parse(argument)
    except (AttributeError, KeyError, IndexError) as e:  # ml_collections' field lookup
      config = flag.parser.parse(argument)  # without the overrides
      overrides = flag._GetOverrides(flag._GetArgv())  # pylint: disable=protected-access
      found = (unknown_field(config, path) for path in overrides)
      raise flags.IllegalFlagValueError(
          next(filter(None, found), f"--{name} overrides: {e}")) from None

  flag._parse = parse_checked  # pylint: disable=protected-access
  return holder
