"""The guard: what surrounds every run of every automate (seed 000's cron wrapper, on Prefect).

The deployment of each automate carries its guard policy (job variables: the engine command and
`AUTOMATES_GUARD`), so the worker starts every run through `automates.guard.engine` and no flow
has to remember to call anything.
"""
