"""TensorBoard logging that a full or read-only log folder cannot stop.

TensorBoard writes its event file from a background thread.  When the disk is full or the
folder read-only, that thread dies with a traceback on stderr, and the next ``add_scalar`` or
``flush`` re-raises the raw ``OSError`` in the training loop: hours of training end on a
logging error, with a message that says nothing of what to do.

:class:`GuardedWriter` makes such a failure one warning, and training goes on without
TensorBoard.  We continue rather than stop because nothing is lost: every value TensorBoard
gets (loss, lr) is also in ``metrics.jsonl``, written and flushed at every step, and a
``SummaryWriter`` opened later (``--resume``) picks the curves up again.  What a full disk does
to checkpoints is handled where they are written (a clear error that stops the run, since a
run that cannot checkpoint cannot be resumed).
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

from cfld.checks.outputs import write_error

#: The class of TensorBoard's writer thread (tensorboard.summary.writer.event_file_writer).
_WRITER_THREAD = "_AsyncWriterThread"


class GuardedWriter:
    """``torch.utils.tensorboard.SummaryWriter`` whose failures become one warning, after
    which it does nothing (see the module docstring).

    Args:
        log_dir: The event folder.
        **kwargs: Passed to ``SummaryWriter`` (e.g. ``purge_step``).
    """

    def __init__(self, log_dir: str | os.PathLike, **kwargs: Any) -> None:
        self.log_dir = os.fspath(log_dir)
        self.failed: str | None = None
        self._writer: Any = None
        self._previous_hook = threading.excepthook
        threading.excepthook = self._thread_hook  # the writer thread's traceback is ours to say
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=self.log_dir, **kwargs)
        except Exception as err:  # noqa: BLE001 - any failure to open the log is not fatal
            self._disable(err)

    @property
    def active(self) -> bool:
        """Whether values are still being written."""
        return self._writer is not None

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """``SummaryWriter.add_scalar``, or nothing once logging has failed."""
        self._call("add_scalar", tag, value, step)

    def flush(self) -> None:
        """``SummaryWriter.flush``, or nothing once logging has failed."""
        self._call("flush")

    def close(self) -> None:
        """Close the event file (errors become the warning) and restore the thread hook."""
        self._call("close")
        self._writer = None
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_hook

    def _call(self, name: str, *args: Any) -> None:
        if self._writer is None:
            return
        try:
            getattr(self._writer, name)(*args)
        except Exception as err:  # noqa: BLE001 - the writer thread re-raises anything
            self._disable(err)

    def _disable(self, err: BaseException) -> None:
        translated = write_error(err, self.log_dir)
        reason = str(translated) if translated is not None else f"{type(err).__name__}: {err}"
        self.failed = reason
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001, S110 - already failing; the warning says why
                pass
        warnings.warn(f"TensorBoard logging stopped: {reason}; training goes on without it "
                      "(every logged value is also in metrics.jsonl; TensorBoard resumes with "
                      "--resume once the folder is writable)", stacklevel=3)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ == _WRITER_THREAD and isinstance(args.exc_value, OSError):
            return  # re-raised by the writer's next call, then one warning
        self._previous_hook(args)


__all__ = ["GuardedWriter"]
