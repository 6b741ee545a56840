"""Models the project trains and ships inside the package (vos_service/weights/).

``nano`` is the offline default: used when no checkpoint is configured. Next to
each weights file a JSON card records its sha256 (checked before loading, so a
truncated or swapped file fails loudly), how it was trained and what it scores on
the held-out synthetic test set (README: model card).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vos_service.engine.errors import ModelConfigError
from vos_service.weights.cards import read_card

WEIGHTS_DIR = Path(__file__).resolve().parent  # the package data beside this module
DEFAULT_SHIPPED = "nano"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    config: str        # architecture or sam2 config the weights belong to
    weights: Path
    card: dict         # the JSON card: sha256, training, evaluation

    @property
    def eval(self) -> dict:
        return self.card.get("eval", {})


def shipped_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.json"))


def shipped_model(name: str = DEFAULT_SHIPPED, verify: bool = True) -> ShippedModel:
    card_path = WEIGHTS_DIR / f"{name}.json"
    if not card_path.is_file():
        raise ModelConfigError(f"no shipped model {name!r} (have: {', '.join(shipped_names()) or 'none'})")
    card = read_card(card_path)
    weights = WEIGHTS_DIR / card["file"]
    if not weights.is_file():
        raise ModelConfigError(f"shipped model {name!r}: weights file {weights} is missing (broken install?)")
    if verify:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != card["sha256"]:
            raise ModelConfigError(f"shipped model {name!r}: {weights} has sha256 {digest}, "
                                   f"its card says {card['sha256']} (corrupt or replaced file)")
    return ShippedModel(name=name, config=card["config"], weights=weights, card=card)
