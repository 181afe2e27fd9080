"""The Controller against a scripted in-memory Admin."""

import asyncio

import pytest
from flytekit.exceptions.eager import EagerException

from flytekitplugins.eagerqueue import controller as controller_module
from flytekitplugins.eagerqueue.admin import INPUT_DIGEST_LABEL, LaunchRequest, Phase
from flytekitplugins.eagerqueue.errors import (
    ChildFailedError,
    ControllerStateError,
    InputConversionError,
    NamingError,
    ReattachMismatchError,
)
from flytekitplugins.eagerqueue.naming import NAME_PATTERN

from .conftest import run
from .entities import double, double_wf, greet, nothing, total
from .fakes import FakeAdmin


class TestFanOut:
    def test_a_gather_of_fifty_children_returns_every_result_in_order(self, admin, make_controller):
        controller = make_controller(admin)

        async def main():
            return await asyncio.gather(*(controller.add(double, {"x": i}) for i in range(50)))

        assert run(main()) == [i * 2 for i in range(50)]
        assert len(admin.executions) == 50

    def test_every_child_carries_the_eager_labels_and_the_input_digest(
        self, admin, make_controller
    ):
        controller = make_controller(admin)
        run(controller.add(greet, {"name": "ada"}))
        (execution,) = admin.executions.values()
        labels = execution.request.labels
        assert labels["eager-exec"] == "parent-exec"
        assert labels["eager-root-exec"] == "root-exec"
        assert len(labels[INPUT_DIGEST_LABEL]) == 40
        assert execution.request.envs["_F_EE_ROOT"] == "root-exec"

    def test_names_are_valid_admin_names_and_distinct_per_input(self, admin, make_controller):
        controller = make_controller(admin)

        async def main():
            await asyncio.gather(*(controller.add(double, {"x": i}) for i in range(30)))

        run(main())
        names = list(admin.executions)
        assert len(set(names)) == 30
        assert all(NAME_PATTERN.match(n) and len(n) <= 63 for n in names)
        assert all(n.startswith("e-parent-paren-") for n in names)

    def test_the_same_call_twice_launches_two_children(self, admin, make_controller):
        controller = make_controller(admin)

        async def main():
            return await asyncio.gather(
                controller.add(double, {"x": 4}), controller.add(double, {"x": 4})
            )

        assert run(main()) == [8, 8]
        assert len(admin.executions) == 2

    def test_a_workflow_child_and_a_child_without_outputs_both_return(self, admin, make_controller):
        controller = make_controller(admin)

        async def main():
            return await asyncio.gather(
                controller.add(double_wf, {"x": 5}), controller.add(nothing, {"x": 1})
            )

        assert run(main()) == [10, None]

    def test_list_inputs_convert_and_reach_the_child(self, admin, make_controller):
        controller = make_controller(admin)
        assert run(controller.add(total, {"values": [1, 2, 3]})) == 6


