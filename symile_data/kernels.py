"""Same bytes on any x86-64 CPU: pin the numeric kernels before torch / numpy load (issue 21).

Floating-point results depend on which kernels run, and torch, MKL, oneDNN, numpy and glibc's
libm choose them by the CPU they find: the same training gave four different ``last.pt`` under
ATen capability avx2 / avx512 / default with and without MKL conditional reproducibility. A DVC
stage's outputs are checked by md5 (``dvc.lock``), so every stage script and the ``symile-data``
command call :func:`pin_kernels` first. ``SYMILE_KERNELS`` picks the mode:

- ``portable`` (default): the kernels every x86-64-v2 CPU runs (numpy 2 needs v2), the same
  on every one: ATen's scalar ("default") kernels, MKL's SSE2 "COMPATIBLE" path in STRICT
  conditional-reproducibility mode (no RCPPS / RSQRTPS, whose tables differ by vendor; results
  independent of the thread count), oneDNN capped at SSE4.1, numpy's baseline loops only,
  glibc's libm without its FMA / AVX2 variants (Python's ``0.999 ** k`` in AdamW's bias
  correction differs in the last bit between an FMA CPU and one without), and a fixed
  intra-op thread count (``SYMILE_THREADS``, default 2) since a parallel reduction's order
  follows its thread count. Checked under emulated CPUs by bench/cross_cpu.py; 1.2-1.7x the
  CPU time of ``native`` on the demo's training (bench/kernels.py). An AVX2-level pin (ATen
  avx2, MKL AVX2, oneDNN AVX2) was measured too and did NOT give the same bytes on an
  emulated Haswell, so it is not offered.
- ``native``: every choice left to the libraries (fastest; bytes may differ by CPU).

glibc reads ``GLIBC_TUNABLES`` only when a process starts, so the first call re-executes the
process once with the pinned environment (a few ms, before anything heavy is loaded). A pinned
mode overrides these variables (an ``OMP_NUM_THREADS`` left in a shell would otherwise change
the bytes); nothing is changed once torch or numpy is already imported (an embedding process,
the test suite): the variables are read when the libraries load.
"""
from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("symile_data.kernels")

MODES = ("portable", "native")
_REEXEC = "SYMILE_KERNELS_PINNED"   # set in the re-executed process: exec once only
# glibc >= 2.33 hwcaps names, then the older *_Usable names (an unknown name is ignored)
_GLIBC = ("glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX512F,-AVX2_Usable,-FMA_Usable,-FMA4_Usable,"
          "-AVX512F_Usable")
# numpy's dispatch targets: numpy 2 names (X86_V3 ...) and numpy 1 names; a name this numpy
# does not dispatch only gives an ImportWarning
_NUMPY_SIMD = ("X86_V3 X86_V4 AVX512_ICL AVX512_SPR AVX2 FMA3 F16C AVX SSE41 SSE42 POPCNT "
               "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL "
               "AVX512_FP16")


def portable_env(threads: int) -> dict[str, str]:
    """The environment that pins every kernel choice (module doc)."""
    n = str(threads)
    return {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT",
            "ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41",
            "NPY_DISABLE_CPU_FEATURES": _NUMPY_SIMD, "GLIBC_TUNABLES": _GLIBC,
            "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def pin_kernels(mode: str | None = None) -> dict[str, str]:
    """Set the pinning variables (mode from ``SYMILE_KERNELS``); returns what it set. Call
    before anything imports torch or numpy."""
    mode = mode or os.environ.get("SYMILE_KERNELS", "portable")
    if mode not in MODES:
        _refuse(f"SYMILE_KERNELS={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "native":
        return {}
    loaded = [m for m in ("torch", "numpy") if m in sys.modules]
    if loaded:
        log.debug("kernels not pinned here: %s already imported", ", ".join(loaded))
        return {}
    threads = os.environ.get("SYMILE_THREADS", "2")
    if not threads.isdigit() or int(threads) < 1:
        _refuse(f"SYMILE_THREADS={threads!r}: expected a positive integer")
    wanted = portable_env(int(threads))
    os.environ.update(wanted)
    if os.environ.get(_REEXEC) != wanted["GLIBC_TUNABLES"] and _reexec_allowed():
        os.environ[_REEXEC] = wanted["GLIBC_TUNABLES"]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    return wanted


def _refuse(message: str) -> None:
    """A bad setting, found before any stage's error boundary runs (the pin is the first
    line of every script): the boundary's one line and exit code 2, no traceback."""
    print(f"configuration error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _reexec_allowed() -> bool:
    """Only a process started from a command line that can be run again as it was."""
    argv = getattr(sys, "orig_argv", None)
    return bool(argv) and len(argv) > 1 and argv[1] not in ("-c", "-") and bool(sys.executable)


def pinned_threads() -> int | None:
    """The intra-op thread count a pinned mode fixed for this process (None: not pinned)."""
    if os.environ.get("SYMILE_KERNELS", "portable") == "native":
        return None
    n = os.environ.get("OMP_NUM_THREADS", "")
    return int(n) if n.isdigit() and int(n) > 0 else None


def apply_threads() -> None:
    """Give torch the pinned intra-op thread count (torch caps OMP_NUM_THREADS at the cores it
    sees, so a 1-core machine would run 1 thread where the pin says 2). Called where torch
    compute starts (the device pickers); an explicit ``torch_threads`` param set later wins."""
    n = pinned_threads()
    if n:
        import torch
        torch.set_num_threads(n)
