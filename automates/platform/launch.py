"""`python -m automates.platform.launch NAME`: how supervisord starts a Python component.

It reads the settings (the environment supervisord inherited from `up`, then the env files)
when the component starts, builds its command line and environment (components.launch) and
replaces itself with it. So no setting, and no secret, is written into the supervisord
config, and a restart picks up an edited env file. A component that cannot be launched (its
database is not up yet, a setting is wrong) exits 2 with one line saying why: supervisord
backs off and tries again, and the crash watch stops it if that goes on.
"""

from __future__ import annotations

import os
import pwd
import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m automates.platform.launch COMPONENT", file=sys.stderr)
        sys.exit(2)
    from automates.envfiles import load_env_files
    from automates.errors import AutomatesError
    from automates.platform import components
    from automates.settings import Settings, env_file_paths

    try:
        load_env_files(env_file_paths())
        launch = components.launch(Settings(), args[0])
    except (AutomatesError, ValueError) as error:
        print(f"{args[0]} cannot start: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    # supervisord's variables name its control socket: the component (and the flow runs a
    # worker starts) have no business with it.
    env = {k: v for k, v in launch.env.items() if not k.startswith("SUPERVISOR_")}
    if launch.user is not None:  # PostgreSQL refuses to run as root
        account = pwd.getpwnam(launch.user)
        os.initgroups(launch.user, account.pw_gid)
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    os.execvpe(launch.argv[0], launch.argv, env)


if __name__ == "__main__":
    main()
