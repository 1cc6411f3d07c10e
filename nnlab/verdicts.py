"""Verdicts in plain language: a run's own (solved the truth table? overfitting?) and, in VERDICTS, each
`experiment=` preset's claims from the chapter checked against the sweep's measured runs.

A claim is decided on the 95% interval of its effect over seeds (nnlab/stats.py): it holds when the interval
lies on the claim's side, does not hold when it lies on the other, is inconclusive when it straddles the line
(or there is one seed only), and is "not measured" when the runs it needs are missing or failed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nnlab.runs import RunRecord
from nnlab.stats import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURED, decide, mean_ci, welch


def run_verdicts(cfg: dict[str, Any], m: dict[str, float]) -> list[str]:
    """The end-of-run lines: truth table solved or not (and why a perceptron cannot), else the train-val gap."""
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


OUTCOME_STYLE = {HOLDS: "green", FAILS: "red", INCONCLUSIVE: "yellow", NOT_MEASURED: "magenta"}


@dataclass
class Verdict:
    claim: str
    measured: str
    outcome: str  # holds | does not hold | inconclusive | not measured
    n: list[int] = field(default_factory=list)  # runs behind each side of the effect; [] for an exact check
    effect: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    @property
    def n_text(self) -> str:
        return " vs ".join(map(str, self.n)) if self.n else "exact"


def exact(claim: str, measured: str, ok: bool) -> Verdict:
    """A deterministic check (no seeds involved): holds or does not."""
    return Verdict(claim, measured, HOLDS if ok else FAILS)


def _arm(runs: list[RunRecord], metric: str | Callable[[RunRecord], float], **want: str) -> list[float]:
    """`metric` of every finished run whose overrides match `want` (all seeds), NaN dropped."""
    get = metric if callable(metric) else (lambda r: r.metrics.get(metric, math.nan))
    values = [get(r) for r in runs if r.status == "ok"
              and all(str(r.overrides.get(k)).lower() == v.lower() for k, v in want.items())]
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _est(xs: list[float], fmt: str) -> str:
    e = mean_ci(xs)
    ci = f" [{e.lo:{fmt}}, {e.hi:{fmt}}]" if e.n > 1 else ""
    return f"{e.mean:{fmt}}{ci}"


def level(claim: str, name: str, xs: list[float], low: float = -math.inf, high: float = math.inf,
          fmt: str = ".3f") -> Verdict:
    """Claim: the mean of `xs` (one arm over seeds) lies in (low, high)."""
    if not xs:
        return Verdict(claim, f"{name}: no finished run", NOT_MEASURED, [0])
    e = mean_ci(xs)
    return Verdict(claim, f"{name} {_est(xs, fmt)}", decide(e.lo, e.hi, low, high), [e.n], e.mean, (e.lo, e.hi))


def ratio_level(claim: str, name: str, ratios: list[float], low: float, high: float) -> Verdict:
    """Claim: a ratio lies in (low, high), decided on log10 (scale effects multiply, so their noise does):
    the geometric mean over seeds and its 95% interval."""
    logs = [math.log10(max(r, 1e-300)) for r in ratios if r >= 0]  # 0: vanished below float range
    if not logs:
        return Verdict(claim, f"{name}: no finished run", NOT_MEASURED, [0])
    e = mean_ci(logs)
    ci = f" [{10 ** e.lo:.2g}, {10 ** e.hi:.2g}]" if e.n > 1 else ""
    return Verdict(claim, f"{name} {10 ** e.mean:.2g}{ci} (geometric mean)",
                   decide(e.lo, e.hi, math.log10(low) if low > 0 else -math.inf, math.log10(high)), [e.n], 10 ** e.mean,
                   (10 ** e.lo, 10 ** e.hi) if e.n > 1 else (math.nan, math.nan))


def contrast(claim: str, a_name: str, a: list[float], b_name: str, b: list[float], margin: float = 0.0,
             fmt: str = ".3f") -> Verdict:
    """Claim: mean(a) - mean(b) > margin, decided on Welch's 95% interval of the difference."""
    if not a or not b:
        missing = " and ".join(n for n, xs in ((a_name, a), (b_name, b)) if not xs)
        return Verdict(claim, f"{missing}: no finished run", NOT_MEASURED, [len(a), len(b)])
    d = welch(a, b)
    measured = (f"{a_name} {_est(a, fmt)} vs {b_name} {_est(b, fmt)}; "
                f"difference {d.diff:+{fmt}}" + ("" if math.isnan(d.lo) else f" [{d.lo:+{fmt}}, {d.hi:+{fmt}}]"))
    return Verdict(claim, measured, decide(d.lo, d.hi, margin), [len(a), len(b)], d.diff, (d.lo, d.hi))


