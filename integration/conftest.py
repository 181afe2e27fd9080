"""The integration suite's backends, chosen with ``--backend=dev|sandbox|remote``.

* ``dev`` (default): the embedded dev backend, one fresh server per test module on a free
  loopback port, running every task as a local ``pyflyte-execute`` process.
* ``sandbox``: flyte-sandbox in Docker, started through testcontainers, with an image of this
  package pushed to the sandbox's registry; every test is skipped when no Docker engine
  answers.
* ``remote``: the Flyte named by ``FLYTE_PLATFORM_URL`` (and the usual flytekit config),
  running the image named by ``EAGERQUEUE_IT_IMAGE``.

Tests use the ``flyte`` fixture: a :class:`TestRun` holding the backend, a name prefix of its
own, and ``execute`` which runs an entity and waits for it. When a test fails, the logs of
the executions it started that did not succeed are attached to its report.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import typing
import uuid
from pathlib import Path

import pytest
from flytekit.configuration import Config, ImageConfig, PlatformConfig, SerializationSettings
from flytekit.remote import FlyteRemote
from flytekit.remote.executions import FlyteWorkflowExecution

from integration.helpers import assert_eventually, descendants_of, phase_of

REPO_ROOT = Path(__file__).resolve().parent.parent
PYFLYTE = str(Path(sys.executable).with_name("pyflyte"))

DEV_PROJECT = "flytesnacks"
DEV_DOMAIN = "development"

# Each test may take this long; a fan-out of 20 on the dev backend takes about 15 s here.
TEST_TIMEOUT_SECONDS = 300
# How long one execution may take before ``TestRun.execute`` gives up on it.
EXECUTION_TIMEOUT_SECONDS = 240
# Lines of each task log quoted in a failed test's report, and how many logs at most.
LOG_TAIL_LINES = 60
LOGS_PER_REPORT = 12

# flyte-sandbox, as ``flytectl demo start`` runs it (flytectl pkg/sandbox/start.go and
# pkg/docker/docker_util.go): image cr.flyte.org/flyteorg/flyte-sandbox-bundled, container
# privileged (k3s runs inside), K3S_KUBECONFIG_OUTPUT=/var/lib/flyte/config/kubeconfig with
# /var/lib/flyte/config mounted from the host, and the demo ports published on the host:
# 30080 Admin gRPC/HTTP and console, 30000 the image registry, 30002 minio, 6443 the k8s API.
SANDBOX_IMAGE = os.environ.get(
    "EAGERQUEUE_IT_SANDBOX_IMAGE", "cr.flyte.org/flyteorg/flyte-sandbox-bundled:latest"
)
SANDBOX_PORTS = (30080, 30000, 30002, 6443)
SANDBOX_REGISTRY = "localhost:30000"
SANDBOX_ENDPOINT = "localhost:30080"
SANDBOX_PROJECT = "flytesnacks"
SANDBOX_DOMAIN = "development"
# Booting k3s and Flyte's pods takes minutes on a laptop.
SANDBOX_READY_SECONDS = 900


# ---------------------------------------------------------------------------- pytest hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("dev", "sandbox", "remote"),
        default="dev",
        help="Flyte backend the integration suite runs on (default: dev)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Warnings are errors, except deprecations raised from third-party code.
    for line in (
        "error",
        r"ignore::DeprecationWarning:^(?!integration|flytekitplugins)",
        r"ignore::PendingDeprecationWarning:^(?!integration|flytekitplugins)",
        "ignore::ResourceWarning",
        "ignore::UserWarning:flytekit.*",
    ):
        config.addinivalue_line("filterwarnings", line)
    config.addinivalue_line("markers", "dev_only(reason): the test needs the dev backend")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = config.getoption("--backend")
    no_engine = _docker_problem() if backend == "sandbox" else None
    for item in items:
        if no_engine is not None:
            item.add_marker(pytest.mark.skip(reason=f"no Docker engine: {no_engine}"))
            continue
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_SECONDS))
        marker = item.get_closest_marker("dev_only")
        if marker is not None and backend != "dev":
            reason = marker.args[0] if marker.args else "needs the dev backend"
            item.add_marker(pytest.mark.skip(reason=f"dev backend only: {reason}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> typing.Iterator:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    run = getattr(item, "funcargs", {}).get("flyte")
    if isinstance(run, TestRun):
        report.sections.append(("backend logs", run.failure_logs()))


# ---------------------------------------------------------------------------- backends


@dataclasses.dataclass(frozen=True)
class Registration:
    """How entities reach the backend: the image tasks run in and the version they get."""

    image: str | None
    version: str

    @property
    def image_config(self) -> ImageConfig:
        if self.image is None:
            return ImageConfig.auto_default_image()
        return ImageConfig.auto(img_name=self.image)

    def serialization_settings(self, version: str | None = None) -> SerializationSettings:
        return SerializationSettings(
            image_config=self.image_config, version=version or self.version
        )

    def pyflyte_image_args(self) -> list[str]:
        return [] if self.image is None else ["--image", self.image]


@dataclasses.dataclass
class Backend:
    """A Flyte backend the suite talks to.

    Attributes:
        kind: ``dev``, ``sandbox`` or ``remote``.
        remote: a configured FlyteRemote with the project and domain as defaults.
        pyflyte: command prefix for ``pyflyte`` against this backend (config arguments).
        pyflyte_env: environment for ``pyflyte`` subprocesses.
        registration: image and version entities are registered with.
        logs: returns the logs of one execution, or None when the backend keeps none.
        server: the dev backend, when ``kind`` is ``dev``.
    """

    kind: str
    remote: FlyteRemote
    project: str
    domain: str
    pyflyte: list[str]
    pyflyte_env: dict[str, str]
    registration: Registration
    logs: typing.Callable[[str], str | None]
    server: typing.Any = None

    def fetch(self, name: str) -> FlyteWorkflowExecution:
        return self.remote.fetch_execution(project=self.project, domain=self.domain, name=name)


def _module_version() -> str:
    """A version of its own for each module's registrations."""
    return f"it-{uuid.uuid4().hex[:12]}"


