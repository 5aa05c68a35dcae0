"""The layer's MCP server: the tools an agent uses to see and change its routines
(automates/routines/), on the official MCP SDK (decision 0043)."""