def every(claim: str, parts: list[Verdict]) -> Verdict:
    """A claim over several arms: fails if one fails, else not measured / inconclusive if one is, else holds."""
    outcomes = {p.outcome for p in parts}
    outcome = next((o for o in (FAILS, NOT_MEASURED, INCONCLUSIVE) if o in outcomes), HOLDS) if parts else NOT_MEASURED
    return Verdict(claim, "; ".join(p.measured for p in parts) or "no finished run", outcome,
                   [n for p in parts for n in p.n[:1]])


def _values(runs: list[RunRecord], key: str) -> list[str]:
    return sorted({r.overrides[key] for r in runs if key in r.overrides})


def perceptron_gates(runs: list[RunRecord]) -> list[Verdict]:
    import torch

    from nnlab.models.perceptron import Perceptron

    p = Perceptron((2,), 1)
    with torch.no_grad():
        p.linear.weight.copy_(torch.tensor([[1.0, 1.0]]))
        p.linear.bias.copy_(torch.tensor([-0.5]))
    out = p.predict(torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])).tolist()
    verdicts = [exact("w=[1,1], b=-0.5 makes an OR gate", f"step outputs {out}", out == [0, 1, 1, 1])]
    for gate in ("and", "or", "nand"):
        acc = _arm(runs, "final/train_acc", **{"data.gate": gate, "model": "perceptron"})
        verdicts.append(level(f"a perceptron learns {gate.upper()} (accuracy 100%)", "accuracy", acc, low=0.999))
    acc = _arm(runs, "final/train_acc", **{"data.gate": "xor", "model": "perceptron"})
    verdicts.append(level("a perceptron cannot learn XOR (accuracy < 100%)", "accuracy", acc, high=0.999))
    acc = _arm(runs, "final/train_acc", **{"data.gate": "xor", "model": "mlp"})
    verdicts.append(level("an MLP (one hidden layer) learns XOR (accuracy 100%)", "accuracy", acc, low=0.999))
    return verdicts


def activations_grid(runs: list[RunRecord]) -> list[Verdict]:
    arms = _values(runs, "activation")
    verdicts = [every("every activation trains the MLP well above chance (test accuracy > 50%, chance 10%)",
                      [level("", a, _arm(runs, "final/test_acc", activation=a), low=0.5) for a in arms])]
    if "relu" in arms and "leaky_relu" in arms:
        verdicts.append(contrast("LeakyReLU avoids dead neurons: no more dead units than ReLU (within 0.5 points)",
                                 "relu dead", _arm(runs, "final/dead_fraction", activation="relu"),
                                 "leaky_relu dead", _arm(runs, "final/dead_fraction", activation="leaky_relu"),
                                 margin=-0.005, fmt=".1%"))
    return verdicts


def init_depth(runs: list[RunRecord]) -> list[Verdict]:
    def ratio(r: RunRecord) -> float:
        return r.metrics.get("init/activation_std_last", math.nan) / max(
            r.metrics.get("init/activation_std_first", math.nan), 1e-30)

    def acc(init: str) -> list[float]:
        return _arm(runs, "final/val_acc", init=init)

    return [
        ratio_level("Kaiming keeps the activation scale through 20 ReLU layers (last/first std ratio within "
                    "a factor 10)", "ratio", _arm(runs, ratio, init="kaiming_normal"), 0.1, 10),
        ratio_level("small normal(0.01) weights make activations vanish with depth (ratio < 0.001)",
                    "ratio", _arm(runs, ratio, init="normal"), 0, 1e-3),
        ratio_level("Xavier with its gain matched to ReLU (init.nonlinearity=auto) keeps the scale as well "
                    "(within a factor 10)", "ratio", _arm(runs, ratio, init="xavier_normal"), 0.1, 10),
        level("zeros init cannot break symmetry: it does not train (val accuracy < 20%)",
              "val acc", acc("zeros"), high=0.2),
        contrast("the Kaiming-initialized deep net trains: val accuracy over zeros by more than 0.3",
                 "kaiming_normal", acc("kaiming_normal"), "zeros", acc("zeros"), margin=0.3),
    ]


