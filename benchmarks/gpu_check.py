"""GPU check: NATTEN's CUDA path against the exact fallback, and encoder updates/s GPU vs CPU.

How to run (on a machine with a CUDA GPU; ``benchmarks/gpu_check.sh`` runs this and one
``train rl`` iteration with a GPU learner)::

    .venv/bin/python benchmarks/gpu_check.py [--batch 256] [--steps 20]

What to expect: the largest |difference| of ``natten.na1d`` against
:func:`~editorbot.models.natten_encoder.neighborhood_attention_1d` on CUDA, forward and
backward (float32; a few 1e-6 is rounding, anything near 1e-2 is a wrong neighbourhood); then
forward+backward+Adam steps/s of the default-size encoder on the CPU (one thread), on CUDA with
the fallback and on CUDA with NATTEN, each as a ratio to the CPU. Exits 1 when there is no GPU
or the kernels disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from editorbot.models.natten_encoder import (
    EncoderConfig,
    HybridNATTENEncoder,
    neighborhood_attention_1d,
)

_TOLERANCE = 1e-4
"""Largest |difference| accepted in float32: rounding of two summation orders, far below the
1e-2 a key missing from a neighbourhood would cause."""


def _kernel_difference(*, W: int, H: int, E: int, K: int, d: int) -> tuple[float, float]:
    import natten

    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(4, W, H, E, device="cuda", generator=g).requires_grad_() for _ in range(3)
    )
    fused = natten.na1d(q, k, v, kernel_size=K, dilation=d)
    (grad_fused,) = torch.autograd.grad(fused.square().sum(), q)
    exact = neighborhood_attention_1d(q, k, v, kernel_size=K, dilation=d)
    (grad_exact,) = torch.autograd.grad(exact.square().sum(), q)
    return (fused - exact).abs().max().item(), (grad_fused - grad_exact).abs().max().item()


def _steps_per_sec(cfg: EncoderConfig, device: str, *, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = HybridNATTENEncoder(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    tokens = torch.randn(batch, cfg.window, cfg.n_token_features, device=device)
    globals_ = torch.randn(batch, cfg.n_globals, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(tokens, globals_).square().mean().backward()
        opt.step()

    step()  # warm-up: kernel selection, allocator
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="[observations] per update")
    parser.add_argument("--steps", type=int, default=20, help="timed updates per device")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check")
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    worst = 0.0
    for W, K, d in ((64, 33, 1), (64, 9, 4), (64, 17, 2)):
        fwd, bwd = _kernel_difference(W=W, H=8, E=64, K=K, d=d)
        worst = max(worst, fwd, bwd)
        print(f"na1d vs fallback W={W} K={K} d={d}: max|dy| {fwd:.2e}, max|dq grad| {bwd:.2e}")
    cfg = EncoderConfig(n_token_features=128, n_globals=8)  # the default (512-wide) encoder
    torch.set_num_threads(1)
    cpu = _steps_per_sec(
        dataclasses.replace(cfg, backend="torch"), "cpu", batch=args.batch, steps=3
    )
    print(f"encoder updates/s, batch {args.batch}: CPU (1 thread, fallback) {cpu:.2f}")
    for backend in ("torch", "natten"):
        rate = _steps_per_sec(
            dataclasses.replace(cfg, backend=backend), "cuda", batch=args.batch, steps=args.steps
        )
        print(f"  CUDA ({backend}): {rate:.1f}/s = {rate / cpu:.1f}x the CPU")
    ok = worst <= _TOLERANCE
    print(f"kernels agree within {_TOLERANCE:g}: {'yes' if ok else 'NO'} (worst {worst:.2e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
