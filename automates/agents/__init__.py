"""Agents: the LLM CLI and the model API, scoped by permission templates (docs/agents.md).

- `templates`: permission templates (Prefect blocks) and the `Scope` they are rendered for;
- `llm_cli`: the CLI block, its model resolution, argv and environment;
- `process` / `stream`: running the CLI bounded, streamed and costed;
- `llm` / `pricing`: the façade over the anthropic SDK, and the one price table;
- `taskruns` / `runs`: agent task runs and scoped runs, their requests and their life
  (docs/runs.md);
- `dispatch`: the agent dispatcher, the worker type that runs task runs in-process.
"""