def skip_connections_depth(runs: list[RunRecord]) -> list[Verdict]:
    depths = sorted(_values(runs, "model.depth"), key=int) or ["?"]
    deep, shallow = depths[-1], depths[0]

    def acc(depth: str, skip: str) -> list[float]:
        return _arm(runs, "final/val_acc", **{"model.depth": depth, "model.skip": skip})

    return [
        every(f"at depth {shallow} both nets train (val accuracy > 50%)",
              [level("", "plain", acc(shallow, "false"), low=0.5),
               level("", "residual", acc(shallow, "true"), low=0.5)]),
        contrast(f"at depth {deep} the residual net trains where the plain one stalls (higher val accuracy)",
                 "residual", acc(deep, "true"), "plain", acc(deep, "false")),
    ]


def loss_choice(runs: list[RunRecord]) -> list[Verdict]:
    import torch

    from nnlab.losses import build_objective

    y = torch.tensor([0])
    values = {}
    for name in ("bce_logits", "bce"):  # a confident, wrong logit: loss should be 40, its gradient 1
        z = torch.tensor([[40.0]], requires_grad=True)
        loss = build_objective(name, num_classes=2, pairs=False)(z, y)
        loss.backward()
        values[name] = (loss.item(), z.grad.item())
    (exact_loss, g_exact), (naive, g_naive) = values["bce_logits"], values["bce"]
    return [
        contrast("cross-entropy is the loss for multi-class classification: at least as accurate as MSE "
                 "(within 1 point)", "cross_entropy", _arm(runs, "final/test_acc", loss="cross_entropy"),
                 "mse", _arm(runs, "final/test_acc", loss="mse"), margin=-0.01),
        exact("BCE-with-logits stays exact where sigmoid + BCE saturates and loses its gradient",
              f"logit 40, label 0: loss {exact_loss:.1f} / grad {g_exact:.2f} with logits; sigmoid+BCE loss "
              f"{naive:.1f} (log clamped) / grad {g_naive:.2f}",
              abs(exact_loss - 40) < 1e-3 and abs(g_exact - 1) < 1e-3 and abs(g_naive) < 1e-3),
    ]


def optimizers(runs: list[RunRecord]) -> list[Verdict]:
    def acc(o: str) -> list[float]:
        return _arm(runs, "final/val_acc", optimizer=o)

    return [
        contrast("momentum speeds up SGD: higher val accuracy on the same budget",
                 "sgd_momentum", acc("sgd_momentum"), "sgd", acc("sgd")),
        every("Adam-family optimizers beat plain SGD on the same budget",
              [contrast("", o, acc(o), "sgd", acc("sgd")) for o in ("adam", "adamw", "radam")]),
    ]


def regularization_overfit(runs: list[RunRecord]) -> list[Verdict]:
    """Overfitting shows as validation loss pulling away from training loss; each regularizer vs none."""
    def loss_gap(r: RunRecord) -> float:
        return r.metrics.get("final/val_loss", math.nan) - r.metrics.get("final/train_loss", math.nan)

    def acc_gap(r: RunRecord) -> float:
        return r.metrics.get("final/train_acc", math.nan) - r.metrics.get("final/val_acc", math.nan)

    none = _arm(runs, loss_gap, regularizer="none")
    verdicts = [every("with no regularization a small training set overfits (accuracy gap > 0.05, "
                      "loss gap > 0.3)", [level("", "accuracy gap", _arm(runs, acc_gap, regularizer="none"), 0.05),
                                          level("", "loss gap", none, 0.3, fmt=".2f")])]
    claims = {"dropout": "dropout(0.5) narrows the loss gap", "early_stopping": "early stopping narrows the gap",
              "augment": "data augmentation narrows the gap",
              "combined": "the chapter's combined recipe (BN + dropout 0.3 + SGD momentum + weight decay) narrows it"}
    present = _values(runs, "regularizer")
    for name, claim in claims.items():
        if name in present:  # the effect: how much smaller the gap is than without regularization
            verdicts.append(contrast(claim, "gap none", none, f"gap {name}", _arm(runs, loss_gap, regularizer=name),
                                     fmt=".2f"))
    return verdicts


def siamese_pairs(runs: list[RunRecord]) -> list[Verdict]:
    arms = [(loss, _arm(runs, "final/test_acc", loss=loss)) for loss in _values(runs, "loss")]
    return [every("the weight-shared network tells same from different pairs (test accuracy > 70%, chance 50%)",
                  [level("", name, xs, low=0.7) for name, xs in arms or [("all", _arm(runs, "final/test_acc"))]])]


