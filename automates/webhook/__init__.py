"""The webhook: an authenticated HTTP endpoint that starts a named automate's run."""
