"""The automate registry: declarations, their validation and their loading."""
