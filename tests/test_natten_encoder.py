"""The neighbourhood-attention fallback against NATTEN, and the encoder built on it."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from editorbot.errors import ParameterError
from editorbot.models.natten_encoder import (
    EncoderConfig,
    HybridNATTENEncoder,
    neighborhood_attention_1d,
    neighborhood_mask,
)

natten = pytest.importorskip("natten")

# (W, K, dilation): W == K, W == K * dilation, odd/even lengths with uneven dilation groups,
# and the default kernel 33 on the default 64-beat window.
CASES = [(9, 9, 1), (20, 5, 1), (33, 33, 1), (40, 7, 2), (41, 7, 3), (21, 7, 3), (64, 33, 1),
         (64, 9, 4), (64, 3, 21), (15, 5, 3)]  # fmt: skip


def _na1d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, K: int, d: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NATTEN warns that its CPU path is for debugging
        return natten.na1d(q, k, v, kernel_size=K, dilation=d)


@pytest.mark.parametrize(("W", "K", "d"), CASES)
def test_fallback_equals_natten_forward(W: int, K: int, d: int) -> None:
    torch.manual_seed(W * 100 + K * 10 + d)
    q, k, v = (torch.randn(2, W, 3, 16) for _ in range(3))
    expected = _na1d(q, k, v, K, d)
    got = neighborhood_attention_1d(q, k, v, kernel_size=K, dilation=d)
    # 1e-5: both are float32 softmax-weighted sums of unit-scale values over <= 64 keys; they
    # differ only in summation order (~1e-7 observed); a wrong key set gives errors of ~0.1.
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("W", "K", "d"), CASES)
def test_every_query_sees_exactly_kernel_size_keys(W: int, K: int, d: int) -> None:
    mask = neighborhood_mask(W, kernel_size=K, dilation=d)
    assert mask.sum(dim=1).tolist() == [K] * W  # borders shift the window, they do not cut it
    keys = mask.nonzero()
    assert bool(((keys[:, 0] - keys[:, 1]) % d == 0).all())  # keys share the query's group


def _naive_na1d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, K: int) -> torch.Tensor:
    """Dilation-1 neighbourhood attention written out query by query (borders shifted)."""
    B, W, H, E = q.shape
    out = torch.empty_like(q)
    for i in range(W):
        start = min(max(i - K // 2, 0), W - K)
        keys, values = k[:, start : start + K], v[:, start : start + K]  # [B, K, H, E]
        scores = torch.einsum("bhe,bkhe->bhk", q[:, i], keys) / E**0.5
        out[:, i] = torch.einsum("bhk,bkhe->bhe", scores.softmax(-1), values)
    return out


def test_gradients_flow_through_fallback_and_match_naive() -> None:
    torch.manual_seed(0)
    W, K = 24, 7
    inputs = [torch.randn(2, W, 2, 8, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    weights = torch.randn(2, W, 2, 8, dtype=torch.float64)
    (neighborhood_attention_1d(*inputs, kernel_size=K) * weights).sum().backward()
    fallback_grads = [t.grad.clone() for t in inputs if t.grad is not None]
    assert len(fallback_grads) == 3
    for t in inputs:
        t.grad = None
    (_naive_na1d(*inputs, K) * weights).sum().backward()
    for got, expected in zip(fallback_grads, [t.grad for t in inputs], strict=True):
        assert expected is not None and float(got.abs().max()) > 0
        # 1e-10: float64 with the same maths; only the summation order differs.
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


def test_default_config_is_the_seed_and_spans_many_beats() -> None:
    cfg = EncoderConfig(n_token_features=130, n_globals=5)
    assert (cfg.hidden, cfg.heads, cfg.layers, cfg.kernel_size) == (512, 8, 3, 33)
    assert cfg.window >= 64 and EncoderConfig.tiny().window >= 64


def _tiny_encoder(layers: int) -> HybridNATTENEncoder:
    torch.manual_seed(0)
    cfg = EncoderConfig(n_token_features=8, n_globals=4, window=64, hidden=32, heads=4,
                        layers=layers, kernel_size=9, mlp_ratio=2.0, backend="torch")  # fmt: skip
    return HybridNATTENEncoder(cfg).eval()


def _cursor_change(enc: HybridNATTENEncoder, beat: int) -> float:
    """How much the cursor beat's features move when token ``beat`` changes."""
    tokens = torch.randn(2, 64, 8)
    changed = tokens.clone()
    changed[:, beat] += 3.0
    with torch.no_grad():
        before, after = enc.encode_tokens(tokens), enc.encode_tokens(changed)
    return float((after[:, 32] - before[:, 32]).abs().max())


def test_attention_mixes_across_beats_within_the_receptive_field() -> None:
    enc = _tiny_encoder(layers=1)  # cursor 32, K = 9: receptive field beats 28..36
    assert _cursor_change(enc, 36) > 1e-3  # a neighbour moves the cursor's features
    assert _cursor_change(enc, 28) > 1e-3
    # Outside the neighbourhood masked keys get exactly zero weight: any leak would be > 1e-3.
    assert _cursor_change(enc, 37) < 1e-6
    assert _cursor_change(enc, 0) < 1e-6
    # A second layer widens the receptive field to 32 ± 8.
    assert _cursor_change(_tiny_encoder(layers=2), 40) > 1e-3


def test_encoder_shapes_and_backward() -> None:
    torch.manual_seed(0)
    enc = HybridNATTENEncoder(EncoderConfig.tiny())  # backend "auto": the fallback on CPU
    tokens, globals_ = torch.randn(3, 64, 8), torch.randn(3, 4)
    out = enc(tokens, globals_)
    assert out.shape == (3, 32)
    out.square().mean().backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert enc.pos_embedding.grad is not None and float(enc.pos_embedding.grad.abs().sum()) > 0


def test_natten_and_torch_backends_agree_in_the_encoder() -> None:
    torch.manual_seed(0)
    base = EncoderConfig(n_token_features=8, n_globals=4, window=64, hidden=32, heads=4,
                         layers=2, kernel_size=9, dilation=2, backend="torch")  # fmt: skip
    enc_torch = HybridNATTENEncoder(base).eval()
    enc_natten = HybridNATTENEncoder(EncoderConfig(**{**base.__dict__, "backend": "natten"}))
    enc_natten.load_state_dict(enc_torch.state_dict())
    tokens, globals_ = torch.randn(2, 64, 8), torch.randn(2, 4)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = enc_torch(tokens, globals_), enc_natten.eval()(tokens, globals_)
    # 1e-4: two layers plus the fusion amplify the 1e-7 attention differences a little.
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_bad_configs_name_the_problem() -> None:
    with pytest.raises(ParameterError, match="kernel_size=8, need an odd"):
        EncoderConfig(n_token_features=8, n_globals=0, kernel_size=8)
    with pytest.raises(ParameterError, match="exceeds window=64"):
        EncoderConfig(n_token_features=8, n_globals=0, kernel_size=33, dilation=2)
    with pytest.raises(ParameterError, match="not divisible by heads"):
        EncoderConfig(n_token_features=8, n_globals=0, hidden=30, heads=4)
    enc = _tiny_encoder(layers=1)
    with pytest.raises(ParameterError, match=r"expected \[B, 64, 8\]"):
        enc(torch.randn(1, 63, 8), torch.randn(1, 4))


def test_encoder_and_spaces_import_without_ray() -> None:
    # The encoder and the observation contract are plain PyTorch / gymnasium (no Ray needed).
    code = (
        "import sys, editorbot.models.natten_encoder, editorbot.envs.spaces; "
        "sys.exit('ray' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
