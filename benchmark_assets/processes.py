"""Child processes that do not outlive the process that started them."""
from __future__ import annotations

import sys


def die_with_parent() -> None:
    """Run in a child before it execs (``Popen(preexec_fn=...)``): the kernel kills the child when
    the thread that started it dies, even by SIGKILL, when no ``finally`` block runs. Linux only;
    elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
