"""The guard: what surrounds every run of every automate (seed 000's cron wrapper, on Prefect).

The deployment of each automate carries its guard policy (job variables: the engine command and
`AUTOMATES_GUARD`), so the worker starts every run through `automates.guard.engine` and no flow
has to remember to call anything.

Read it top-down: `runner` (the pipeline and its order), `context` (one run), `prechecks` (the
protocol), the pre-checks (`quiet_hours`, `misfire`, `approval`, `concurrency`), `attempts`,
`recording` and `breaker` (what a finished run leaves), `orchestrator` (every Prefect call),
`engine` (how a worker gets here); then the flows it runs for declared commands (`script`,
`service`, `command`) and `settle` (runs that ended outside its hands).
"""
