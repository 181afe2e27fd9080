"""Naming and retry policies, and bad input, on a real backend."""

from __future__ import annotations

import datetime
import re

import pytest
from flytekit.configuration import Config, ImageConfig, PlatformConfig, SerializationSettings
from flytekit.remote import FlyteRemote

from integration.conftest import REPO_ROOT
from integration.helpers import children_of
from integration.workflows import policies


def error_of(execution) -> str:
    return execution.closure.error.message if execution.closure.error else ""


def test_a_child_killed_twice_by_the_platform_succeeds_on_its_third_attempt(dev, flyte):
    dev.server.fail_executions(2, task_name=policies.flaky.name)
    execution = flyte.execute(
        policies.call_flaky,
        {"x": 4},
        envs={
            "FLYTE_EAGER_RETRY_POLICY": "exponential",
            "FLYTE_EAGER_RETRY_MAX_ATTEMPTS": "3",
            "FLYTE_EAGER_RETRY_INITIAL_INTERVAL": "100ms",
        },
    )
    assert execution.outputs["o0"] == 40
    kids = children_of(flyte.remote, execution.id.name)
    assert len(kids) == 3
    first, *retries = sorted(kids, key=lambda k: k.closure.created_at)
    assert [k.closure.error.code for k in (first, retries[0])] == ["SYSTEM:ProcessKilled"] * 2
    assert re.search(r"-a1-[0-9a-f]{8}$", retries[0].id.name)
    assert re.search(r"-a2-[0-9a-f]{8}$", retries[1].id.name)
    assert dev.server.fault_counts()["executions"] == 2


def test_a_user_error_is_not_retried_by_the_default_exponential_policy(flyte):
    execution = flyte.execute(
        policies.call_refuses, {"x": 1}, envs={"FLYTE_EAGER_RETRY_POLICY": "exponential"}
    )
    assert "refusing 1" in error_of(execution)
    assert "user errors are not retried (retry_on: recoverable, system)" in error_of(execution)
    assert len(children_of(flyte.remote, execution.id.name)) == 1


def test_a_name_taken_by_a_child_with_other_inputs_fails_clearly(flyte):
    from flytekitplugins.eagerqueue.inputs import digest_literals, to_literals
    from flytekitplugins.eagerqueue.naming import HashedNaming, NameRequest

    parent = flyte.name("collide")
    version = flyte.backend.registration.version
    request = NameRequest(
        root_tag=parent,
        parent_tag=parent,
        exec_prefix=f"e-pair-{parent[:5]}",
        entity_kind="task",
        entity_name=policies.plain.name,
        entity_version=version,
        occurrence=0,
        input_digest=digest_literals(to_literals(None, policies.plain, {"i": 0})),
    )
    squatter = HashedNaming()(request)
    flyte.started.append(squatter)
    flyte.wait(
        flyte.remote.execute(
            policies.plain,
            inputs={"i": 99},
            execution_name=squatter,
            version=version,
            serialization_settings=flyte.backend.registration.serialization_settings(),
        )
    )
    execution = flyte.execute(policies.pair, {"n": 1}, name=parent)
    message = error_of(execution)
    assert f"execution {squatter} already exists but was launched with other inputs" in message
    assert f"by {parent}" in message


def test_an_input_that_does_not_convert_fails_the_parent_and_launches_nothing(flyte):
    execution = flyte.execute(policies.bad_input, {"x": 1})
    assert "input 'i' of integration.workflows.policies.plain could not be converted" in (
        error_of(execution)
    )
    assert children_of(flyte.remote, execution.id.name) == []


def test_a_naming_policy_that_breaks_the_rule_is_named_and_launches_nothing(flyte):
    execution = flyte.execute(
        policies.pair,
        {"n": 2},
        envs={"FLYTE_EAGER_NAMING": "integration.workflows.policies:shouting_names"},
    )
    assert (
        "naming policy 'integration.workflows.policies:shouting_names' produced 'CHILD-0'"
        in error_of(execution)
    )
    assert children_of(flyte.remote, execution.id.name) == []


def test_a_wrong_setting_fails_the_run_before_any_child_naming_the_key(flyte):
    execution = flyte.execute(policies.pair, {"n": 2}, envs={"FLYTE_EAGER_MAX_IN_FLIGHT": "lots"})
    assert "FLYTE_EAGER_MAX_IN_FLIGHT: must be a whole number; got 'lots'" in error_of(execution)
    assert children_of(flyte.remote, execution.id.name) == []


def test_switching_naming_in_the_config_file_changes_the_names_in_the_backend(
    backend, tmp_path, monkeypatch
):
    if backend.kind != "dev":
        pytest.skip("starting a backend with a chosen config file needs --backend=dev")
    from flytekit.configuration.file import get_config_file

    from flytekitplugins.eagerqueue.devserver.server import DevServer

    config = tmp_path / "user-config.yaml"
    config.write_text("eager:\n  naming: readable\n")
    monkeypatch.setenv("FLYTECTL_CONFIG", str(config))
    get_config_file.cache_clear()
    try:
        with DevServer(tmp_path / "state", port=0, source_root=REPO_ROOT) as server:
            remote = FlyteRemote(
                Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
                default_project="flytesnacks",
                default_domain="development",
                data_upload_location=str(tmp_path / "uploads"),
            )
            version = backend.registration.version
            execution = remote.execute(
                policies.pair,
                inputs={"n": 2},
                version=version,
                serialization_settings=SerializationSettings(
                    image_config=ImageConfig.auto_default_image(), version=version
                ),
            )
            execution = remote.wait(
                execution, poll_interval=datetime.timedelta(seconds=0.25), sync_nodes=False
            )
            names = sorted(k.id.name for k in children_of(remote, execution.id.name))
    finally:
        get_config_file.cache_clear()
    assert execution.outputs["o0"] == 1
    assert len(names) == 2
    assert all(re.fullmatch(r"e-pair-[a-z0-9]+-plain-0-[0-9a-f]{8}", n) for n in names), names


def test_settings_chosen_for_the_root_apply_to_every_level_of_nesting(flyte):
    from integration.helpers import descendants_of

    execution = flyte.execute(policies.outer, {"n": 2}, envs={"FLYTE_EAGER_NAMING": "readable"})
    assert execution.outputs["o0"] == 1
    names = {e.id.name for e in descendants_of(flyte.remote, execution.id.name)}
    assert len(names) == 4  # inner, pair, and pair's two children
    assert any(re.fullmatch(r"e-outer-[a-z0-9-]+-inner-0-[0-9a-f]{8}", n) for n in names), names
    assert any(re.fullmatch(r"e-inner-[a-z0-9-]+-pair-0-[0-9a-f]{8}", n) for n in names), names
    assert sum(bool(re.fullmatch(r"e-pair-[a-z0-9-]+-plain-0-[0-9a-f]{8}", n)) for n in names) == 2
