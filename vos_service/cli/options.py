"""What every command shares: the options accepted anywhere on the line, and flags backed by a setting.

A flag backed by a setting takes its help text and its default from config.py (the
field's description and default), so the help never drifts from what the service does;
its value is None unless given, so a settings file and VOS_* variables still apply.
"""

from __future__ import annotations

import argparse
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LOG_LEVEL = "warning"

# Parent of the main parser and of every command's parser: `--log-level` may stand before
# or after the command. SUPPRESS: a command's parser must not reset what the main one read.
COMMON = argparse.ArgumentParser(add_help=False)
_log = COMMON.add_argument_group("logging")
_log.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default=argparse.SUPPRESS,
                  help=f"log messages at this level and above (default {DEFAULT_LOG_LEVEL})")
_log.add_argument("-v", "--verbose", dest="log_level", action="store_const", const="info", default=argparse.SUPPRESS,
                  help="the same as --log-level info")


def add_parser(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A (sub)command's parser that takes the common options too."""
    return subparsers.add_parser(name, parents=[COMMON], **kwargs)


def setting_help(key: str, text: str | None = None) -> str:
    """``text`` (default: the setting's description), its default and its name, for a flag's help."""
    from ..config import setting_field  # pydantic: only for the commands that have such flags

    description, default = setting_field(key)
    shown = "none" if default is None else getattr(default, "value", default)
    if isinstance(shown, bool):
        shown = "on" if shown else "off"
    return f"{text or description}; default {shown} (setting {key})".replace("%", "%%")


def add_setting_flag(group: Any, flag: str, key: str, *, const: Any = None, help: str | None = None,
                     **kwargs: Any) -> None:
    """``--flag VALUE`` (or, with ``const``, a switch that sets it) overriding setting ``key``."""
    if const is not None:
        kwargs.update(action="store_const", const=const)
    group.add_argument(flag, dest=flag_dest(flag), default=None, help=setting_help(key, help), **kwargs)


def flag_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def overrides(args: argparse.Namespace, flags: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """{setting key: value} of the (flag, key) pairs; None for a flag not given (ignored by with_overrides)."""
    return {key: getattr(args, flag_dest(flag)) for flag, key in flags}
