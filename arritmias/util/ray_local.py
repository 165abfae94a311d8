"""Starting Ray for the project's commands, quietly: the one place that calls ``ray.init``.

Ray and Ray Serve log their own start-up and internals on the driver's terminal (a token-authentication notice,
"Started a local Ray instance", every Serve deployment step, actor retry policies from the C++ core). The user's
terminal should show the command's progress and results; Ray's session logs under ``/tmp/ray`` keep all of it.
"""

from __future__ import annotations

import logging

RAY_LOGGERS = ("ray", "ray.data", "ray.serve")


def quiet_ray_loggers() -> None:
    """Ray's Python loggers at ERROR (Ray Data logs each execution and Serve each deployment step at INFO)."""
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def init(address: str | None = None, core_log_level: str | None = None, **kwargs) -> None:
    """``ray.init`` joining ``address`` (None: start a local instance) with the project's quiet defaults, which
    ``kwargs`` (e.g. ``num_cpus``, ``runtime_env``) join. ``core_log_level`` (e.g. "fatal") sets the C++ core's
    level (``RAY_BACKEND_LOG_LEVEL``, unless the user set it): it hides the core's warnings, at the price of one
    line in which the core says it read that variable."""
    import os

    import ray

    if core_log_level:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", core_log_level)
    options = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
               "configure_logging": True, **kwargs}
    ray.init(address=address, **options)
    quiet_ray_loggers()
