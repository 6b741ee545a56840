"""`vos-service`: the command line, one module a command (see main.py for the table)."""

from .main import main

__all__ = ["main"]