def _without_flyte_env() -> dict[str, str]:
    """This process's environment minus FLYTE_* settings, so a config file governs pyflyte."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE", "_F_"))}


def _dev_logs(server: typing.Any, project: str, domain: str) -> typing.Callable[[str], str]:
    def logs(name: str) -> str:
        base = server.state_dir / "data" / project / domain / name
        parts = []
        for log in sorted(base.glob("**/task.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            parts.append(f"--- {log.relative_to(server.state_dir)}\n" + "\n".join(lines))
        return "\n".join(parts) or f"(no task log under {base})"

    return logs


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> typing.Iterator[Backend]:
    """The backend of this test module; on ``dev``, a server of its own with fresh state."""
    kind = request.config.getoption("--backend")
    version = _module_version()
    if kind == "dev":
        yield from _dev_backend(request, version)
    elif kind == "sandbox":
        yield _sandbox_backend(request.getfixturevalue("sandbox_platform"), version)
    else:
        yield _remote_backend(version)


def _dev_backend(request: pytest.FixtureRequest, version: str) -> typing.Iterator[Backend]:
    from flytekitplugins.eagerqueue.devserver.server import DevServer

    state = request.getfixturevalue("tmp_path_factory").mktemp("devstate")
    with DevServer(state, port=0, source_root=REPO_ROOT) as server:
        remote = FlyteRemote(
            Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
            default_project=DEV_PROJECT,
            default_domain=DEV_DOMAIN,
            data_upload_location=str(server.state_dir / "client-uploads"),
        )
        yield Backend(
            kind="dev",
            remote=remote,
            project=DEV_PROJECT,
            domain=DEV_DOMAIN,
            pyflyte=[PYFLYTE, "--config", str(server.config_path)],
            pyflyte_env=_without_flyte_env(),
            registration=Registration(image=None, version=version),
            logs=_dev_logs(server, DEV_PROJECT, DEV_DOMAIN),
            server=server,
        )


def _remote_backend(version: str) -> Backend:
    url = os.environ.get("FLYTE_PLATFORM_URL")
    image = os.environ.get("EAGERQUEUE_IT_IMAGE")
    if not url or not image:
        missing = [
            n for n, v in (("FLYTE_PLATFORM_URL", url), ("EAGERQUEUE_IT_IMAGE", image)) if not v
        ]
        pytest.skip(f"--backend=remote needs {' and '.join(missing)} set")
    project = os.environ.get("EAGERQUEUE_IT_PROJECT", "flytesnacks")
    domain = os.environ.get("EAGERQUEUE_IT_DOMAIN", "development")
    remote = FlyteRemote(Config.auto(), default_project=project, default_domain=domain)
    config = os.environ.get("FLYTECTL_CONFIG")
    return Backend(
        kind="remote",
        remote=remote,
        project=project,
        domain=domain,
        pyflyte=[PYFLYTE, *(["--config", config] if config else [])],
        pyflyte_env=dict(os.environ),
        registration=Registration(image=image, version=version),
        logs=lambda name: None,
    )


# ---------------------------------------------------------------------------- sandbox


@dataclasses.dataclass
class SandboxPlatform:
    container: typing.Any
    image: str
    config_path: Path


def _docker_problem() -> str | None:
    """Why no Docker engine can be used, or None when one answers."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as err:  # noqa: BLE001 - any failure means there is no engine to use
        return f"{type(err).__name__}: {err}"
    return None


