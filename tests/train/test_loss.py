"""The vectorised losses against straightforward loop implementations (reference style)."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from symile_data.train.loss import (LossInputError, clip_loss, clip_scores, mip_scores,
                                    mip_tensor, symile_loss)


def _ce_row(logits_row, target):
    return -(logits_row[target] - torch.logsumexp(logits_row, 0))


def loop_symile_n2(embs, logit_scale):
    """Every anchor, every row, every combination of the other rows: plain Python loops."""
    n, m = embs[0].shape[0], len(embs)
    scale = logit_scale.exp()
    total = 0.0
    for a in range(m):
        others = [e for k, e in enumerate(embs) if k != a]
        for i in range(n):
            row, target = [], None
            for col, combo in enumerate(itertools.product(range(n), repeat=m - 1)):
                v = embs[a][i].clone()
                for o, j in zip(others, combo):
                    v = v * o[j]
                row.append(v.sum())
                if all(j == i for j in combo):
                    target = col
            total = total + _ce_row(scale * torch.stack(row), target) / n
    return total / m


def loop_symile_n(embs, logit_scale, generator):
    n, m = embs[0].shape[0], len(embs)
    scale = logit_scale.exp()
    total = 0.0
    for a in range(m):
        perms = {k: torch.randperm(n, generator=generator) for k in range(m) if k != a}
        for i in range(n):
            row = []
            for j in range(n):
                v = embs[a][i].clone()
                for k, perm in perms.items():
                    v = v * embs[k][i if j == i else perm[j]]
                row.append(v.sum())
            total = total + _ce_row(scale * torch.stack(row), i) / n
    return total / m


def loop_clip(embs, logit_scale):
    scale = logit_scale.exp()
    total = 0.0
    for x, y in itertools.combinations(embs, 2):
        n = x.shape[0]
        lx = sum(_ce_row(scale * torch.stack([x[i] @ y[j] for j in range(n)]), i)
                 for i in range(n)) / n
        ly = sum(_ce_row(scale * torch.stack([y[i] @ x[j] for j in range(n)]), i)
                 for i in range(n)) / n
        total = total + (lx + ly) / 2
    return total


def _embs(m, n=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
            for _ in range(m)]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_n_squared_matches_loop(m):
    embs = _embs(m)
    ls = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    got = symile_loss(embs, ls, "n_squared")
    want = loop_symile_n2(embs, ls)
    assert torch.allclose(got, want, atol=1e-10)
    g_got = torch.autograd.grad(got, embs + [ls])
    g_want = torch.autograd.grad(want, embs + [ls])
    for a, b in zip(g_got, g_want):
        assert torch.allclose(a, b, atol=1e-10)


def test_n_squared_chunked_equals_unchunked():
    embs = _embs(3, n=6, d=5)
    ls = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    full = symile_loss(embs, ls, "n_squared", chunk_elements=10 ** 9)
    tiny = symile_loss(embs, ls, "n_squared", chunk_elements=1)     # one row per chunk
    assert torch.allclose(full, tiny)
    for a, b in zip(torch.autograd.grad(full, embs), torch.autograd.grad(tiny, embs)):
        assert torch.allclose(a, b)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_n_matches_loop_with_seeded_generator(m):
    embs = _embs(m, n=6)
    ls = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    got = symile_loss(embs, ls, "n", generator=torch.Generator().manual_seed(7))
    want = loop_symile_n(embs, ls, torch.Generator().manual_seed(7))
    assert torch.allclose(got, want, atol=1e-10)
    for a, b in zip(torch.autograd.grad(got, embs + [ls]), torch.autograd.grad(want, embs + [ls])):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_clip_matches_loop(m):
    embs = _embs(m)
    ls = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    got, want = clip_loss(embs, ls), loop_clip(embs, ls)
    assert torch.allclose(got, want, atol=1e-10)
    for a, b in zip(torch.autograd.grad(got, embs + [ls]), torch.autograd.grad(want, embs + [ls])):
        assert torch.allclose(a, b, atol=1e-10)


def test_m2_n_squared_is_symmetric_infonce():
    embs = _embs(2)
    ls = torch.tensor(0.0, dtype=torch.float64)
    assert torch.allclose(symile_loss(embs, ls, "n_squared"), clip_loss(embs, ls))


def test_gradcheck_n_squared():
    embs = _embs(3, n=3, d=2)
    ls = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c, s: symile_loss([a, b, c], s, "n_squared", chunk_elements=2),
        (*embs, ls))


def test_normalize_option():
    embs = _embs(3)
    ls = torch.tensor(-0.3, dtype=torch.float64)
    normed = [F.normalize(e, dim=-1) for e in embs]
    assert torch.allclose(symile_loss(embs, ls, "n_squared", normalize=True),
                          symile_loss(normed, ls, "n_squared"))


def test_mip_tensor_and_scores():
    embs = _embs(3, n=4, d=3)
    t = mip_tensor(embs)
    assert t.shape == (4, 4, 4)
    assert torch.allclose(t[1, 2, 3], (embs[0][1] * embs[1][2] * embs[2][3]).sum())
    s = mip_scores(embs[0], [embs[1], embs[2]])          # (queries, candidates)
    assert torch.allclose(s[2, 1], t[1, 2, 2])
    c = clip_scores(embs[0], [embs[1], embs[2]])
    want = embs[0][1] @ embs[1][2] + embs[0][1] @ embs[2][2] + embs[1][2] @ embs[2][2]
    assert torch.allclose(c[2, 1], want)


def test_bad_inputs_are_clear_errors():
    ls = torch.tensor(0.0)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(LossInputError, match="at least 2"):
        symile_loss([a], ls)
    with pytest.raises(LossInputError, match="dimensions differ"):
        symile_loss([a, torch.randn(4, 5)], ls)
    with pytest.raises(LossInputError, match="batch sizes differ"):
        clip_loss([a, torch.randn(3, 3)], ls)
    with pytest.raises(LossInputError, match="unknown negatives"):
        symile_loss([a, b], ls, negatives="n_cubed")
    with pytest.raises(FloatingPointError, match="non-finite"):
        symile_loss([a, b.masked_fill(b > 0, math.nan)], ls)
    with pytest.raises(FloatingPointError, match="non-finite"):
        clip_loss([a, b], torch.tensor(math.inf))
    with pytest.raises(LossInputError, match="max_logits"):
        symile_loss([torch.randn(64, 2)] * 3, ls, "n_squared", max_logits=1000)


@pytest.mark.parametrize("negatives", ["n", "n_squared"])
def test_bf16_autocast_forward_backward(negatives):
    """The mixed-precision path (CUDA uses bf16 autocast; CPU autocast stands in here)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 8)
    xs = [torch.randn(6, 8) for _ in range(3)]
    ls = torch.tensor(0.0, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embs = [lin(x) for x in xs]
        assert embs[0].dtype == torch.bfloat16
        loss = symile_loss(embs, ls, negatives, torch.Generator().manual_seed(0),
                           chunk_elements=8)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert lin.weight.grad.dtype == torch.float32 and torch.isfinite(lin.weight.grad).all()
    ref = symile_loss([lin(x) for x in xs], ls, negatives, torch.Generator().manual_seed(0))
    assert abs(loss.item() - ref.item()) < 0.1            # bf16 close to fp32
