"""Plumbing to the outside: Kafka, schema registry, NetSuite, POS simulators."""