def dynamic_depth(runs: list[RunRecord]) -> list[Verdict]:
    """Per depth, over seeds: blocks used and test accuracy at thresholds 0.5 / 0.9 / 1 (full depth)."""
    verdicts = []
    for depth in sorted(_values(runs, "model.depth"), key=int) or [None]:  # None: no run says which depth
        d, want = (int(depth), {"model.depth": depth}) if depth else (0, {})
        label = f"depth {d}" if d else "every depth"

        def used(t: str) -> str:
            return f"exit/test_depth@{t}"

        share = _arm(runs, lambda r: r.metrics.get(used("0.5"), math.nan) / d if d else math.nan, **want)
        order = _arm(runs, lambda r: min(r.metrics.get(used("0.9"), math.nan) - r.metrics.get(used("0.5"), math.nan),
                                         r.metrics.get(used("1"), math.nan) - r.metrics.get(used("0.9"), math.nan)),
                     **want)
        verdicts += [
            level(f"{label}: confident inputs exit early (threshold 0.5 runs under three quarters of the blocks)",
                  "share of blocks used at 0.5", share, high=0.75),
            level(f"{label}: early exits cost at most 2 points of test accuracy (threshold 0.9 vs full depth, "
                  "paired per run)", "accuracy at 0.9 minus at full depth",
                  _arm(runs, lambda r: r.metrics.get("exit/test_acc@0.9", math.nan)
                       - r.metrics.get("exit/test_acc@1", math.nan), **want), low=-0.02),
            level(f"{label}: a lower threshold saves more computation (blocks used 0.5 < 0.9 < 1)",
                  "smallest step in blocks used", order, low=0.0, fmt=".2f"),
        ]
    return verdicts


def recurrent_init(runs: list[RunRecord]) -> list[Verdict]:
    """The gradient that reaches the first of 50 steps at init (measured here on a fresh LSTM of the preset's
    size); the trained runs' validation accuracy is reported beside it (within this budget both stay near
    chance on the adding problem and their difference is noise, so no claim is made about it)."""
    import torch

    from nnlab.inits import init_layers
    from nnlab.models import build_model

    def reach(**scheme: object) -> float:  # |dL/dx_1| / |dL/dx_50|, averaged over a batch
        torch.manual_seed(0)
        m = build_model("lstm", input_shape=(50, 2), out_units=2, data_kind="sequence", act=None, hidden_size=32)
        init_layers(m, activation="tanh", **scheme)  # type: ignore[arg-type]
        x = torch.rand(256, 50, 2, requires_grad=True)
        m(x).sum().backward()
        g = x.grad.norm(dim=2).mean(0)  # type: ignore[union-attr]
        return float(g[0] / g[-1])

    default, chapter = reach(scheme="default"), reach(scheme="recurrent", recurrent="orthogonal",
                                                      input="xavier_uniform", forget_bias=1.0, bias=0.0)
    acc = ", ".join(f"{i} {_est(_arm(runs, 'final/val_acc', init=i), '.3f')}" for i in _values(runs, "init"))
    return [
        exact("orthogonal recurrent blocks with forget-gate bias 1 carry the gradient back through 50 steps "
                "(>1000x more reaches step 1 than with PyTorch's default)",
                f"|dL/dx_1| / |dL/dx_50| at init: recurrent {chapter:.1e}, default {default:.1e}; after training, "
                f"val acc {acc} (chance 0.5)", chapter > 1000 * default),
    ]


VERDICTS: dict[str, Callable[[list[RunRecord]], list[Verdict]]] = {
    f.__name__: f for f in (perceptron_gates, activations_grid, init_depth, skip_connections_depth, loss_choice,
                            optimizers, regularization_overfit, siamese_pairs, dynamic_depth,
                            recurrent_init)
}


def as_json(verdicts: list[Verdict]) -> list[dict]:
    """verdict.json: each claim with its outcome, effect, 95% interval and n; `holds` is true or false only
    when the interval decided it (null when inconclusive or not measured)."""
    out = []
    for v in verdicts:
        d = asdict(v)
        d["holds"] = {HOLDS: True, FAILS: False}.get(v.outcome)
        d["effect"] = None if math.isnan(v.effect) else v.effect
        d["ci"] = None if math.isnan(v.ci[0]) else list(v.ci)
        out.append(d)
    return out
