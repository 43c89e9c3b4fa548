"""The demo: a simulated crowd of readers, older articles with resolved questions, trades and comments.

Depends on ``forecasting`` and ``market``; nothing depends on it (``pyproject.toml``, importlinter).
"""
