"""The `automates` command line."""
