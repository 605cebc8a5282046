"""Ctrl-C during a run: one message saying where the run stopped and what was kept, and exit status 130.

Why a module of its own: a KeyboardInterrupt can strike in any stage, and two things stood between it and the
user. Lightning catches it inside ``Trainer.fit``, logs a line our log settings hide, ignores further SIGINTs and
calls ``sys.exit(1)`` (``lightning/pytorch/trainer/call.py``, ``_call_and_handle_interrupt``): the command ended
with status 1 and nothing said. And a bare "interrupted" does not tell whether hours of extraction were kept.

:func:`lightning_interrupts` turns Lightning's exit back into an interruption, :func:`reported_interrupts` names
the stage of any other one, and the command line prints :func:`interrupted_message` and exits with 130.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType, TracebackType
from typing import Callable, Iterator

RESUME = ("run the same command again to resume (extraction continues from its last saved shard, training from "
          "its last saved epoch)")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C in a run, with ``where`` it stopped and what was kept there (still a KeyboardInterrupt, so code
    that lets interruptions through keeps doing so)."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def interrupted_message(exc: BaseException) -> str:
    """The one paragraph the command line prints for a Ctrl-C (the stage, when known, and how to resume)."""
    where = f" during {exc.where}" if isinstance(exc, RunInterrupted) else ""
    return f"interrupted{where}. Finished work is kept: {RESUME}."


def _frames(tb: TracebackType | None) -> Iterator[FrameType]:
    """The frames an exception passed through, outermost first."""
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _describe(frame: FrameType) -> str | None:
    """What a run was doing in ``frame``, by the stage function it belongs to (None for any other function).

    Read from the interrupted frames rather than announced by each stage, so the stage modules carry no
    bookkeeping for this message: their function names and argument names are the contract.
    """
    name, local = frame.f_code.co_name, frame.f_locals
    if name == "extract_split":
        cache = getattr(local.get("cache"), "dir", None)
        return (f"extraction of the {local.get('split')} split's features (cache {cache}: every complete shard is "
                f"kept)")
    if name == "checked_tracks":
        return "the dataset check (nothing was computed yet)"
    if name == "build_encoder":
        return "loading the encoder (nothing was computed yet)"
    if name == "train_sweep":  # Trainer.fit reports its own interruptions (lightning_interrupts)
        if "metrics" in local:
            return "scoring the trained probes on valid and test (the sweep checkpoint holds the training)"
        return "the set-up of the probe sweep (the features are cached)"
    if name == "write_record":
        return f"writing the record {local.get('path')} (the sweep checkpoint holds the training)"
    return None


def stage_of(exc: BaseException) -> str | None:
    """The innermost run stage ``exc`` passed through, described, or None when it hit none of them."""
    found = None
    for frame in _frames(exc.__traceback__):
        found = _describe(frame) or found
    return found


@contextlib.contextmanager
def reported_interrupts(default: str = "the run") -> Iterator[None]:
    """Re-raise a Ctrl-C below as :class:`RunInterrupted` naming the stage it hit (``default`` if none)."""
    try:
        yield
    except RunInterrupted:
        raise
    except KeyboardInterrupt as exc:
        raise RunInterrupted(stage_of(exc) or default) from exc


@contextlib.contextmanager
def lightning_interrupts(describe: Callable[[], str]) -> Iterator[None]:
    """Around ``Trainer.fit``: a Ctrl-C becomes :class:`RunInterrupted` with ``describe()`` (the epoch and the
    checkpoint), and the SIGINT handler Lightning replaced is put back.

    Lightning's ``sys.exit(1)`` is raised while it handles the KeyboardInterrupt, so that interrupt is the exit's
    ``__context__``: any other ``SystemExit`` passes unchanged.
    """
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    except SystemExit as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise RunInterrupted(describe()) from exc.__context__
        raise
    except RunInterrupted:
        raise
    except KeyboardInterrupt as exc:  # struck outside Lightning's handler (set-up, teardown)
        raise RunInterrupted(describe()) from exc
    finally:
        if main and handler is not None:
            signal.signal(signal.SIGINT, handler)
