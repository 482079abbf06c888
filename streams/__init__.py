"""Faust app, pipeline stages and command line."""
