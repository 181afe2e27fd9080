"""Settings of the eager queue: the ``eager:`` section of the flytekit config file.

Precedence, lowest first: built-in defaults, the ``eager:`` section of the YAML config file
flytekit itself finds (``FLYTECTL_CONFIG``, ``./flytekit.config``, ``~/.flyte/config``,
``~/.flyte/config.yaml``), ``FLYTE_EAGER_*`` environment variables, and keyword arguments
given in code. A value in the environment never beats an explicit argument.

Every value is checked when the controller of an eager run is built, before any child is
launched; a wrong key or value raises :class:`~flytekitplugins.eagerqueue.errors.ConfigError`
naming the key as written, the rule, the value and what to set instead. Importing flytekit
never reads or checks anything here.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import typing

from .errors import ConfigError

ENV_PREFIX = "FLYTE_EAGER_"
SECTION = "eager"
NAMING_ENTRY_POINTS = "flytekitplugins.eagerqueue.naming"
RETRY_ENTRY_POINTS = "flytekitplugins.eagerqueue.retry"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_POLICY_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# A name another package registered through an entry point.
_POLICY_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_FAILURE_KINDS = ("user", "recoverable", "system", "timed_out", "aborted")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings in force for one eager run. Durations are seconds.

    Attributes:
        controller: ``eagerqueue`` (this package) or ``flytekit`` (the stock controller).
        naming: a built-in naming policy name, ``package.module:Name``, or a policy object.
        retry_policy: ``none``, ``exponential``, ``package.module:Name`` or a policy object.
        retry_max_attempts: attempts in all under ``exponential``, the first included.
        retry_initial_interval: first delay between attempts.
        retry_backoff_coefficient: factor between consecutive delays.
        retry_max_interval: largest delay between attempts.
        retry_jitter: fraction of each delay randomised (0 to 1).
        retry_on: failure kinds ``exponential`` retries.
        max_in_flight: children launched and not yet finished, at most.
        launch_rate: launches per second, sustained.
        launch_burst: launches allowed at once above the sustained rate.
        launch_workers: Admin calls made at once by the controller.
        poll_interval_min: status poll interval while children change.
        poll_interval_max: status poll interval cap while nothing changes.
        terminate_timeout: how long cancelling in-flight children may take on SIGTERM.
        deck_show_values: show input and output values in the deck.
        deck_timeline: draw the deck's timeline (imports plotly: about 0.6 s of CPU).
    """

    controller: str = "eagerqueue"
    naming: typing.Any = "hashed"
    retry_policy: typing.Any = "none"
    retry_max_attempts: int = 3
    retry_initial_interval: float = 2.0
    retry_backoff_coefficient: float = 2.0
    retry_max_interval: float = 60.0
    retry_jitter: float = 0.2
    retry_on: tuple[str, ...] = ("system", "recoverable")
    max_in_flight: int = 256
    launch_rate: float = 50.0
    launch_burst: int = 20
    launch_workers: int = 16
    poll_interval_min: float = 0.05
    poll_interval_max: float = 2.0
    terminate_timeout: float = 10.0
    deck_show_values: bool = False
    deck_timeline: bool = True
    #: Where each value that is not a default came from, as the user wrote its key.
    origin: typing.Mapping[str, str] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def written(self, field: str) -> str:
        """The key of ``field`` as the user wrote it (``eager.<path>`` if a default)."""
        return self.origin.get(field) or f"{SECTION}.{_BY_FIELD[field].path}"

    def to_env(self) -> dict[str, str]:
        """``FLYTE_EAGER_*`` variables that make a nested eager child run with these settings.

        Only values that differ from the defaults are passed, so a child whose image has an
        older version of this package sees no variable it does not know unless the parent
        really uses that setting. Policies given as objects in code are not carried; their
        children use the configured names.
        """
        defaults = Settings()
        env = {}
        for key in KEYS:
            value = getattr(self, key.field)
            if not isinstance(value, (str, int, float, bool, tuple)):
                continue
            if value == getattr(defaults, key.field):
                continue
            env[key.env] = key.render(value)
        return env


@dataclasses.dataclass(frozen=True)
class _Key:
    """One setting: where it lives in YAML and env, how it parses, what it means."""

    path: str
    field: str
    parse: typing.Callable[[str, typing.Any], typing.Any]
    unit: str
    doc: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.path.replace(".", "_").upper()

    def render(self, value: typing.Any) -> str:
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _choice(*allowed: str, refs: bool = False):
    def parse(key: str, raw: typing.Any) -> typing.Any:
        if not isinstance(raw, str) and refs and raw is not None:
            return raw  # a policy object given in code
        value = str(raw).strip()
        if value in allowed or (refs and (_POLICY_REF.match(value) or _POLICY_NAME.match(value))):
            return value
        extra = " or package.module:Name" if refs else ""
        raise ConfigError(
            key, f"must be one of {', '.join(allowed)}{extra}", raw, f"Set {key} to one of those."
        )

    return parse


