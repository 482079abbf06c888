"""`tillbridge dlq`: list, show, replay and discard dead letters.

One module per concern, importing only downwards: :mod:`.model` (pure: ids, records,
selection, plans, audit entries, the backend seam), :mod:`.kafka_backend` (reads and writes
Kafka; imports the model) and :mod:`.commands` (the typer commands; imports the model, and
the Kafka backend only when a command runs). Nothing is re-exported here, so importing
the model does not load typer or the Kafka client.
"""
