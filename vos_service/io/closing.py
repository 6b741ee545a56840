"""A `with`-statement base for writers that own a resource and have close()."""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Any


class ClosingContext(contextlib.AbstractContextManager):
    """`with Writer(...) as w:` closes w on exit, error or not (``__enter__`` returns self)."""

    @abstractmethod
    def close(self) -> None: ...

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
