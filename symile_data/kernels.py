"""Same bytes on other x86-64 CPUs: pin the numeric kernels before torch / numpy load (issue 21).

Floating-point results depend on which kernels run, and torch, MKL, oneDNN, numpy and glibc's
libm choose them by the CPU they find: the same training gave four different ``last.pt`` under
ATen capability avx2 / avx512 / default with and without MKL conditional reproducibility. A DVC
stage's outputs are checked by md5 (``dvc.lock``), so every stage script and the ``symile-data``
command call :func:`pin_kernels` first. ``SYMILE_KERNELS`` picks the mode:

- ``portable`` (default): the x86-64-v3 kernels (AVX2 + FMA: every Intel CPU since Haswell,
  2013, every AMD CPU since Zen, 2017), the same on every such CPU: ATen's AVX2 kernels (not
  AVX-512), MKL's AVX2 path in STRICT conditional-reproducibility mode (results independent of
  the thread count), oneDNN capped at AVX2, numpy's AVX-512 loops off, glibc's libm without
  FMA4 / AVX-512 variants, and a fixed intra-op thread count (``SYMILE_THREADS``, default 2)
  since a parallel reduction's order follows its thread count. On a CPU without AVX2 + FMA
  it logs a warning and runs ``baseline``.
- ``baseline``: the kernels every x86-64-v2 CPU runs (numpy 2 needs v2): ATen's scalar
  ("default") kernels, MKL's SSE2 "COMPATIBLE" path, oneDNN capped at SSE4.1, numpy's
  baseline only, libm without FMA / AVX2 variants (Python's ``0.999 ** k`` in AdamW's bias
  correction differs in the last bit between an FMA CPU and one without). 1.2-1.7x the CPU
  time of ``portable`` on the demo's training (README "Reproducibility").
- ``native``: every choice left to the libraries (bytes may differ by CPU).

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

MODES = ("portable", "baseline", "native")
V3_FLAGS = ("avx2", "fma")          # /proc/cpuinfo flags portable mode needs
_REEXEC = "SYMILE_KERNELS_PINNED"   # set in the re-executed process: exec once only
# glibc >= 2.33 hwcaps names, then the older *_Usable names (an unknown name is ignored)
_GLIBC = {"portable": "glibc.cpu.hwcaps=-FMA4,-AVX512F,-FMA4_Usable,-AVX512F_Usable",
          "baseline": ("glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX512F,-AVX2_Usable,-FMA_Usable,"
                       "-FMA4_Usable,-AVX512F_Usable")}
# numpy's dispatch targets: numpy 2 names (X86_V3 ...) and numpy 1 names; a name this numpy
# does not dispatch only gives an ImportWarning
_NUMPY_AVX512 = ("X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_KNL AVX512_KNM "
                 "AVX512_SKX AVX512_CLX AVX512_CNL AVX512_FP16")
_NUMPY = {"portable": _NUMPY_AVX512,
          "baseline": "X86_V3 AVX2 FMA3 F16C AVX SSE41 SSE42 POPCNT " + _NUMPY_AVX512}
_LEVEL = {  # ATen capability, MKL_CBWR branch, oneDNN max ISA
    "portable": ("avx2", "AVX2,STRICT", "AVX2"),
    "baseline": ("default", "COMPATIBLE,STRICT", "SSE41"),
}


def portable_env(threads: int, mode: str = "portable") -> dict[str, str]:
    """The environment that pins every kernel choice of ``mode`` (module doc)."""
    aten, mkl, dnnl = _LEVEL[mode]
    n = str(threads)
    return {"ATEN_CPU_CAPABILITY": aten, "MKL_CBWR": mkl, "ONEDNN_MAX_CPU_ISA": dnnl,
            "DNNL_MAX_CPU_ISA": dnnl, "NPY_DISABLE_CPU_FEATURES": _NUMPY[mode],
            "GLIBC_TUNABLES": _GLIBC[mode], "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def cpu_has_v3(cpuinfo: str = "/proc/cpuinfo") -> bool:
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return False
    return all(flag in flags for flag in V3_FLAGS)


def pin_kernels(mode: str | None = None) -> dict[str, str]:
    """Set the pinning variables (mode from ``SYMILE_KERNELS``); returns what it set. Call
    before anything imports torch or numpy."""
    mode = mode or os.environ.get("SYMILE_KERNELS", "portable")
    if mode not in MODES:
        raise ValueError(f"SYMILE_KERNELS={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "native":
        return {}
    loaded = [m for m in ("torch", "numpy") if m in sys.modules]
    if loaded:
        log.debug("kernels not pinned here: %s already imported", ", ".join(loaded))
        return {}
    threads = os.environ.get("SYMILE_THREADS", "2")
    if not threads.isdigit() or int(threads) < 1:
        raise ValueError(f"SYMILE_THREADS={threads!r}: expected a positive integer")
    if mode == "portable" and not cpu_has_v3():
        log.warning("this CPU lacks %s: running SYMILE_KERNELS=baseline kernels, so outputs "
                    "are not the bytes of an x86-64-v3 run (dvc.lock); run every machine with "
                    "SYMILE_KERNELS=baseline to compare", "+".join(V3_FLAGS))
        mode = "baseline"
    wanted = portable_env(int(threads), mode)
    os.environ.update(wanted)
    if os.environ.get(_REEXEC) != wanted["GLIBC_TUNABLES"] and _reexec_allowed():
        os.environ[_REEXEC] = wanted["GLIBC_TUNABLES"]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    return wanted


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
