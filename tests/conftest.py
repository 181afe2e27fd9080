import asyncio

import pytest
from flytekit.configuration import ImageConfig, SerializationSettings

from flytekitplugins.eagerqueue.controller import Controller
from flytekitplugins.eagerqueue.settings import Settings

from .fakes import FakeAdmin

FAST = dict(poll_interval_min=0.002, poll_interval_max=0.02, launch_rate=10_000, launch_burst=1000)


def compute(entity_name, inputs):
    short = entity_name.rsplit(".", 1)[-1]
    if short in ("double", "double_wf"):
        return inputs["x"] * 2
    if short == "greet":
        return f"hello {inputs['name']}"
    if short == "total":
        return sum(inputs["values"])
    return None


@pytest.fixture
def admin():
    return FakeAdmin(compute=compute)


@pytest.fixture
def make_controller():
    made = []

    def make(admin, tag="parent-exec", **settings):
        options = {**FAST, **settings}
        controller = Controller(
            remote=None,
            ss=SerializationSettings(image_config=ImageConfig.auto_default_image(), version="v1"),
            tag=tag,
            root_tag="root-exec",
            exec_prefix="e-parent-paren",
            settings=Settings(**options),
            admin=admin,
        )
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()


def run(coro, timeout=20):
    """Runs ``coro`` on a fresh event loop, failing the test if it takes longer than ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
