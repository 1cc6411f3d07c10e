"""Verdicts in plain language: a run's own (solved the truth table? overfitting?) and, in VERDICTS, each
`experiment=` preset's claims from the chapter checked against the sweep's measured runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from nnlab.runs import RunRecord


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


@dataclass
class Verdict:
    claim: str
    measured: str
    holds: bool


def _m(run: RunRecord | None, key: str) -> float:
    return run.metrics.get(key, float("nan")) if run else float("nan")


def _pick(runs: list[RunRecord], **want: str) -> RunRecord | None:
    for r in runs:
        if all(str(r.overrides.get(k)).lower() == v.lower() for k, v in want.items()):
            return r
    return None


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
    verdicts = [Verdict("w=[1,1], b=-0.5 makes an OR gate", f"step outputs {out}", out == [0, 1, 1, 1])]
    for gate in ("and", "or", "nand"):
        acc = _m(_pick(runs, **{"data.gate": gate, "model": "perceptron"}), "final/train_acc")
        verdicts.append(Verdict(f"a perceptron learns {gate.upper()}", f"accuracy {acc:.0%}", acc == 1.0))
    acc = _m(_pick(runs, **{"data.gate": "xor", "model": "perceptron"}), "final/train_acc")
    verdicts.append(Verdict("a perceptron cannot learn XOR", f"accuracy {acc:.0%}", acc < 1.0))
    acc = _m(_pick(runs, **{"data.gate": "xor", "model": "mlp"}), "final/train_acc")
    verdicts.append(Verdict("an MLP (one hidden layer) learns XOR", f"accuracy {acc:.0%}", acc == 1.0))
    return verdicts


def activations_grid(runs: list[RunRecord]) -> list[Verdict]:
    rows = {a: _pick(runs, activation=a) for a in _values(runs, "activation")}
    measured = ", ".join(f"{a} {_m(r, 'final/test_acc'):.3f} (dead {_m(r, 'final/dead_fraction'):.1%})"
                         for a, r in rows.items())
    verdicts = [Verdict("every activation trains the MLP well above chance (10%)", measured,
                        all(_m(r, "final/test_acc") > 0.5 for r in rows.values()))]
    if "relu" in rows and "leaky_relu" in rows:
        dead, leaky = _m(rows["relu"], "final/dead_fraction"), _m(rows["leaky_relu"], "final/dead_fraction")
        verdicts.append(Verdict("LeakyReLU avoids dead neurons: no more dead units than ReLU",
                                f"relu {dead:.1%} dead, leaky_relu {leaky:.1%} dead", leaky <= dead))
    return verdicts


def init_depth(runs: list[RunRecord]) -> list[Verdict]:
    def ratio(init: str) -> float:
        r = _pick(runs, init=init)
        return _m(r, "init/activation_std_last") / max(_m(r, "init/activation_std_first"), 1e-30)

    acc = {i: _m(_pick(runs, init=i), "final/val_acc") for i in _values(runs, "init")}
    return [
        Verdict("Kaiming keeps the activation scale through 20 ReLU layers",
                f"last/first layer std ratio {ratio('kaiming_normal'):.2f}", 0.2 < ratio("kaiming_normal") < 5),
        Verdict("small normal(0.01) weights make activations vanish with depth",
                f"ratio {ratio('normal'):.1e}", ratio("normal") < 1e-3),
        Verdict("Xavier with its gain matched to ReLU (init.nonlinearity=auto) keeps the scale as well",
                f"ratio {ratio('xavier_normal'):.2f}", 0.2 < ratio("xavier_normal") < 5),
        Verdict("zeros init cannot break symmetry: it does not train",
                f"val acc {acc.get('zeros', float('nan')):.3f}", acc.get("zeros", 1.0) < 0.2),
        Verdict("the Kaiming-initialized deep net trains",
                f"val acc {acc.get('kaiming_normal', float('nan')):.3f} vs zeros "
                f"{acc.get('zeros', float('nan')):.3f}", acc.get("kaiming_normal", 0) > acc.get("zeros", 1) + 0.3),
    ]


def skip_connections_depth(runs: list[RunRecord]) -> list[Verdict]:
    depths = sorted(_values(runs, "model.depth"), key=int)
    deep, shallow = depths[-1], depths[0]

    def acc(depth: str, skip: str) -> float:
        return _m(_pick(runs, **{"model.depth": depth, "model.skip": skip}), "final/val_acc")

    plain, res = acc(deep, "false"), acc(deep, "true")
    return [
        Verdict(f"at depth {shallow} both nets train", f"plain {acc(shallow, 'false'):.3f}, "
                f"residual {acc(shallow, 'true'):.3f}", min(acc(shallow, "false"), acc(shallow, "true")) > 0.5),
        Verdict(f"at depth {deep} the residual net trains where the plain one stalls",
                f"plain {plain:.3f}, residual {res:.3f}", res > plain + 0.1),
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
    (exact, g_exact), (naive, g_naive) = values["bce_logits"], values["bce"]
    acc = {loss: _m(_pick(runs, loss=loss), "final/test_acc") for loss in _values(runs, "loss")}
    return [
        Verdict("cross-entropy is the loss for multi-class classification: at least as accurate as MSE",
                ", ".join(f"{k} {v:.3f}" for k, v in acc.items()),
                acc.get("cross_entropy", 0) >= acc.get("mse", 1) - 0.01),
        Verdict("BCE-with-logits stays exact where sigmoid + BCE saturates and loses its gradient",
                f"logit 40, label 0: loss {exact:.1f} / grad {g_exact:.2f} with logits; sigmoid+BCE loss "
                f"{naive:.1f} (log clamped) / grad {g_naive:.2f}",
                abs(exact - 40) < 1e-3 and abs(g_exact - 1) < 1e-3 and abs(g_naive) < 1e-3),
    ]


def optimizers(runs: list[RunRecord]) -> list[Verdict]:
    acc = {o: _m(_pick(runs, optimizer=o), "final/val_acc") for o in _values(runs, "optimizer")}
    measured = ", ".join(f"{k} {v:.3f}" for k, v in sorted(acc.items(), key=lambda kv: -kv[1]))
    return [
        Verdict("momentum speeds up SGD", measured, acc.get("sgd_momentum", 0) > acc.get("sgd", 1)),
        Verdict("Adam-family optimizers beat plain SGD on the same budget", measured,
                min(acc.get(o, 0) for o in ("adam", "adamw", "radam")) > acc.get("sgd", 1)),
    ]


def regularization_overfit(runs: list[RunRecord]) -> list[Verdict]:
    """Overfitting shows as validation loss pulling away from training loss; each regularizer vs none."""
    def gap(r: RunRecord) -> float:
        return _m(r, "final/val_loss") - _m(r, "final/train_loss")

    gaps = {r.overrides.get("regularizer", "none"): gap(r) for r in runs}
    none = _pick(runs, regularizer="none")
    base = gaps.get("none", float("nan"))
    measured = "loss gap " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(gaps.items(), key=lambda kv: kv[1]))
    acc_gap = _m(none, "final/train_acc") - _m(none, "final/val_acc")
    verdicts = [Verdict("with no regularization a small training set overfits",
                        f"train-val accuracy gap {acc_gap:+.3f}, loss gap {base:.2f}", acc_gap > 0.05 and base > 0.3)]
    claims = {"dropout": "dropout(0.5) narrows the gap", "early_stopping": "early stopping narrows the gap",
              "augment": "data augmentation narrows the gap",
              "combined": "the chapter's combined recipe (BN + dropout 0.3 + SGD momentum + weight decay) narrows it"}
    for name, claim in claims.items():
        if name in gaps:
            verdicts.append(Verdict(claim, measured, gaps[name] < base))
    return verdicts


def siamese_pairs(runs: list[RunRecord]) -> list[Verdict]:
    acc = {r.overrides.get("loss", "bce_logits"): _m(r, "final/test_acc") for r in runs}
    return [Verdict("the weight-shared network tells same from different pairs (chance is 50%)",
                    ", ".join(f"{k} {v:.3f}" for k, v in acc.items()), all(v > 0.75 for v in acc.values()))]


def dynamic_depth(runs: list[RunRecord]) -> list[Verdict]:
    """Per depth: blocks used and test accuracy at thresholds 0.5 / 0.9 / 1 (full depth), from exit/* metrics."""
    verdicts = []
    for depth in sorted(_values(runs, "model.depth"), key=int):
        r, d = _pick(runs, **{"model.depth": depth}), int(depth)
        used = {t: _m(r, f"exit/test_depth@{t}") for t in ("0.5", "0.9", "1")}
        acc = {t: _m(r, f"exit/test_acc@{t}") for t in ("0.5", "0.9", "1")}
        measured = ", ".join(f"threshold {t}: {used[t]:.2f} of {d} blocks, acc {acc[t]:.3f}" for t in used)
        verdicts += [
            Verdict(f"depth {d}: confident inputs exit early (threshold 0.5 runs under half of the blocks)",
                    measured, used["0.5"] < 0.5 * d),
            Verdict(f"depth {d}: early exits cost at most 2 points of test accuracy (threshold 0.9 vs full depth)",
                    measured, acc["0.9"] >= acc["1"] - 0.02),
            Verdict(f"depth {d}: a lower threshold saves more computation (0.5 < 0.9 < 1 in blocks used)", measured,
                    used["0.5"] < used["0.9"] < used["1"]),
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
    acc = ", ".join(f"{i} {_m(_pick(runs, init=i), 'final/val_acc'):.3f}" for i in _values(runs, "init"))
    return [
        Verdict("orthogonal recurrent blocks with forget-gate bias 1 carry the gradient back through 50 steps "
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
    return [asdict(v) for v in verdicts]
