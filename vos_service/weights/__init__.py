"""Weights: where a model's parameters come from, apart from the engine that runs them.

- ``checkpoints``: the registry of official SAM 2 / SAM 2.1 checkpoints; download, resume, verify.
- ``shipped``: the models this project trains and ships here (``nano.pt`` + its JSON card).
- ``cards``: a shipped model's card: what it records and how the README shows it.
- ``selection``: model settings -> the ModelSpec to build (shipped, official, a file, random).

The engine only builds a model from a config and a state dict. Submodules are not imported
here: ``checkpoints``, ``shipped`` and ``cards`` import no torch (``weights list`` stays fast).
"""
