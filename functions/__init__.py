"""Thin Azure Functions blueprints: decode the trigger, call ``shared``, report."""
