"""Reading and validating the eager: section, FLYTE_EAGER_* variables and arguments."""

import pytest

from flytekitplugins.eagerqueue.errors import ConfigError
from flytekitplugins.eagerqueue.settings import KEYS, Settings, load_settings, parse_duration


def load(yaml=None, env=None, **overrides):
    return load_settings(yaml_config=yaml or {}, environ=env or {}, **overrides)


class TestPrecedence:
    def test_defaults_apply_with_no_config(self):
        assert load() == Settings()

    def test_the_config_file_section_is_read(self):
        settings = load({"eager": {"naming": "readable", "retry": {"policy": "exponential"}}})
        assert settings.naming == "readable"
        assert settings.retry_policy == "exponential"

    def test_environment_beats_the_file(self):
        settings = load({"eager": {"max_in_flight": 10}}, {"FLYTE_EAGER_MAX_IN_FLIGHT": "20"})
        assert settings.max_in_flight == 20

    def test_arguments_beat_the_environment(self):
        settings = load(env={"FLYTE_EAGER_MAX_IN_FLIGHT": "20"}, max_in_flight=5)
        assert settings.max_in_flight == 5

    def test_other_sections_of_the_file_are_ignored(self):
        assert load({"admin": {"endpoint": "dns:///x"}, "eager": None}) == Settings()

    def test_settings_round_trip_through_the_environment_of_a_child(self):
        settings = load(naming="readable", retry_policy="exponential", retry_on=["user"])
        assert load(env=settings.to_env()) == settings


