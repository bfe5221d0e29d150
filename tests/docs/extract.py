"""Fenced code blocks of README.md and docs/*.md, with their file, line and doctest marker.

A block is a fence (```LANG ... ```) whose LANG is one of LANGS; a fence without a language
or with another one is reported as a problem (every block must say what it is). An optional
marker on the line right before the fence says how the suite checks the block:

    <!-- doctest: KIND REASON -->

KIND in PARSE_ONLY (needs-data, needs-gpu, parse-only: REASON required) means "parse-check
only": the flags, params keys, scripts and imports are checked, nothing runs. ``usage`` marks a
synopsis (``[--opt X]`` optional, ``{a,b}`` / ``a|b`` alternatives), parse-checked with each
alternative. A ``text`` block (trees, layouts) is not code and takes no marker. Every other
shell / python / yaml block runs against the toy chain (tests/docs/test_docs.py).
"""
from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LANGS = {"bash": "shell", "sh": "shell", "python": "python", "yaml": "yaml", "text": "text"}
PARSE_ONLY = ("needs-data", "needs-gpu", "parse-only")
KINDS = PARSE_ONLY + ("usage",)
FENCE = re.compile(r"^(\s*)```(.*)$")
MARKER = re.compile(r"^\s*<!--\s*doctest:\s*(?P<kind>\S+)(?P<reason>.*?)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    file: str          # repo-relative path, e.g. "docs/m3.md"
    line: int          # 1-based line of the first code line (the one after the fence)
    lang: str          # "shell", "python", "yaml", "text"
    text: str          # the code, dedented by the fence's indent
    kind: str = "run"  # "run", a PARSE_ONLY kind or "usage"
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.kind == "run" and self.lang != "text"


def doc_files(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def extract(path: Path, repo: Path = REPO) -> tuple[list[Block], list[str]]:
    """(blocks, problems) of one markdown file; problems name file:line."""
    rel = str(path.relative_to(repo))
    lines = path.read_text().splitlines()
    blocks, problems = [], []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        marker = MARKER.match(lines[i])
        if marker and not (i + 1 < len(lines) and FENCE.match(lines[i + 1])):
            problems.append(f"{rel}:{i + 1}: doctest marker not directly before a fence")
        if not m:
            i += 1
            continue
        indent, lang = len(m.group(1)), m.group(2).strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            problems.append(f"{rel}:{i + 1}: fence never closed")
            break
        body = "\n".join(line[indent:] for line in lines[i + 1:end])
        kind, reason = "run", ""
        prev = MARKER.match(lines[i - 1]) if i else None
        if prev:
            kind, reason = prev.group("kind"), prev.group("reason").strip()
        where = f"{rel}:{i + 1}"
        if lang not in LANGS:
            problems.append(f"{where}: fence language {lang!r}: use one of {', '.join(LANGS)}")
        elif kind not in KINDS + ("run",):
            problems.append(f"{where}: unknown doctest kind {kind!r}: use one of "
                            f"{', '.join(KINDS)}")
        elif kind in PARSE_ONLY and not reason:
            problems.append(f"{where}: doctest {kind} needs a reason")
        elif LANGS[lang] == "text" and prev:
            problems.append(f"{where}: a text block takes no doctest marker")
        else:
            blocks.append(Block(rel, i + 2, LANGS[lang], body, kind, reason))
        i = end + 1
    return blocks, problems


def all_blocks(repo: Path = REPO) -> tuple[list[Block], list[str]]:
    blocks, problems = [], []
    for path in doc_files(repo):
        b, p = extract(path, repo)
        blocks += b
        problems += p
    return blocks, problems


@dataclasses.dataclass(frozen=True)
class Command:
    line: int              # doc line where the command starts
    argv: list[str]        # one simple command: env assignments and `&&`, `|`, `;` split off


SEPARATORS = {"&&", "||", ";", "|", "&"}


def logical_lines(block: Block) -> list[tuple[int, str]]:
    """(doc line, text) of each shell line, ``\\`` continuations (and in a ``usage`` block,
    indented lines) joined, blank and comment-only lines dropped."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for n, line in enumerate(block.text.splitlines()):
        if not pending:
            start = block.line + n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        pending += line
        if block.kind == "usage" and out and line[:1].isspace():
            out[-1] = (out[-1][0], f"{out[-1][1]} {pending}")
        elif pending.strip() and not pending.lstrip().startswith("#"):
            out.append((start, pending))
        pending = ""
    return out


REDIRECTS = (">", ">>", "<", ">&", "&>")


def shell_commands(block: Block) -> list[Command]:
    """The simple commands of a shell block (comments dropped, `&&`, `|`, `;` split).
    In a ``usage`` block ``[`` / ``]`` are dropped and ``|`` stays inside a word."""
    out: list[Command] = []
    for start, line in logical_lines(block):
        if block.kind == "usage":
            words = shlex.split(line.replace("[", " ").replace("]", " "), comments=True)
            out += [Command(start, words)] if words else []
            continue
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split, lex.commenters = True, "#"
        argv: list[str] = []
        words = [*lex, ";"]
        i = 0
        while i < len(words):
            word = words[i]
            if word in SEPARATORS:
                out += [Command(start, argv)] if argv else []
                argv = []
            elif word in REDIRECTS:        # "> gpu.json", "2> err": not an argument
                i += 1
            elif argv and word.isdigit() and i + 1 < len(words) and words[i + 1] in REDIRECTS:
                pass                       # the fd of "2>"
            else:
                argv.append(word)
            i += 1
    return out
