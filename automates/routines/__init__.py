"""Agents' routines: what an agent may see and change of the layer's schedules, through the
layer's MCP tools (automates/mcp/), each operation checked against the agent's scope."""
