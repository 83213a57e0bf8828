"""Example leadrank-bench plugin."""
