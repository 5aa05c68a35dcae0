"""A component's pid file says running, dead or stopped; reading it changes nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from automates.platform.processes import Managed


def test_a_component_whose_process_is_gone_is_dead_until_restarted(tmp_path: Path) -> None:
    component = Managed("worker-x", tmp_path)
    assert component.state() == ("stopped", None)

    pid = component.start([sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path)
    assert component.state() == ("running", pid)

    subprocess.run(["kill", "-9", str(pid)], check=True)
    deadline = time.monotonic() + 30
    while component.state()[0] == "running":  # until the kernel has ended it
        assert time.monotonic() < deadline, "the killed process still runs"
        time.sleep(0.05)
    assert component.state() == ("dead", pid)
    assert component.state() == ("dead", pid)  # status reads; the pid file stays

    assert component.pid() is None  # what `up` asks before starting it again
    assert component.state() == ("stopped", None)
