"""Where a residential worker gets the browser flow's code: the checkout, or a git clone."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from automates.browser.deploy import CodeSource


def test_a_local_worker_runs_from_the_checkout() -> None:
    steps = CodeSource(directory="/srv/automates").pull_steps()
    assert steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/srv/automates"}}
    ]


def test_a_remote_worker_clones_the_branch_before_each_run() -> None:
    source = CodeSource(git_repository="https://git.example.org/automates.git", git_branch="prod")
    clone, into = source.pull_steps()
    assert clone["prefect.deployments.steps.git_clone"] == {
        "id": "clone",
        "repository": "https://git.example.org/automates.git",
        "branch": "prod",
    }
    assert into == {
        "prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}
    }


def test_a_code_source_is_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        CodeSource(directory="/x", branch="main")  # type: ignore[call-arg]