class TestReattach:
    def test_a_parent_run_again_launches_no_child_twice(self, admin, make_controller):
        async def fan_out(controller):
            return await asyncio.gather(*(controller.add(double, {"x": i}) for i in range(10)))

        first = run(fan_out(make_controller(admin)))
        launched = dict(admin.executions)
        second = run(fan_out(make_controller(admin)))
        assert first == second
        assert admin.executions == launched

    def test_an_existing_name_with_other_inputs_raises_a_mismatch(self, admin, make_controller):
        controller = make_controller(admin)
        name = controller.get_execution_name(double, 0, {"x": 1})
        admin.executions[name] = _existing(name, double, {INPUT_DIGEST_LABEL: "f" * 40})
        with pytest.raises(ReattachMismatchError) as caught:
            run(controller.add(double, {"x": 1}))
        assert name in str(caught.value)
        assert "other inputs" in str(caught.value)

    def test_an_execution_without_the_digest_label_is_checked_by_its_inputs(
        self, admin, make_controller
    ):
        controller = make_controller(admin)
        name = controller.get_execution_name(double, 0, {"x": 1})
        other = make_controller(admin, tag="parent-exec")
        # Launched by someone else (say the stock controller) with x=2 under this name.
        stale = _existing(name, double, {})
        stale.request = LaunchRequest(name, double, _literals(other, {"x": 2}), "v1", {}, {})
        admin.executions[name] = stale
        with pytest.raises(ReattachMismatchError):
            run(controller.add(double, {"x": 1}))
        assert admin.calls["get_inputs"] == 1

    def test_a_stock_launched_child_with_defaults_filled_in_is_re_attached(
        self, admin, make_controller
    ):
        from flytekitplugins.eagerqueue.inputs import to_literals

        controller = make_controller(admin)
        name = controller.get_execution_name(double, 0, {"x": 1})
        stored = {**to_literals(None, double, {"x": 1}), "extra_default": object()}
        stale = _existing(name, double, {})
        stale.request = LaunchRequest(name, double, stored, "v1", {}, {})
        admin.executions[name] = stale
        admin.finish(name, 2)
        assert run(controller.add(double, {"x": 1})) == 2
        assert len(admin.executions) == 1


class TestFailures:
    def test_a_failed_child_raises_an_eager_exception_saying_why_it_was_not_retried(
        self, admin, make_controller
    ):
        admin.launch_hook = lambda e: admin.fail(e.name, "bad value")
        controller = make_controller(admin)
        with pytest.raises(ChildFailedError) as caught:
            run(controller.add(double, {"x": 1}))
        assert isinstance(caught.value, EagerException)
        assert "bad value" in str(caught.value)
        assert "not retried: the retry policy is 'none'" in str(caught.value)

    def test_exponential_retry_relaunches_system_failures_under_derived_names(
        self, admin, make_controller
    ):
        def fail_first_two(execution):
            if len(admin.executions) <= 2:
                admin.fail(execution.name, "node lost", system=True)
            else:
                admin.finish(execution.name, 42)

        admin.launch_hook = fail_first_two
        controller = make_controller(
            admin, retry_policy="exponential", retry_initial_interval=0.01, retry_max_interval=0.01
        )
        assert run(controller.add(double, {"x": 21})) == 42
        names = list(admin.executions)
        assert len(names) == 3
        assert names[1].startswith(names[0][:20]) and "-a1-" in names[1]
        assert "-a2-" in names[2]

    def test_user_errors_are_not_retried_by_exponential_by_default(self, admin, make_controller):
        admin.launch_hook = lambda e: admin.fail(e.name, "bad input")
        controller = make_controller(admin, retry_policy="exponential")
        with pytest.raises(ChildFailedError) as caught:
            run(controller.add(double, {"x": 1}))
        assert "user errors are not retried (retry_on: recoverable, system)" in str(caught.value)
        assert len(admin.executions) == 1

    def test_retrying_stops_when_attempts_are_spent(self, admin, make_controller):
        admin.launch_hook = lambda e: admin.fail(e.name, "flaky", system=True)
        controller = make_controller(
            admin, retry_policy="exponential", retry_initial_interval=0.0, retry_max_interval=0.0
        )
        with pytest.raises(ChildFailedError) as caught:
            run(controller.add(double, {"x": 1}))
        assert "attempts spent (3/3)" in str(caught.value)
        assert caught.value.attempts == 3
        assert len(admin.executions) == 3

    def test_transient_admin_errors_are_retried_and_launch_nothing_twice(
        self, admin, make_controller
    ):
        admin.fail_next["launch"] = 3
        admin.fail_next["get_outputs"] = 2
        admin.fail_next["list_finished"] = 2
        controller = make_controller(admin)

        async def main():
            return await asyncio.gather(*(controller.add(double, {"x": i}) for i in range(5)))

        assert run(main()) == [0, 2, 4, 6, 8]
        assert len(admin.executions) == 5

    def test_a_value_that_does_not_convert_fails_in_the_caller_and_launches_nothing(
        self, admin, make_controller
    ):
        controller = make_controller(admin)
        with pytest.raises(InputConversionError) as caught:
            run(controller.add(double, {"x": "not a number"}))
        assert "input 'x'" in str(caught.value)
        assert admin.executions == {}
        assert run(controller.add(double, {"x": 3})) == 6

    def test_an_unknown_input_name_is_refused_before_launch(self, admin, make_controller):
        controller = make_controller(admin)
        with pytest.raises(InputConversionError, match="no such input"):
            run(controller.add(double, {"y": 3}))
        assert admin.executions == {}

    def test_a_naming_policy_that_breaks_the_rule_is_named_in_the_error(
        self, admin, make_controller
    ):
        controller = make_controller(admin, naming="tests.test_controller:upper_case_names")
        with pytest.raises(NamingError) as caught:
            run(controller.add(double, {"x": 1}))
        assert "tests.test_controller:upper_case_names" in str(caught.value)
        assert admin.executions == {}

    def test_a_crash_of_the_reconciler_fails_waiting_and_later_callers(self, make_controller):
        admin = CrashingAdmin(compute=None, hold=True)
        controller = make_controller(admin)
        with pytest.raises(ControllerStateError) as caught:
            run(controller.add(double, {"x": 1}))
        assert "crashed" in str(caught.value)
        assert isinstance(caught.value.__cause__, Explosion)
        with pytest.raises(ControllerStateError, match="takes no more work"):
            run(controller.add(double, {"x": 2}))


