"""bench/gpu.py's clock: per-section time budgets, one timed measurement (warm-up, CUDA
synchronisation, peak memory), and the environment record (device, versions, TF32)."""
from __future__ import annotations

import gc
import logging
import platform
import time

import torch

from symile_data.train.loss import LossInputError

log = logging.getLogger("bench.gpu")


class Clock:
    """Per-section budgets and the overall deadline; what was not measured, and why."""

    def __init__(self, budgets: dict, max_s: float):
        self.t0, self.max_s, self.budgets = time.monotonic(), max_s, budgets
        self.section, self.deadline, self.skipped, self.errors = "", 0.0, [], []

    def start(self, section: str) -> None:
        self.section = section
        self.deadline = min(time.monotonic() + self.budgets[section], self.t0 + self.max_s)
        log.info("%s (budget %.0f s)", section, self.deadline - time.monotonic())

    def why_not(self, estimate_s: float = 0.0) -> str | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            return "time budget exhausted"
        if estimate_s > left:
            return f"estimated {estimate_s:.1f} s > {left:.1f} s left of the budget"
        return None

    def run(self, section: str, fn, *args):
        """Start ``section`` and return fn(*args); None when its budget is already spent
        (listed under skipped) or when it fails (listed under errors, traceback on stderr):
        one broken part, a transformers API change on the GPU host say, must not cost the
        other figures of a scarce GPU run."""
        self.start(section)
        if (why := self.why_not()) is not None:
            self.skip(f"all of {section}", why)
            return None
        try:
            return fn(*args)
        except Exception as e:
            log.exception("%s failed", section)
            self.errors.append({"section": section, "error": f"{type(e).__name__}: {e}"[:500]})
            return None
        finally:
            free()

    def skip(self, what: str, why: str) -> None:
        log.info("%s: skipped %s: %s", self.section, what, why)
        self.skipped.append({"section": self.section, "what": what, "why": why})


def measure(step, items: int, unit: str, device: torch.device, args) -> dict:
    """Rate of ``step()`` (``items`` per call); raises what ``step`` raises (OOM)."""
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync()
    t0, n = time.perf_counter(), 0
    while n < args.iters and (n == 0 or time.perf_counter() - t0 < args.seconds):
        step()
        sync()
        n += 1
    dt = time.perf_counter() - t0
    return {f"{unit}_per_s": round(items * n / dt, 2), "ms_per_iter": round(1e3 * dt / n, 3),
            "iters": n, "wall_s": round(time.perf_counter() - start, 3),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 3)
            if cuda else None}


def attempt(clock: Clock, what: str, estimate_s: float, fn, *args) -> dict | None:
    """fn(*args) unless the budget says no; out of memory / a refused size -> skipped."""
    why = clock.why_not(estimate_s)
    if why is None:
        try:
            res = fn(*args)
            log.info("  %s: %s", what, res)
            return res
        except torch.cuda.OutOfMemoryError as e:
            why = f"out of memory: {str(e).splitlines()[0][:200]}"
        except LossInputError as e:
            why = f"refused by the loss: {e}"
    clock.skip(what, why)
    free()
    return None


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def environment(dev: torch.device) -> dict:
    import transformers
    cuda = dev.type == "cuda"
    props = torch.cuda.get_device_properties(dev) if cuda else None
    return {"device": str(dev), "device_name": props.name if cuda
            else platform.processor() or platform.machine(),
            "gpu_memory_gib": round(props.total_memory / 2 ** 30, 2) if cuda else None,
            "capability": list(torch.cuda.get_device_capability(dev)) if cuda else None,
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cpu_threads": torch.get_num_threads()}
