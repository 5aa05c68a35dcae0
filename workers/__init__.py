"""Workers: how a process worker is started, here and on remote hosts."""