class TestAdmission:
    def test_no_more_than_max_in_flight_children_run_at_once(self, make_controller):
        admin = FakeAdmin(hold=True)
        controller = make_controller(admin, max_in_flight=4)

        async def main():
            tasks = [asyncio.ensure_future(controller.add(double, {"x": i})) for i in range(10)]
            seen = 0
            while seen < 10:
                await asyncio.sleep(0.02)
                running = admin.running()
                assert len(running) <= 4
                for name in running:
                    admin.finish(name, 0)
                    seen += 1
            return await asyncio.gather(*tasks)

        assert run(main()) == [0] * 10

    def test_without_a_label_index_children_are_polled_one_by_one(self, make_controller):
        admin = FakeAdmin(hold=True, labels_indexed=False)
        controller = make_controller(admin)

        async def main():
            tasks = [asyncio.ensure_future(controller.add(double, {"x": i})) for i in range(3)]
            await admin.until_running(3)
            for name in admin.running():
                admin.finish(name, 7)
            return await asyncio.gather(*tasks)

        assert run(main()) == [7, 7, 7]
        assert admin.calls["get_state"] >= 3
        assert admin.calls["list_finished"] == 0

    def test_cancel_all_terminates_every_running_child(self, make_controller):
        admin = FakeAdmin(hold=True)
        controller = make_controller(admin)

        async def main():
            tasks = [asyncio.ensure_future(controller.add(double, {"x": i})) for i in range(3)]
            await admin.until_running(3)
            names = controller.cancel_all("stop")
            for t in tasks:
                t.cancel()
            return names

        names = run(main())
        assert sorted(names) == sorted(admin.executions)
        assert all(e.phase == Phase.ABORTED for e in admin.executions.values())


class TestPublicSurface:
    def test_the_module_keeps_the_names_of_flytekits_worker_queue(self):
        from flytekit.core import worker_queue

        for name in ("Controller", "WorkItem", "Update", "ItemStatus"):
            assert hasattr(controller_module, name)
        for method in (
            "add",
            "for_sandbox",
            "get_env",
            "get_execution_name",
            "get_labels",
            "get_signal_handler",
            "launch_execution",
            "reconcile_one",
            "render_html",
        ):
            assert callable(getattr(controller_module.Controller, method)), method
        assert [s.value for s in controller_module.ItemStatus] == [
            s.value for s in worker_queue.ItemStatus
        ]
        assert controller_module.EAGER_TAG_KEY == "eager-exec"
        assert controller_module.EAGER_TAG_ROOT_KEY == "eager-root-exec"
        assert controller_module.EAGER_ROOT_ENV_NAME == "_F_EE_ROOT"

    def test_importing_flytekit_installs_this_controller(self):
        import flytekit.core.python_function_task as eager_module

        assert eager_module.Controller is controller_module.Controller