class TestDurations:
    @pytest.mark.parametrize(
        "text, seconds", [("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("1.5h", 5400.0), ("3", 3.0)]
    )
    def test_durations_accept_units(self, text, seconds):
        assert parse_duration("k", text) == seconds

    def test_a_duration_without_a_known_unit_names_the_key_and_the_units(self):
        with pytest.raises(ConfigError) as caught:
            load({"eager": {"retry": {"initial_interval": "2 weeks"}}})
        assert str(caught.value) == (
            "eager.retry.initial_interval: must be a duration such as 500ms, 2s, 1m or 1h; "
            "got '2 weeks'. Set eager.retry.initial_interval to a number followed by ms, s, m or h."
        )


class TestValidation:
    def test_an_unknown_key_in_the_file_is_named_with_the_known_ones(self):
        with pytest.raises(ConfigError) as caught:
            load({"eager": {"max_inflight": 3}})
        message = str(caught.value)
        assert message.startswith("eager.max_inflight: is not a known key; got 3.")
        assert "max_in_flight" in message

    def test_an_unknown_nested_key_is_named_with_its_path(self):
        with pytest.raises(ConfigError, match=r"^eager\.retry\.attempts: is not a known key"):
            load({"eager": {"retry": {"attempts": 3}}})

    def test_an_unknown_environment_variable_is_named(self):
        with pytest.raises(ConfigError, match=r"^FLYTE_EAGER_NAMEING: is not a known variable"):
            load(env={"FLYTE_EAGER_NAMEING": "hashed"})

    def test_an_unknown_argument_is_named(self):
        with pytest.raises(ConfigError, match=r"^max_inflight: is not a known setting"):
            load(max_inflight=3)

    def test_a_wrong_type_names_the_key_the_rule_and_the_value(self):
        with pytest.raises(ConfigError) as caught:
            load(env={"FLYTE_EAGER_MAX_IN_FLIGHT": "lots"})
        assert str(caught.value) == (
            "FLYTE_EAGER_MAX_IN_FLIGHT: must be a whole number; got 'lots'. "
            "Set FLYTE_EAGER_MAX_IN_FLIGHT to a whole number >= 1."
        )

    def test_a_value_below_the_minimum_is_refused(self):
        with pytest.raises(ConfigError, match=r"eager.retry.max_attempts: must be >= 1; got 0"):
            load({"eager": {"retry": {"max_attempts": 0}}})

    def test_a_boolean_is_not_taken_for_a_number(self):
        with pytest.raises(ConfigError, match="must be a whole number"):
            load({"eager": {"max_in_flight": True}})

    def test_an_unknown_controller_lists_the_choices(self):
        with pytest.raises(ConfigError) as caught:
            load({"eager": {"controller": "fast"}})
        assert str(caught.value) == (
            "eager.controller: must be one of eagerqueue, flytekit; got 'fast'. "
            "Set eager.controller to one of those."
        )

    def test_jitter_must_be_a_fraction(self):
        with pytest.raises(ConfigError, match=r"eager.retry.jitter: must be >= 0.0 and <= 1.0"):
            load({"eager": {"retry": {"jitter": 1.5}}})

    def test_launch_rate_must_be_positive(self):
        with pytest.raises(ConfigError, match=r"FLYTE_EAGER_LAUNCH_RATE: must be > 0.0"):
            load(env={"FLYTE_EAGER_LAUNCH_RATE": "0"})

    def test_retry_on_names_an_unknown_kind(self):
        with pytest.raises(ConfigError, match=r"has unknown failure kind 'network'"):
            load({"eager": {"retry": {"retry_on": ["system", "network"]}}})

    def test_max_interval_below_initial_interval_is_refused(self):
        with pytest.raises(
            ConfigError,
            match=r"eager.retry.max_interval: must be >= eager.retry.initial_interval \(10.0s\)",
        ):
            load({"eager": {"retry": {"initial_interval": "10s", "max_interval": "1s"}}})

    def test_the_section_must_be_a_mapping(self):
        with pytest.raises(ConfigError, match=r"^eager: must be a mapping"):
            load({"eager": ["hashed"]})

    def test_every_key_has_an_env_name_in_flytekits_convention(self):
        assert all(k.env.startswith("FLYTE_EAGER_") and k.env.isupper() for k in KEYS)
        assert len({k.env for k in KEYS}) == len(KEYS)


class TestConfigFile:
    def test_the_file_flytekit_finds_through_flytectl_config_is_read(self, tmp_path, monkeypatch):
        from flytekit.configuration.file import get_config_file

        path = tmp_path / "config.yaml"
        path.write_text("eager:\n  naming: readable\n  retry:\n    max_attempts: 5\n")
        monkeypatch.setenv("FLYTECTL_CONFIG", str(path))
        get_config_file.cache_clear()
        try:
            settings = load_settings(environ={})
        finally:
            get_config_file.cache_clear()
        assert settings.naming == "readable"
        assert settings.retry_max_attempts == 5


def test_the_readme_documents_every_key_and_its_environment_variable():
    import pathlib

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    for key in KEYS:
        assert f"| `{key.path}` | `{key.env}` |" in readme, key.path


class TestReviewedMessages:
    def test_a_whole_float_is_taken_as_a_whole_number(self):
        assert load({"eager": {"max_in_flight": 3.0}}).max_in_flight == 3

    def test_a_group_key_given_a_scalar_must_be_a_mapping(self):
        with pytest.raises(ConfigError, match=r"^eager\.retry: must be a mapping of keys; got 3"):
            load({"eager": {"retry": 3}})

    def test_an_order_error_blames_the_key_the_user_set(self):
        with pytest.raises(ConfigError) as caught:
            load(env={"FLYTE_EAGER_RETRY_INITIAL_INTERVAL": "120s"})
        assert str(caught.value).startswith(
            "FLYTE_EAGER_RETRY_INITIAL_INTERVAL: must be <= eager.retry.max_interval (60.0s); "
            "got 120.0."
        )

    def test_a_policy_set_in_the_environment_is_named_as_written(self):
        from flytekitplugins.eagerqueue import policies

        settings = load(env={"FLYTE_EAGER_NAMING": "nosuch.module:Name"})
        with pytest.raises(ConfigError, match=r"^FLYTE_EAGER_NAMING: names nothing importable"):
            policies.naming_policy(settings.naming, settings.written("naming"))

    @pytest.mark.parametrize("key", ["poll_interval_min", "poll_interval_max", "terminate_timeout"])
    def test_intervals_that_must_pass_time_refuse_zero(self, key):
        with pytest.raises(ConfigError, match=rf"^eager\.{key}: must be at least 1ms"):
            load({"eager": {key: 0}})
