"""The one way in: every DVC stage script and every ``symile-data`` subcommand runs through here.

A ``Command`` is a name, a help line, ``add_args(parser)`` (the ONE definition of its
arguments), ``run(args) -> int`` and ``locks`` / ``file_locks`` (the output-folder args, and
the output-file args whose folder, to lock while it runs: see symile_data.io.lock), and
starts a fresh restricted-input record (symile_data.io.lineage). ``pipelines/<stage>.py`` is::

    from symile_data.mimic.cli import COHORT
    from symile_data.stage import run_stage

    def main(argv=None):
        return run_stage(COHORT, argv)

and the domain's ``register(subparsers)`` adds the same ``Command`` with ``add_command``, so the
stage script and the subcommand take the same arguments with the same defaults.
``run_stage`` adds ``--log-level`` (default INFO, so logs show under ``dvc repro``), configures
logging and calls ``guarded``: an input error (``symile_data.errors``) prints one line to
stderr and returns 2; with ``--log-level DEBUG`` the traceback comes first.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from symile_data.errors import EXIT_INPUT_ERROR, is_input_error, one_line, writing
from symile_data.io import lineage
from symile_data.io.lock import folder_lock, remove_stale_tmp

log = logging.getLogger("symile_data.stage")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclasses.dataclass(frozen=True)
class Command:
    name: str                                          # DVC stage name (prog of the script)
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    # names of args that are output FOLDERS this command alone writes: each is locked for the
    # run (a second writer stops at once) and cleared of temporaries of killed runs. Leave
    # empty for matrix stages whose items share an output root.
    locks: tuple[str, ...] = ()
    # names of args that are output FILES written with siblings (metrics.json + per_query/):
    # their folder is locked too (its stale temporaries swept, not recursively: it may be ".")
    file_locks: tuple[str, ...] = ()

    def __call__(self, args: argparse.Namespace) -> int:
        lineage.reset()          # restricted reads of an earlier run in this process: not ours
        with contextlib.ExitStack() as stack:
            folders = [getattr(args, name) for name in self.locks if getattr(args, name, None)]
            if folders:   # a full disk no writer below named: name the output folder(s)
                stack.enter_context(writing(", ".join(map(str, folders)), f"output of {self.name}"))
            for folder in folders:
                stack.enter_context(folder_lock(folder))
                remove_stale_tmp(folder, recursive=True)
            for name in self.file_locks:
                path = getattr(args, name, None)
                if path:
                    stack.enter_context(folder_lock(Path(path).parent))
            return int(self.run(args) or 0)


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS,
                        help="logging level (DEBUG also prints tracebacks of input errors)")


_handler: logging.Handler | None = None


def configure_logging(level: str) -> None:
    """Log to (the current) stderr at ``level``. Replaces only the handler a previous call
    installed, so handlers of the host (pytest, an embedding app) stay."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(_handler)
    root.setLevel(getattr(logging, level))


def guarded(fn: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
            log_level: str = "INFO") -> int:
    """``fn(args)`` behind the error boundary: exit code, or 2 with one line on an input error."""
    try:
        return int(fn(args) or 0)
    except Exception as e:  # noqa: BLE001 -- re-raised unless it is an input error
        if not is_input_error(e):
            raise
        if log_level == "DEBUG":
            traceback.print_exc(file=sys.stderr)
        print(one_line(e), file=sys.stderr)
        return EXIT_INPUT_ERROR


def build_stage_parser(cmd: Command) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=cmd.name, description=cmd.help)
    cmd.add_args(parser)
    add_log_level(parser)
    return parser


def run_stage(cmd: Command, argv: list[str] | None = None) -> int:
    """Entry point of ``pipelines/<stage>.py``: parse, log at INFO, run behind the boundary."""
    args = build_stage_parser(cmd).parse_args(argv)
    configure_logging(args.log_level)
    log.debug("stage %s: start %s", cmd.name, vars(args))
    t0 = time.perf_counter()
    rc = guarded(cmd, args, args.log_level)
    if rc == 0:  # (a failure's one error line stays the only line)
        log.info("stage %s: done in %.1f s", cmd.name, time.perf_counter() - t0)
    return rc


def add_command(sub: argparse._SubParsersAction, name: str, cmd: Command
                ) -> argparse.ArgumentParser:
    """Register ``cmd`` as subcommand ``name`` of ``symile-data`` (same arguments)."""
    p = sub.add_parser(name, help=cmd.help, description=cmd.help)
    cmd.add_args(p)
    p.set_defaults(func=cmd, command_obj=cmd)
    return p