def upper_case_names(request):
    return "Not-Valid"


class Explosion(BaseException):
    pass


class CrashingAdmin(FakeAdmin):
    def lists_children(self, parent_tag):
        raise Explosion("the reconciler fell over")


def _existing(name, entity, labels):
    from .fakes import FakeExecution

    execution = FakeExecution(name=name, request=LaunchRequest(name, entity, {}, "v1", labels, {}))
    execution.phase = Phase.RUNNING
    return execution


def _literals(controller, inputs):
    from flytekitplugins.eagerqueue.inputs import to_literals

    return to_literals(None, double, inputs)


class TestSchedulingOrder:
    def test_names_do_not_depend_on_the_order_calls_reach_the_controller(self, make_controller):
        import random

        calls = [i % 7 for i in range(40)]  # repeats, so occurrences matter

        def names_for(order, tag):
            admin = FakeAdmin(compute=lambda name, inputs: inputs["x"])
            controller = make_controller(admin, tag=tag)

            async def main():
                await asyncio.gather(*(controller.add(double, {"x": x}) for x in order))

            run(main())
            by_input = {}
            for execution in admin.executions.values():
                x = execution.request.inputs["x"].scalar.primitive.integer
                by_input.setdefault(x, set()).add(execution.name)
            return by_input

        shuffled = list(calls)
        random.Random(3).shuffle(shuffled)
        assert names_for(calls, "same-parent") == names_for(shuffled, "same-parent")


class TestPermanentErrors:
    def test_a_permanent_launch_error_fails_only_that_child_naming_the_rpc_and_the_child(
        self, make_controller
    ):
        from flytekitplugins.eagerqueue.errors import AdminCallError

        class RefusingAdmin(FakeAdmin):
            def launch(self, request):
                if request.entity is greet:
                    raise PermissionError("PERMISSION_DENIED: not allowed here")
                return super().launch(request)

        admin = RefusingAdmin(compute=lambda name, inputs: inputs.get("x", 0) * 2)
        controller = make_controller(admin)

        async def main():
            return await asyncio.gather(
                controller.add(greet, {"name": "x"}),
                controller.add(double, {"x": 2}),
                return_exceptions=True,
            )

        refused, doubled = run(main())
        assert doubled == 4
        assert isinstance(refused, AdminCallError)
        assert str(refused).startswith("CreateExecution for child e-parent-paren-")
        assert "(tests.entities.greet) failed: PERMISSION_DENIED: not allowed here" in str(refused)

    def test_settings_reach_nested_children_through_their_environment(self, admin, make_controller):
        controller = make_controller(admin, naming="readable", retry_policy="exponential")
        run(controller.add(double, {"x": 1}))
        (execution,) = admin.executions.values()
        assert execution.request.envs["FLYTE_EAGER_NAMING"] == "readable"
        assert execution.request.envs["FLYTE_EAGER_RETRY_POLICY"] == "exponential"


class TestListingRaces:
    def test_a_child_listed_finished_while_its_launch_returns_is_not_lost(self, make_controller):
        import time as clock

        class SlowLaunchAdmin(FakeAdmin):
            def launch(self, request):
                state = super().launch(request)  # RUNNING, as the create call saw it
                if request.inputs["x"].scalar.primitive.integer == 1:
                    self.finish(request.name, 7)
                    clock.sleep(0.2)  # polls list the child as finished meanwhile
                return state

        admin = SlowLaunchAdmin(hold=True)
        controller = make_controller(admin)

        async def main():
            held = asyncio.ensure_future(controller.add(double, {"x": 0}))
            await admin.until_running()
            polls_before = admin.calls["list_finished"]
            result = await controller.add(double, {"x": 1})
            assert admin.calls["list_finished"] > polls_before + 3
            admin.finish(admin.running()[0], 0)
            return result, await held

        assert run(main(), timeout=10) == (7, 0)