def _docker_client_or_skip() -> typing.Any:
    problem = _docker_problem()
    if problem is not None:
        pytest.skip(f"no Docker engine: {problem}")
    import docker

    return docker.from_env()


def _build_context(into: Path) -> Path:
    """A small build context: the package, its setup files and the integration workflows."""
    for name in ("setup.py", "README.md"):
        shutil.copy2(REPO_ROOT / name, into / name)
    for name in ("flytekitplugins", "integration", "examples"):
        shutil.copytree(
            REPO_ROOT / name, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    base = ImageConfig.auto_default_image().default_image.full
    (into / "Dockerfile").write_text(
        f"FROM {base}\n"
        "USER root\n"
        "WORKDIR /root\n"
        "COPY . /root\n"
        "RUN pip install --no-cache-dir /root\n"
        "ENV PYTHONPATH=/root\n"
    )
    return into


@pytest.fixture(scope="session")
def sandbox_platform(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[SandboxPlatform]:
    """flyte-sandbox in a container, and this package's image in its registry."""
    client = _docker_client_or_skip()
    from testcontainers.core.container import DockerContainer

    config_dir = tmp_path_factory.mktemp("sandbox-config")
    container = (
        DockerContainer(SANDBOX_IMAGE)
        .with_kwargs(privileged=True)
        .with_env("K3S_KUBECONFIG_OUTPUT", "/var/lib/flyte/config/kubeconfig")
        .with_volume_mapping(str(config_dir), "/var/lib/flyte/config", "rw")
    )
    for port in SANDBOX_PORTS:
        container = container.with_bind_ports(port, ("127.0.0.1", port))
    container.start()
    try:
        probe = FlyteRemote(Config.for_sandbox())
        assert_eventually(
            lambda: _answers(probe), SANDBOX_READY_SECONDS, 5.0, "flyte-sandbox Admin answering"
        )
        tag = f"{SANDBOX_REGISTRY}/eagerqueue-it:{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory() as scratch:
            client.images.build(path=str(_build_context(Path(scratch))), tag=tag, rm=True)
        for line in client.images.push(tag, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"pushing {tag} failed: {line['error']}")
        config_path = config_dir / "flytekit.yaml"
        config_path.write_text(f"admin:\n  endpoint: dns:///{SANDBOX_ENDPOINT}\n  insecure: true\n")
        yield SandboxPlatform(container=container, image=tag, config_path=config_path)
    finally:
        container.stop()


def _answers(remote: FlyteRemote) -> bool:
    try:
        remote.client.list_projects()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


def _sandbox_logs(platform: SandboxPlatform, project: str, domain: str) -> typing.Callable:
    def logs(name: str) -> str:
        namespace = f"{project}-{domain}"
        wrapped = platform.container.get_wrapped_container()
        pods = wrapped.exec_run(["kubectl", "get", "pods", "-n", namespace, "-o", "name"])
        found = [p for p in pods.output.decode().split() if p.startswith(f"pod/{name}")]
        parts = []
        for pod in found:
            out = wrapped.exec_run(["kubectl", "logs", "-n", namespace, "--tail", "60", pod])
            parts.append(f"--- {pod}\n{out.output.decode(errors='replace')}")
        return "\n".join(parts) or f"(no pod of {name} in {namespace})"

    return logs


def _sandbox_backend(platform: SandboxPlatform, version: str) -> Backend:
    remote = FlyteRemote(
        Config.for_sandbox(), default_project=SANDBOX_PROJECT, default_domain=SANDBOX_DOMAIN
    )
    return Backend(
        kind="sandbox",
        remote=remote,
        project=SANDBOX_PROJECT,
        domain=SANDBOX_DOMAIN,
        pyflyte=[PYFLYTE, "--config", str(platform.config_path)],
        pyflyte_env=_without_flyte_env(),
        registration=Registration(image=platform.image, version=version),
        logs=_sandbox_logs(platform, SANDBOX_PROJECT, SANDBOX_DOMAIN),
    )


# ---------------------------------------------------------------------------- per test


class TestRun:
    """One test's view of the backend: its own name prefix and the executions it started."""

    __test__ = False

    def __init__(self, backend: Backend, test_name: str):
        self.backend = backend
        self.remote = backend.remote
        short = "".join(c for c in test_name.lower().removeprefix("test_") if c.isalnum())[:10]
        self.prefix = f"t{short}-{uuid.uuid4().hex[:6]}"
        self.started: list[str] = []
        self._count = 0

    def name(self, label: str = "") -> str:
        """A fresh execution name under this test's prefix (at most 40 characters)."""
        self._count += 1
        label = "".join(c for c in label.lower() if c.isalnum())[:12]
        name = f"{self.prefix}-{label}{self._count}" if label else f"{self.prefix}-{self._count}"
        return name

    def execute(
        self,
        entity: typing.Any,
        inputs: dict[str, typing.Any] | None = None,
        *,
        name: str | None = None,
        envs: dict[str, str] | None = None,
        version: str | None = None,
        timeout: float = EXECUTION_TIMEOUT_SECONDS,
    ) -> FlyteWorkflowExecution:
        """Registers (if needed) and runs ``entity``, then waits for it to finish."""
        name = name or self.name()
        self.started.append(name)
        registration = self.backend.registration
        execution = self.remote.execute(
            entity,
            inputs=inputs or {},
            execution_name=name,
            version=version or registration.version,
            image_config=registration.image_config,
            serialization_settings=registration.serialization_settings(version),
            envs=envs,
        )
        return self.wait(execution, timeout)

    def wait(
        self, execution: FlyteWorkflowExecution, timeout: float = EXECUTION_TIMEOUT_SECONDS
    ) -> FlyteWorkflowExecution:
        return self.remote.wait(
            execution,
            timeout=datetime.timedelta(seconds=timeout),
            poll_interval=datetime.timedelta(seconds=0.25),
            sync_nodes=False,
        )

    def pyflyte(self, *args: str, cwd: Path = REPO_ROOT, timeout: float = 240) -> str:
        """Runs ``pyflyte`` against the backend and returns its output; fails on non-zero exit."""
        done = subprocess.run(
            [*self.backend.pyflyte, *args],
            cwd=cwd,
            env=self.backend.pyflyte_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"pyflyte {' '.join(args)} exited {done.returncode}:\n{output}"
        return output

    def failure_logs(self) -> str:
        """Logs of the executions this test started, and their descendants, that did not succeed."""
        names: list[str] = []
        for root in self.started:
            try:
                tree = [self.backend.fetch(root)] + descendants_of(self.remote, root)
            except Exception as err:  # noqa: BLE001 - a report must still be written
                names.append(f"{root} (listing failed: {err})")
                continue
            names.extend(e.id.name for e in tree if phase_of(e) != "SUCCEEDED")
        sections = []
        for name in names[:LOGS_PER_REPORT]:
            text = self.backend.logs(name.split(" ")[0])
            sections.append(
                f"=== {name}\n{text if text is not None else '(backend keeps no logs)'}"
            )
        return "\n".join(sections) or "no execution of this test failed"


@pytest.fixture
def dev(backend: Backend) -> typing.Iterator[Backend]:
    """The dev backend, for cases that inject faults; skipped on other backends.

    Faults a test switched on are cleared after it.
    """
    if backend.kind != "dev":
        pytest.skip("fault injection needs the dev backend (--backend=dev)")
    yield backend
    backend.server.clear_faults()


@pytest.fixture
def flyte(backend: Backend, request: pytest.FixtureRequest) -> TestRun:
    """The backend, with a name prefix unique to this test."""
    return TestRun(backend, request.node.name)
