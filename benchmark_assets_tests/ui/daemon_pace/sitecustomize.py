"""Loaded by every Python process of the UI tests' `dagster dev` (this folder is on their
PYTHONPATH, nowhere else): Dagster's backfill daemon loops every 3 s instead of its fixed 30 s.

A "Materialize all" backfill runs one asset level per daemon loop, so the browser test's study (five
levels) waited two and a half minutes on the loop alone. What the backfill does is unchanged: only
the pause between its loops. The constant is read by the loop on every turn
(``dagster._daemon.backfill.execute_backfill_iteration_loop``); it is set when Dagster's daemon
controller is first imported, so a process that never imports it pays nothing."""
import importlib.abc
import importlib.util
import sys

BACKFILL_LOOP_SECONDS = 3
MODULE = "dagster._daemon.controller"


class _SetLoopPause(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            module.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_LOOP_SECONDS

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _SetLoopPause())
