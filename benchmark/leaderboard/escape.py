"""Text from run records, made inert for each output format: LaTeX, Markdown, CSV, the rich terminal.

Why one module: records are files that researchers exchange, so every string in them (model and task names,
metric names, config values shown in the legend, checksums) is untrusted. A newline in a config value used to end
a LaTeX ``%`` comment and make the rest of the line live TeX; a cell starting with ``=`` ran as a spreadsheet
formula; raw HTML and a newline passed into the Markdown table; ``[bold red]`` was read as rich markup. Every
renderer now sends record text through the escape function of its format here, and each of them starts with
:func:`one_line`, so no format can be broken out of by a line break or a control character.

The escapes are chosen to leave ordinary names (``synth_chords``, ``mert-v1-95m``, ``probe.lr=[0.001]``)
byte-identical, so that the committed leaderboards render exactly as before.
"""
from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"

# Everything a reader (TeX, a Markdown parser, a terminal, a spreadsheet) may take as the end of a line.
_LINE_BREAKS = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Control (Cc), format (Cf: bidi overrides, zero-width characters), lone surrogates (Cs) and line/paragraph
# separators: invisible or able to reorder what is shown next to them (a right-to-left override makes "12.3"
# read as "3.21"), or unwritable as UTF-8.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def one_line(text: object) -> str:
    """``text`` as one line of visible characters: line breaks and tabs become a space, other control, format
    and surrogate characters the replacement character (visible, so a doctored name does not pass for a clean
    one). The first step of every escape below."""
    out = []
    for ch in str(text):
        if ch in _LINE_BREAKS:
            out.append(" ")
        elif unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)


# ----------------------------------------------------------------------------------------------------------------
# LaTeX

LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 # brackets: a cell starting with "[" would be read as the optional argument of the preceding
                 # \\ or \midrule; < > | print as other glyphs in the default OT1 font encoding
                 "[": "{[}", "]": "{]}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                 REPLACEMENT: "?"}
LATEX_DAGGER = r"$^\dagger$"


def latex_escape(text: object) -> str:
    """``text`` as LaTeX that typesets it literally: one line, every special character escaped (``\\`` and
    ``^`` included, so neither a command nor a ``^^`` character code can be formed)."""
    escaped = "".join(LATEX_SPECIAL.get(ch, ch) for ch in one_line(text))
    return escaped.replace("×", r"$\times$").replace("†", LATEX_DAGGER)


def latex_comment(text: object) -> str:
    """A ``%`` comment line holding ``text``. TeX ignores everything up to the end of the line after ``%``, so
    the one thing that matters is that ``text`` cannot end the line: :func:`one_line` sees to that."""
    return f"% {one_line(text)}"


# ----------------------------------------------------------------------------------------------------------------
# Markdown (GitHub-flavoured, in table cells and list items)

_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Characters that start emphasis, code, strikethrough, math (GitHub renders $...$) or split a table cell.
_MD_BACKSLASHED = frozenset("\\`*~|$")


def markdown_escape(text: object) -> str:
    """``text`` as inline Markdown that shows it literally: one line, no HTML (``< > &`` as entities), no
    emphasis, code span, math or cell break (``\\ ` * ~ | $`` backslashed), no inline link or image (the ``]``
    of ``](`` backslashed). An underscore is escaped unless it sits between two letters or digits, where it can
    never start emphasis, so ``synth_chords`` stays as it is."""
    s = one_line(text)
    out = []
    for i, ch in enumerate(s):
        before, after = s[i - 1] if i else "", s[i + 1] if i + 1 < len(s) else ""
        if ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in _MD_BACKSLASHED:
            out.append("\\" + ch)
        elif ch == "_" and not (before.isalnum() and after.isalnum()):
            out.append("\\_")
        elif ch == "]" and after == "(":
            out.append("\\]")
        else:
            out.append(ch)
    return "".join(out)


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span: a fence of more backticks than any run inside it (a backtick cannot
    be backslash-escaped in code), padded with a space where the text itself starts or ends with one."""
    s = one_line(text)
    longest = run = 0
    for ch in s:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# ----------------------------------------------------------------------------------------------------------------
# CSV

# Cells a spreadsheet evaluates as a formula (OWASP, "CSV Injection"); tab and carriage return are already
# spaces after one_line, so the first non-blank character is what is checked.
CSV_FORMULA_START = ("=", "+", "-", "@")


def csv_text(text: object) -> str:
    """A text cell safe to open in a spreadsheet: one line, and prefixed with ``'`` when it (or its first
    non-blank character) starts like a formula. Only for text; the numbers the suite formats itself (a delta
    of ``-1.2``) are written as they are, so that they stay numbers."""
    s = one_line(text)
    return "'" + s if s.lstrip().startswith(CSV_FORMULA_START) else s


# ----------------------------------------------------------------------------------------------------------------
# Terminal (rich)


def rich_text(text: object, style: str | None = None):
    """A rich ``Text``: shown literally, never parsed for markup (``[bold red]``) or emoji codes."""
    from rich.text import Text

    return Text(one_line(text), style=style or "")


# ----------------------------------------------------------------------------------------------------------------
# Plots (matplotlib) and the files they are saved to

_FILE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def plot_text(text: object) -> str:
    """Record text as matplotlib shows it literally: one line, every ``$`` escaped (text between two of them is
    parsed as mathtext: a formula shown instead of the name, or a parse error that stops the whole figure)."""
    return one_line(text).replace("$", r"\$")


def file_stem(text: object) -> str:
    """A record-given name (a task) as a plain file name: every character but letters, digits, ``_ . -``
    replaced by ``_``, and no leading dot, so ``../../x`` cannot place a file outside the plots folder."""
    stem = "".join(ch if ch in _FILE_NAME_CHARACTERS else "_" for ch in str(text))
    return "_" + stem[1:] if stem.startswith(".") else stem or "_"