class TestLogs:
    def test_a_long_run_logs_a_one_line_summary_and_never_input_values(
        self, make_controller, caplog, monkeypatch
    ):
        import logging

        monkeypatch.setattr(controller_module, "_SUMMARY_EVERY_SECONDS", 0.05)
        admin = FakeAdmin(hold=True)
        controller = make_controller(admin)

        async def main():
            task = asyncio.ensure_future(controller.add(greet, {"name": "hunter2-secret"}))
            await admin.until_running()
            await asyncio.sleep(0.3)
            admin.finish(admin.running()[0], "hello")
            return await task

        with caplog.at_level(logging.INFO, logger="flytekitplugins.eagerqueue.controller"):
            assert run(main()) == "hello"
        messages = [r.getMessage() for r in caplog.records]
        assert any(
            m == "eager run parent-exec: 1 children, 1 running, 0 waiting, 0 succeeded, 0 failed"
            for m in messages
        ), messages
        assert any(m.startswith("child e-parent-paren-") and " SUCCEEDED " in m for m in messages)
        assert not any("hunter2-secret" in m for m in messages)


class SlowAdmin(FakeAdmin):
    """Launches take ``delay`` seconds; counts how many run at once."""

    def __init__(self, delay, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay
        self.now = 0
        self.most = 0

    def launch(self, request):
        import time as clock

        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            clock.sleep(self.delay)
            return super().launch(request)
        finally:
            with self.lock:
                self.now -= 1


class TestCancellation:
    def test_cancel_all_works_from_a_thread_that_holds_the_controller_lock(self, make_controller):
        admin = FakeAdmin(hold=True)
        controller = make_controller(admin)

        async def main():
            tasks = [asyncio.ensure_future(controller.add(double, {"x": i})) for i in range(3)]
            await admin.until_running(3)
            # A signal handler runs on the main thread, maybe inside snapshot() or add().
            with controller.entries_lock:
                names = controller.cancel_all("signal")
            return names, await asyncio.gather(*tasks, return_exceptions=True)

        names, results = run(main(), timeout=10)
        assert len(names) == 3
        assert all(e.phase == Phase.ABORTED for e in admin.executions.values())
        assert all(isinstance(r, ControllerStateError) for r in results)

    def test_launches_on_the_wire_when_cancelled_are_terminated_and_callers_answered(
        self, make_controller
    ):
        admin = SlowAdmin(0.3, hold=True)
        controller = make_controller(admin)

        async def main():
            tasks = [asyncio.ensure_future(controller.add(double, {"x": i})) for i in range(10)]
            await asyncio.sleep(0.1)
            controller.cancel_all("stop")
            return await asyncio.gather(*tasks, return_exceptions=True)

        results = run(main(), timeout=15)
        assert all(isinstance(r, ControllerStateError) for r in results), results
        assert "was cancelled: stop" in str(results[0])
        assert admin.running() == []

    def test_close_answers_every_waiting_caller(self, make_controller):
        admin = FakeAdmin(hold=True)
        controller = make_controller(admin)

        async def main():
            task = asyncio.ensure_future(controller.add(double, {"x": 1}))
            await admin.until_running()
            controller.close()
            return await asyncio.gather(task, return_exceptions=True)

        (result,) = run(main(), timeout=10)
        assert isinstance(result, ControllerStateError)
        assert "was closed" in str(result)


class TestFirstLaunches:
    def test_launches_waiting_for_an_entitys_registration_then_run_in_parallel(
        self, make_controller
    ):
        admin = SlowAdmin(0.1, compute=lambda name, inputs: inputs["x"])
        controller = make_controller(admin, launch_workers=16)

        async def main():
            return await asyncio.gather(*(controller.add(double, {"x": i}) for i in range(16)))

        assert run(main(), timeout=20) == list(range(16))
        assert admin.most >= 4
