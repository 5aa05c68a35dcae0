"""Browser jobs: a whitelist of kinds, run in Chromium by `residential` workers.

See docs/browser.md.
"""
