"""The flytekit.plugins entry point: what `import flytekit` does with this package installed."""

import os
import subprocess
import sys

import pytest

import flytekitplugins.eagerqueue as package


def python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


CHECK = "import flytekit.core.python_function_task as m; print(m.Controller.__module__)"


@pytest.mark.parametrize(
    "first",
    [
        "flytekit",
        "flytekitplugins.eagerqueue",
        "flytekitplugins.eagerqueue.settings",
        "flytekitplugins.eagerqueue.errors",
        "flytekitplugins.eagerqueue.devserver.server",
    ],
)
def test_the_controller_is_installed_whatever_is_imported_first(first):
    out = python(f"import {first}; {CHECK}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "flytekitplugins.eagerqueue.controller"
    assert "could not install" not in out.stderr


def test_a_broken_config_never_breaks_import_flytekit_and_fails_the_run_clearly(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eager:\n  retry:\n    max_attempts: many\n")
    code = (
        "import flytekit\n"
        "from flytekit.core.python_function_task import Controller\n"
        "from flytekit.remote import FlyteRemote\n"
        "from flytekit.configuration import Config\n"
        "remote = FlyteRemote(Config.for_endpoint('127.0.0.1:1', insecure=True))\n"
        "try:\n"
        "    Controller(remote=remote, ss=None, tag='t', root_tag='t', exec_prefix='e-t')\n"
        "except Exception as err:\n"
        "    print(type(err).__name__, err)\n"
    )
    out = python(code, FLYTECTL_CONFIG=str(config))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "ConfigError eager.retry.max_attempts: must be a whole number; got 'many'. "
        "Set eager.retry.max_attempts to a whole number >= 1."
    )


def test_controller_flytekit_in_the_environment_builds_the_stock_controller():
    code = (
        "from flytekit.core.python_function_task import Controller\n"
        "from flytekit.core.worker_queue import Controller as Stock\n"
        "from flytekit.remote import FlyteRemote\n"
        "from flytekit.configuration import Config, ImageConfig, SerializationSettings\n"
        "remote = FlyteRemote(Config.for_endpoint('127.0.0.1:1', insecure=True))\n"
        "ss = SerializationSettings(image_config=ImageConfig.auto_default_image(), version='v')\n"
        "c = Controller(remote=remote, ss=ss, tag='t', root_tag='t', exec_prefix='e-t')\n"
        "print(type(c) is Stock)\n"
    )
    out = python(code, FLYTE_EAGER_CONTROLLER="flytekit")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_the_public_names_are_pinned():
    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == {
        "AdminCallError",
        "Backoff",
        "ChildFailedError",
        "ConfigError",
        "Controller",
        "ControllerStateError",
        "Decision",
        "EagerQueueError",
        "ExponentialRetry",
        "Failure",
        "FailureKind",
        "FlytekitNaming",
        "HashedNaming",
        "InputConversionError",
        "ItemStatus",
        "NameRequest",
        "NamingError",
        "NamingPolicy",
        "NoRetry",
        "ReadableNaming",
        "ReattachMismatchError",
        "RetryPolicy",
        "Settings",
        "TransientAdminError",
        "Update",
        "WorkItem",
        "load_settings",
    }
