"""Imported by flytekit (entry point group ``flytekit.plugins``) when ``import flytekit`` runs.

It puts this package's Controller where ``EagerAsyncPythonFunctionTask`` looks it up, and
does nothing else: no config is read here, so a broken config can never break
``import flytekit``; it surfaces when an eager run builds its controller. Any failure in
this module is logged and swallowed for the same reason.

Set ``FLYTE_EAGER_CONTROLLER=flytekit`` (or ``eager.controller: flytekit`` in the config
file) to run with flytekit's own controller.
"""

import logging

logger = logging.getLogger(__name__)


def install() -> bool:
    """Swaps in the Controller; returns False (and logs why) if it could not."""
    try:
        import flytekit.core.python_function_task as eager_module

        from .controller import Controller

        eager_module.Controller = Controller
        return True
    except Exception:  # noqa: BLE001 - importing flytekit must never fail because of us
        logger.warning("flytekitplugins-eagerqueue could not install its controller", exc_info=True)
        return False


INSTALLED = install()
