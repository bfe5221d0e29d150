"""Benchmark: Symile O(N), Symile O(N^2) and CLIP, forward + backward, M = 3.

Each (impl, loss, N, d) runs in a fresh subprocess so that peak memory is its own: the
figure is the peak RSS (CPU; VmHWM after resetting it) or torch.cuda.max_memory_allocated
(CUDA) above the baseline holding the inputs. ``loop`` is the original code's style: a
Python loop over anchors (and, for O(N^2), over rolls building the N^2 x d product of the
other modalities). Loop runs whose estimated memory exceeds --loop-max-gb are not started
(they would be killed for memory, as the reference is at N = 256, d = 8192).

    .venv/bin/python bench/loss.py [--device cuda] [--repeats 3]   # prints JSON
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = [(256, 512), (256, 8192), (1024, 512), (1024, 8192), (128, 8192)]


def loop_symile(embs, logit_scale, negatives):
    import torch
    import torch.nn.functional as F
    n = embs[0].shape[0]
    scale = logit_scale.exp()
    labels = torch.arange(n, device=embs[0].device)
    total = 0.0
    for a in range(3):
        x, y, z = embs[a], *[e for k, e in enumerate(embs) if k != a]
        if negatives == "n":
            yz = y[torch.randperm(n)] * z[torch.randperm(n)]
            logits = x @ yz.T
            pos = (x * y * z).sum(1)
            logits = torch.where(torch.eye(n, device=x.device) > 0.5, pos, logits)
        else:
            rolls = []
            for _ in range(n):                       # the reference's roll loop
                rolls.append(y * z)
                z = torch.roll(z, shifts=1, dims=0)
            logits = x @ torch.cat(rolls, 0).T       # (N, N^2)
        total = total + F.cross_entropy(scale * logits, labels)
    return total / 3


def loop_clip(embs, logit_scale):
    import torch
    import torch.nn.functional as F
    n = embs[0].shape[0]
    labels = torch.arange(n, device=embs[0].device)
    total = 0.0
    for i in range(3):
        for j in range(i + 1, 3):
            logits = logit_scale.exp() * embs[i] @ embs[j].T
            total = total + (F.cross_entropy(logits, labels)
                             + F.cross_entropy(logits.T, labels)) / 2
    return total


def _proc_status_bytes(key: str) -> int:
    """VmRSS (current) or VmHWM (peak) of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def child(impl: str, loss: str, n: int, d: int, device: str, repeats: int) -> dict:
    import torch
    from symile_data.train.loss import clip_loss, symile_loss
    torch.manual_seed(0)
    embs = [torch.randn(n, d, device=device, requires_grad=True) for _ in range(3)]
    ls = torch.tensor(-0.3, device=device, requires_grad=True)
    gen = torch.Generator().manual_seed(0)

    def step():
        if impl == "vectorised":
            out = (clip_loss(embs, ls) if loss == "clip" else
                   symile_loss(embs, ls, "n" if loss == "symile_n" else "n_squared", gen))
        else:
            out = (loop_clip(embs, ls) if loss == "clip" else
                   loop_symile(embs, ls, "n" if loss == "symile_n" else "n_squared"))
        out.backward()
        for t in embs + [ls]:
            t.grad = None

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    step()                                           # warm-up
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as f:   # reset VmHWM to the current RSS
            f.write("5")
        base = _proc_status_bytes("VmRSS")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else _proc_status_bytes("VmHWM")) - base
    return {"step_s": min(times), "peak_mem_gb": round(peak / 2 ** 30, 3)}


def loop_estimate_gb(loss: str, n: int, d: int) -> float:
    if loss != "symile_n2":
        return 0.0
    return 3 * 2 * n * n * d * 4 / 2 ** 30          # kept (N^2, d) per anchor + the cat copy


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--loop-max-gb", type=float, default=8.0)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        impl, loss, n, d = args.child
        print(json.dumps(child(impl, loss, int(n), int(d), args.device, args.repeats)))
        return 0
    rows = []
    for n, d in SIZES:
        for loss in ("symile_n", "symile_n2", "clip"):
            if n == 128 and loss != "symile_n2":
                continue                             # extra point where the loop still fits
            row = {"N": n, "d": d, "M": 3, "loss": loss, "device": args.device}
            for impl in ("vectorised", "loop"):
                if impl == "loop" and loop_estimate_gb(loss, n, d) > args.loop_max_gb:
                    row[impl] = {"skipped": f"estimated {loop_estimate_gb(loss, n, d):.1f} GB "
                                           f"> --loop-max-gb {args.loop_max_gb}"}
                    continue
                cmd = [sys.executable, __file__, "--device", args.device, "--repeats",
                       str(args.repeats), "--child", impl, loss, str(n), str(d)]
                try:
                    res = subprocess.run(cmd, capture_output=True, text=True,
                                         timeout=args.timeout, env=dict(os.environ))
                    out = res.stdout.strip().splitlines()
                    row[impl] = (json.loads(out[-1]) if res.returncode == 0 and out else
                                 {"error": (res.stderr.strip().splitlines() or ["?"])[-1][:300]})
                except subprocess.TimeoutExpired:
                    row[impl] = {"error": f"timeout after {args.timeout} s"}
            v, lp = row.get("vectorised", {}), row.get("loop", {})
            if "step_s" in v and "step_s" in lp:
                row["speedup_vs_loop"] = round(lp["step_s"] / v["step_s"], 2)
                row["mem_ratio_vs_loop"] = round(v["peak_mem_gb"] / max(lp["peak_mem_gb"],
                                                                        1e-9), 3)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"bench": "loss", "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