def _integer(minimum: int):
    def parse(key: str, raw: typing.Any) -> int:
        try:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            if isinstance(raw, (int, float)):
                value = int(raw)
            else:
                value = int(str(raw).strip())
        except (TypeError, ValueError):
            raise ConfigError(
                key, "must be a whole number", raw, f"Set {key} to a whole number >= {minimum}."
            ) from None
        if value < minimum:
            raise ConfigError(key, f"must be >= {minimum}", raw, f"Set {key} to {minimum} or more.")
        return value

    return parse


def _number(minimum: float, maximum: float = float("inf"), strict_min: bool = False):
    def parse(key: str, raw: typing.Any) -> float:
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(key, "must be a number", raw, f"Set {key} to a number.") from None
        too_low = value <= minimum if strict_min else value < minimum
        if too_low or value > maximum:
            low = f"> {minimum}" if strict_min else f">= {minimum}"
            rule = f"must be {low}" + (f" and <= {maximum}" if maximum != float("inf") else "")
            raise ConfigError(key, rule, raw, f"Set {key} within that range.")
        return value

    return parse


def parse_duration(key: str, raw: typing.Any) -> float:
    """``500ms``, ``2s``, ``1.5m``, ``1h`` or a plain number of seconds, to seconds."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw >= 0:
        return float(raw)
    match = _DURATION.match(str(raw)) if isinstance(raw, str) else None
    if not match:
        raise ConfigError(
            key,
            "must be a duration such as 500ms, 2s, 1m or 1h",
            raw,
            f"Set {key} to a number followed by ms, s, m or h.",
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _positive_duration(key: str, raw: typing.Any) -> float:
    seconds = parse_duration(key, raw)
    if seconds < 0.001:
        raise ConfigError(key, "must be at least 1ms", raw, f"Set {key} to e.g. 50ms.")
    return seconds


def _boolean(key: str, raw: typing.Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(key, "must be true or false", raw, f"Set {key} to true or false.")


def _kinds(key: str, raw: typing.Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)):
        raise ConfigError(key, "must be a list of failure kinds", raw, _kinds_fix(key))
    kinds = tuple(str(item).strip() for item in items if str(item).strip())
    unknown = [k for k in kinds if k not in _FAILURE_KINDS]
    if unknown:
        raise ConfigError(key, f"has unknown failure kind {unknown[0]!r}", raw, _kinds_fix(key))
    return kinds


def _kinds_fix(key: str) -> str:
    return f"Set {key} to a list drawn from {', '.join(_FAILURE_KINDS)}."


KEYS: tuple[_Key, ...] = (
    _Key(
        "controller",
        "controller",
        _choice("eagerqueue", "flytekit"),
        "",
        "eagerqueue, or flytekit to put the stock controller back",
    ),
    _Key(
        "naming",
        "naming",
        _choice("hashed", "readable", "flytekit", refs=True),
        "",
        "hashed | readable | flytekit | package.module:Name",
    ),
    _Key(
        "retry.policy",
        "retry_policy",
        _choice("none", "exponential", refs=True),
        "",
        "none | exponential | package.module:Name",
    ),
    _Key(
        "retry.max_attempts",
        "retry_max_attempts",
        _integer(1),
        "attempts",
        "attempts in all under exponential, the first included",
    ),
    _Key(
        "retry.initial_interval",
        "retry_initial_interval",
        parse_duration,
        "duration",
        "delay before the first relaunch",
    ),
    _Key(
        "retry.backoff_coefficient",
        "retry_backoff_coefficient",
        _number(1.0),
        "factor",
        "factor between consecutive delays",
    ),
    _Key(
        "retry.max_interval",
        "retry_max_interval",
        parse_duration,
        "duration",
        "largest delay between attempts",
    ),
    _Key(
        "retry.jitter",
        "retry_jitter",
        _number(0.0, 1.0),
        "fraction",
        "share of each delay randomised",
    ),
    _Key(
        "retry.retry_on",
        "retry_on",
        _kinds,
        "kinds",
        "failure kinds retried: user, recoverable, system, timed_out, aborted",
    ),
    _Key("max_in_flight", "max_in_flight", _integer(1), "children", "children running at once"),
    _Key(
        "launch_rate",
        "launch_rate",
        _number(0.0, strict_min=True),
        "per second",
        "sustained launches per second",
    ),
    _Key(
        "launch_burst",
        "launch_burst",
        _integer(1),
        "launches",
        "launches allowed at once above the rate",
    ),
    _Key(
        "launch_workers",
        "launch_workers",
        _integer(1),
        "calls",
        "Admin calls the controller makes at once",
    ),
    _Key(
        "poll_interval_min",
        "poll_interval_min",
        _positive_duration,
        "duration",
        "status poll interval while children change",
    ),
    _Key(
        "poll_interval_max",
        "poll_interval_max",
        _positive_duration,
        "duration",
        "status poll interval cap while nothing changes",
    ),
    _Key(
        "terminate_timeout",
        "terminate_timeout",
        _positive_duration,
        "duration",
        "time allowed to cancel in-flight children on SIGTERM/SIGINT",
    ),
    _Key(
        "deck.show_values",
        "deck_show_values",
        _boolean,
        "bool",
        "show input and output values in the deck",
    ),
    _Key(
        "deck.timeline",
        "deck_timeline",
        _boolean,
        "bool",
        "draw the timeline in the deck (importing plotly costs about 0.6 s of CPU)",
    ),
)

_BY_PATH = {key.path: key for key in KEYS}
_BY_ENV = {key.env: key for key in KEYS}
_BY_FIELD = {key.field: key for key in KEYS}


def load_settings(
    *,
    yaml_config: typing.Optional[typing.Mapping[str, typing.Any]] = None,
    environ: typing.Optional[typing.Mapping[str, str]] = None,
    **overrides: typing.Any,
) -> Settings:
    """Builds the settings in force from the config file, the environment and ``overrides``.

    Args:
        yaml_config: the parsed YAML config file; by default the file flytekit finds.
        environ: environment variables; by default ``os.environ``.
        overrides: :class:`Settings` field names with values given in code; they win.
    """
    if yaml_config is None:
        yaml_config = _find_yaml_config()
    environ = os.environ if environ is None else environ
    values: dict[str, typing.Any] = {}
    origin: dict[str, str] = {}

    for path, raw in _flatten_section(yaml_config).items():
        key = _BY_PATH.get(path)
        written = f"{SECTION}.{path}"
        if key is None:
            raise ConfigError(written, "is not a known key", raw, _known_keys_fix())
        values[key.field] = key.parse(written, raw)
        origin[key.field] = written

    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = _BY_ENV.get(name)
        if key is None:
            known = ", ".join(sorted(_BY_ENV))
            raise ConfigError(name, "is not a known variable", raw, f"Use one of {known}.")
        values[key.field] = key.parse(name, raw)
        origin[key.field] = name

    for field, raw in overrides.items():
        key = _BY_FIELD.get(field)
        if key is None:
            known = ", ".join(sorted(_BY_FIELD))
            raise ConfigError(field, "is not a known setting", raw, f"Use one of {known}.")
        values[field] = key.parse(field, raw)
        origin[field] = field

    settings = Settings(**values, origin=origin)
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    _check_order(settings, "retry_initial_interval", "retry_max_interval")
    _check_order(settings, "poll_interval_min", "poll_interval_max")


def _check_order(settings: Settings, low: str, high: str) -> None:
    """``low`` must not exceed ``high``; blames the one the user set (``high`` if both)."""
    low_value, high_value = getattr(settings, low), getattr(settings, high)
    if high_value >= low_value:
        return
    fix = f"Raise {settings.written(high)} or lower {settings.written(low)}."
    if high in settings.origin or low not in settings.origin:
        rule = f"must be >= {settings.written(low)} ({low_value}s)"
        raise ConfigError(settings.written(high), rule, high_value, fix)
    rule = f"must be <= {settings.written(high)} ({high_value}s)"
    raise ConfigError(settings.written(low), rule, low_value, fix)


def _known_keys_fix() -> str:
    return f"Known keys under {SECTION}: {', '.join(k.path for k in KEYS)}."


def _flatten_section(yaml_config: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    section = (yaml_config or {}).get(SECTION)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(SECTION, "must be a mapping of keys", section, _known_keys_fix())
    flat: dict[str, typing.Any] = {}

    def walk(prefix: str, node: dict) -> None:
        for name, value in node.items():
            path = f"{prefix}{name}"
            # Sections that group keys (retry:, deck:) are walked into; anything else is a leaf.
            is_group = any(k.path.startswith(path + ".") for k in KEYS)
            if is_group and isinstance(value, dict):
                walk(path + ".", value)
            elif is_group:
                raise ConfigError(
                    f"{SECTION}.{path}", "must be a mapping of keys", value, _known_keys_fix()
                )
            else:
                flat[path] = value

    walk("", section)
    return flat


def _find_yaml_config() -> dict[str, typing.Any]:
    from flytekit.configuration.file import get_config_file

    config_file = get_config_file(None)
    if config_file is None:
        return {}
    return config_file.yaml_config or {}


def import_reference(reference: str, key: str) -> typing.Any:
    """Imports ``package.module:Name`` named by setting ``key``."""
    module_name, _, attribute = reference.partition(":")
    try:
        target: typing.Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            key, "names nothing importable", reference, f"Check the module and name ({err})."
        ) from err
    return target


def entry_point_policy(group: str, name: str) -> typing.Any:
    """A policy another package registered under entry point ``group`` as ``name``."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=group):
        if entry.name == name:
            return entry.load()
    return None
