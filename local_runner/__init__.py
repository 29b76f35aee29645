"""Runs the function app on one machine: Azurite, a local function host and a Graph sandbox.

Not deployed (see .funcignore). Core Tools cannot be installed everywhere, so this serves the same
``function_app.app`` with the host's semantics that the service relies on.
"""
