"""Installing the package is all it takes: flytekit's eager tasks build this Controller."""

import subprocess
import sys


def test_importing_flytekit_puts_this_controller_where_eager_tasks_look_it_up(tmp_path):
    code = "import flytekit.core.python_function_task as m; print(m.Controller.__module__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "flytekitplugins.eagerqueue.controller"
