"""nnlab's runner vs a bare PyTorch loop vs the torchvision DataLoader path (vs Lightning if installed).

Same model, data, seed and batch size; measured side by side in one process. Each round runs every path
once over the same --samples (half an epoch: short rounds keep the paths of a round under the same load
on a shared machine), in an order that rotates from round to round, after one uncounted warm-up round.
Prints the median samples/s, the medians of the per-round ratios with every round's value, and the
fraction of the fp32 GEMM ceiling that this machine reaches (measured here, not assumed).
    python scripts/bench_runner.py [--data-root ../shared/data] [--repeats 9] [--samples 27000] [--model mlp|cnn]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from nnlab.config.compose import compose_config
from nnlab.devices import cpu_has_bf16
from nnlab.loop import Pipeline, fit
from nnlab.runner import build
from nnlab.tracker import Tracker

REPO = Path(__file__).resolve().parents[1]


def gemm_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def model_flops_per_sample(model: nn.Module, x: torch.Tensor) -> float:
    """Forward + backward flops per sample (~3x the forward) from the Linear/Conv layers."""
    flops = 0

    def hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(m, nn.Linear):
            flops += 2 * m.in_features * m.out_features
        elif isinstance(m, nn.Conv2d):
            flops += 2 * m.weight[0].numel() * out[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        model(x[:1])
    for h in handles:
        h.remove()
    return 3.0 * flops


def overrides(model: str, batch: int, root: str, samples: int, extra: tuple[str, ...] = ()) -> list[str]:
    """nnlab's config for one measurement: `samples` training samples (whole batches), default logging."""
    return ["data=fashion_mnist", f"data.root={root}", f"model={model}", "optimizer=adam", "trainer.epochs=1",
            f"trainer.batch_size={batch}", f"trainer.limit_train_batches={-(-samples // batch)}",
            "logger.progress=false", "logger.histogram_every_n_epochs=0", *extra]


def users_pipeline(cfg: dict) -> Pipeline:
    """The same data tensors and freshly initialized model as nnlab's, in PyTorch's default memory format:
    the layout a hand-written loop trains in (nnlab itself moves image models to channels_last)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = build(cfg, Path(tmp))
    p.model.to(memory_format=torch.contiguous_format)
    return p


def batches_of(cfg: dict, n_train: int) -> tuple[int, int]:
    """(batch size, samples one measurement trains on) for a config made by `overrides`."""
    bs = cfg["trainer"]["batch_size"]
    return bs, min(bs * cfg["trainer"]["limit_train_batches"], n_train)


def nnlab_run(cfg: dict) -> float:
    """Samples/s through runner.build + loop.fit with default logging (TensorBoard scalars every 50 steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = build(cfg, Path(tmp))
        quiet = Console(file=open(os.devnull, "w"))
        tracker = Tracker(Path(tmp), progress=False, histogram_every_n_epochs=0, console=quiet)
        st = fit(p, tracker)
        tracker.close()
    return batches_of(cfg, len(p.data.train))[1] / st.elapsed


def bare_run(cfg: dict) -> float:
    """The loop a user would write: in-memory tensors, randperm batches, torch.optim.Adam defaults."""
    p = users_pipeline(cfg)
    model, (x, y) = p.model, (p.data.train.x, p.data.train.y)
    bs, samples = batches_of(cfg, len(y))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["optimizer"]["lr"])
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(y))
    for i in range(0, samples, bs):
        idx = perm[i:i + bs]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return samples / (time.perf_counter() - t0)


def dataloader_run(cfg: dict, root: str) -> float:
    """torchvision FashionMNIST + ToTensor/Normalize per sample + DataLoader: the tutorial path."""
    from torchvision import datasets, transforms

    p = users_pipeline(cfg)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.286,), (0.353,))])
    ds = datasets.FashionMNIST(root, train=True, transform=tf, download=False)
    (bs, samples), model = batches_of(cfg, len(ds)), p.model
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True)
    opt, seen = torch.optim.Adam(model.parameters(), lr=cfg["optimizer"]["lr"]), 0
    t0 = time.perf_counter()
    for xb, yb in loader:
        if seen >= samples:
            break
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        seen += len(yb)
    return seen / (time.perf_counter() - t0)


