"""Importing a legacy crontab: every line classified, nothing guessed.

lines.py reads the raw lines (cron's own grammar: environment lines, macros, `%`, commented-out
jobs), shell.py splits a command the way /bin/sh would, commands.py says what a command becomes
under the guard, classify.py gives every line its class and declaration, and registry_block.py
writes the declarations into the registry. See docs/crontab-import.md.
"""
