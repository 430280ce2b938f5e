"""Throughput of one supervised training step (frames/s) at the default size, vs a baseline.

Baseline (named ``plain_transformer``): a bare ``torch.nn.TransformerEncoder`` with the same
total depth and width as EditEncoder + MelDecoder (2 x 6 layers, width 512, 8 heads), on the same
(B, T) frames, forward + MSE + backward + AdamW step. It is the floor any transformer of this
size pays; the ratio shows what the edit model and its losses (above all the Griffin-Lim
resynthesis inside the multi-resolution STFT loss) add on top.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_supervised.py [--batch-size 8] [--repeats 3]

What to expect: one line per variant with s/step and frames/s (best of the rounds), then the
ratios; append them to benchmarks/RESULTS.md. All variants run in this process, alternating.
"""

from __future__ import annotations

import argparse
import time

import torch

from editorbot.models.losses import SupervisedLoss
from editorbot.models.supervised import SupervisedConfig, SupervisedEditModel
from editorbot.models.supervised_beats import BeatTrack


def _interleaved(steps: dict, rounds: int) -> dict[str, float]:
    """Best time per step of each variant over ``rounds``, alternating variants every round.

    Alternating (rather than timing one variant after the other) exposes every variant to the
    same background load on a shared machine; the minimum is the least-disturbed run.
    """
    for step in steps.values():
        step()  # warm-up: allocator, autograd graph, kernels
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _baseline_step(cfg: SupervisedConfig, B: int, device: str):
    D = cfg.encoder_dim
    layer = torch.nn.TransformerEncoderLayer(
        D, cfg.n_heads, cfg.ff_mult * D, cfg.dropout, batch_first=True, norm_first=True
    )
    net = torch.nn.Sequential(
        torch.nn.Linear(cfg.n_mels, D),
        torch.nn.TransformerEncoder(layer, 2 * cfg.n_layers, enable_nested_tensor=False),
        torch.nn.Linear(D, cfg.n_mels),
    ).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(B, cfg.crop_frames, cfg.n_mels, device=device)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(net(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def _model_step(cfg: SupervisedConfig, B: int, device: str, *, msstft: bool):
    cfg = cfg if msstft else cfg.replace(msstft_weight=0.0)
    model = SupervisedEditModel(cfg).to(device)
    loss_fn = SupervisedLoss(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    T = cfg.crop_frames
    S = torch.randn(B, cfg.n_mels, T, device=device) - 4.0
    labels = torch.zeros(B, 3, T, dtype=torch.long, device=device)
    mask = torch.ones(B, T, dtype=torch.bool, device=device)
    # The beat head reads whole tracks: here one track of the same B x T frames, a beat every 43
    # frames (0.5 s at the defaults).
    track_S = S.permute(1, 0, 2).reshape(cfg.n_mels, B * T).contiguous()
    beat_frame = torch.arange(0, B * T, 43, device=device)
    tracks = [BeatTrack(track_S, beat_frame, 0)]
    beat_labels = torch.zeros(1, 3, len(beat_frame), dtype=torch.long, device=device)

    def step() -> None:
        out = model(S, labels, tracks)
        terms = loss_fn(out.S_edit, S, S + 0.1, labels, mask, out.beat, beat_labels)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (best is kept)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cfg, B = SupervisedConfig(), args.batch_size
    frames = B * cfg.crop_frames
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, B={B}, "
        f"T={cfg.crop_frames}, default SupervisedConfig"
    )
    results = _interleaved(
        {
            "plain_transformer": _baseline_step(cfg, B, args.device),
            "supervised_step": _model_step(cfg, B, args.device, msstft=True),
            "supervised_step_no_msstft": _model_step(cfg, B, args.device, msstft=False),
        },
        args.repeats,
    )
    for name, sec in results.items():
        print(f"{name:28s} {sec:8.3f} s/step {frames / sec:10.1f} frames/s")
    base = results["plain_transformer"]
    for name, sec in results.items():
        print(f"{name:28s} throughput ratio vs plain_transformer: {base / sec:.2f}")


if __name__ == "__main__":
    main()
