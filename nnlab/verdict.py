"""Plain-language verdicts for the end-of-run summary."""

from __future__ import annotations

from typing import Any


def verdicts(cfg: dict[str, Any], m: dict[str, float]) -> list[str]:
    lines = []
    if cfg["data"]["name"] in ("xor", "gates"):
        acc = m["final/train_acc"]
        table = cfg["data"].get("gate", "xor").upper()
        if acc == 1.0:
            lines.append(f"solved: {cfg['model']['name']} fits the {table} truth table (100% accuracy)")
        else:
            lines.append(f"NOT solved: {cfg['model']['name']} reaches only {acc:.0%} on the {table} truth table")
            if cfg["model"]["name"] == "perceptron":
                lines.append("a perceptron draws one straight line (w·x + b = 0); no line separates "
                             f"{table}'s classes, so no training can fit it - use model=mlp")
    else:
        gap = m["final/train_acc"] - m["final/val_acc"]
        lines.append(f"test accuracy {m['final/test_acc']:.2%}; train-val gap {gap:+.2%}"
                     + (" (overfitting: try regularizer=dropout or regularizer=combined)" if gap > 0.05 else ""))
    return lines
