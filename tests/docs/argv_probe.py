"""Parse a script's arguments with its own parser and stop there (nothing of its work runs).

stdin: JSON ``[[script, [arg, ...]], ...]`` (paths relative to the repository root; the
process runs in a scratch folder);
stdout: JSON ``["" or the parser's error, ...]`` in the same order. Each script runs as
``__main__`` until its first ``ArgumentParser.parse_known_args`` (``parse_args`` calls it),
which parses and then stops it; arguments the parser does not know are an error even where
the script calls ``parse_known_args`` (it would ignore them or hand them on).
Run with ``SYMILE_KERNELS=native`` (a stage script's pin_kernels would re-execute this process).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import runpy
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIMIT_S = 30          # seconds a script may take to reach its parser (imports)


class Parsed(Exception):
    """Raised after the script's parser ran; ``args[0]``: the arguments it did not know."""


def _stop_after_parse(real):
    depth = [0]                               # subparsers parse inside their parent's call

    def parse_known_args(self, args=None, namespace=None):
        self.allow_abbrev = False             # a renamed flag must not pass as an abbreviation
        depth[0] += 1
        try:
            _, extras = real(self, args, namespace)
        finally:
            depth[0] -= 1
        if depth[0]:
            return _, extras
        raise Parsed(extras)
    return parse_known_args


def _too_slow(signum, frame):
    raise TimeoutError(f"no parse_known_args within {LIMIT_S} s: the script ran on")


def probe(script: str, argv: list[str]) -> str:
    err = io.StringIO()
    sys.argv = [script, *argv]
    signal.alarm(LIMIT_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
    except Parsed as parsed:
        extras = parsed.args[0]
        return f"unrecognized arguments: {' '.join(extras)}" if extras else ""
    except SystemExit as e:
        if e.code in (0, None) and not err.getvalue():
            return "" if "-h" in argv or "--help" in argv else "exited before parsing arguments"
        return " ".join(err.getvalue().split()[-30:]) or f"exit {e.code}"
    except Exception as e:  # noqa: BLE001 -- reported as this call's problem
        return f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
    return "the script never parsed its arguments"


def main() -> int:
    parser = argparse.ArgumentParser
    parser.parse_known_args = _stop_after_parse(parser.parse_known_args)
    signal.signal(signal.SIGALRM, _too_slow)
    calls = json.load(sys.stdin)
    json.dump([probe(str(REPO / script), argv) for script, argv in calls], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
