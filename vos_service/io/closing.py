"""A `with`-statement mixin for writers that own a resource and have close()."""

from __future__ import annotations


class ClosingContext:
    """`with Writer(...) as w:` closes w on exit, error or not."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