def lightning_run(cfg: dict, log: bool) -> float | None:
    """Lightning's Trainer over a TensorDataset DataLoader of the same tensors; None if not installed.

    With `log`, the training step logs its loss the way Lightning's documentation does (`self.log`, to the
    default TensorBoard logger every 50 steps): the same logging nnlab does by default. Without it, nothing
    is logged at all: Lightning at its leanest, printed beside it."""
    try:
        import lightning as L
    except ImportError:
        return None
    p = users_pipeline(cfg)
    bs, samples = batches_of(cfg, len(p.data.train))

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = p.model

        def training_step(self, batch: tuple, _: int) -> torch.Tensor:
            loss = F.cross_entropy(self.net(batch[0]), batch[1])
            if log:
                self.log("train/loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=cfg["optimizer"]["lr"])

    ds = torch.utils.data.TensorDataset(p.data.train.x, p.data.train.y)
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(max_epochs=1, limit_train_batches=-(-samples // bs), accelerator="cpu", logger=log,
                            default_root_dir=tmp, log_every_n_steps=50, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)
        t0 = time.perf_counter()  # fit() included: its set-up takes a few milliseconds
        trainer.fit(Module(), loader)
        return samples / (time.perf_counter() - t0)


def one_round(cfgs: dict[str, dict], root: str, shift: int) -> dict[str, float]:
    """Every path once, back to back, so each ratio compares runs made under the same machine load.

    The order rotates by `shift` from round to round: no path always runs first (cold caches) or last.
    """
    paths: dict[str, Callable[[], float | None]] = {
        "nnlab": lambda: nnlab_run(cfgs["base"]),
        "bare": lambda: bare_run(cfgs["base"]),
        "dataloader": lambda: dataloader_run(cfgs["base"], root),
        "lightning": lambda: lightning_run(cfgs["base"], log=True),
        "lightning, no log": lambda: lightning_run(cfgs["base"], log=False),
    }
    if "b256" in cfgs:
        paths["nnlab batch 256"] = lambda: nnlab_run(cfgs["b256"])
        paths["bare batch 256"] = lambda: bare_run(cfgs["b256"])
        paths["nnlab amp=true"] = lambda: nnlab_run(cfgs["amp"])
    names = list(paths)
    shift %= len(names)
    measured = {name: paths[name]() for name in names[shift:] + names[:shift]}
    return {name: measured[name] for name in names if measured[name] is not None}  # lightning: None if absent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=9, help="measured rounds, after one warm-up round")
    parser.add_argument("--samples", type=int, default=27_000,
                        help="training samples per measurement (default: half an epoch of Fashion-MNIST)")
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    args = parser.parse_args()
    torch.manual_seed(0)
    cfgs = {"base": compose_config(overrides(args.model, 128, args.data_root, args.samples))}
    if args.model == "mlp":
        cfgs["b256"] = compose_config(overrides("mlp", 256, args.data_root, args.samples))
        cfgs["amp"] = compose_config(overrides("mlp", 128, args.data_root, args.samples, ("trainer.amp=true",)))
    one_round(cfgs, args.data_root, 0)  # warm-up, not counted: first imports, first allocations, cold caches
    rows = [one_round(cfgs, args.data_root, r) for r in range(args.repeats)]

    def ratio(a: str, b: str) -> str:  # median over rounds of (samples/s of a) / (samples/s of b), and each round's
        per_round = [r[a] / r[b] for r in rows]
        return f"{statistics.median(per_round):.2f}  (rounds: {' '.join(f'{x:.2f}' for x in per_round)})"

    with tempfile.TemporaryDirectory() as tmp:
        p = build(cfgs["base"], Path(tmp))
    ceiling = gemm_gflops() * 1e9 / model_flops_per_sample(p.model, p.data.train.x)
    print(f"{args.model} on Fashion-MNIST, Adam, {torch.get_num_threads()} threads; {args.repeats} rounds after a "
          f"warm-up, each path once per round over {args.samples:,} samples; medians")
    for name in rows[0]:
        sps = statistics.median(r[name] for r in rows)
        print(f"  {name:<17} {sps:>10,.0f} samples/s   ({sps / ceiling:.0%} of the GEMM ceiling {ceiling:,.0f}/s)")
    mlp = args.model == "mlp"  # the targets are set for the MLP; the CNN is compute-bound in convolutions
    print(f"time ratio nnlab / bare loop:   {ratio('bare', 'nnlab')}" + (" target <= 1.10" * mlp))
    print(f"nnlab speed-up over DataLoader: {ratio('nnlab', 'dataloader')}" + (" target >= 8" * mlp))
    if "lightning" in rows[0]:
        print(f"nnlab speed-up over Lightning:  {ratio('nnlab', 'lightning')}" + (" target >= 1.8" * mlp)
              + " (both log the training loss to TensorBoard every 50 steps)")
        print(f"  over Lightning logging nothing: {ratio('nnlab', 'lightning, no log')}")
    else:
        print("Lightning: not installed (pip install 'nnlab[bench]' to compare)")
    if "b256" in cfgs:
        b256 = statistics.median(r["nnlab batch 256"] for r in rows)
        print(f"nnlab at batch 256: {b256:,.0f} samples/s (target >= 100,000); "
              f"time ratio nnlab / bare loop at batch 256: {ratio('bare batch 256', 'nnlab batch 256')}")
        amp = ratio("nnlab amp=true", "nnlab")
        if cpu_has_bf16():
            print(f"amp=true (bf16 autocast) / fp32 samples/s: {amp} target >= 1.0 where bf16 is native")
        else:
            print(f"amp=true / fp32 samples/s: {amp}; this CPU has no native bf16 (AVX512-BF16/AMX), so the "
                  "runner warned and trained amp=true in fp32 (the ratio is fp32 against fp32: run-to-run noise)")


if __name__ == "__main__":
    main()
