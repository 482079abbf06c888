"""`tillbridge preflight`: the go-live rollout sequence as checks that can be rerun any time.

One module per concern, importing only downwards: :mod:`.model` (steps, the check
catalogue, typed inputs, the report), :mod:`.inputs` (reads mappings, a POS catalogue, till
traffic and a NetSuite snapshot into the model), :mod:`.checks` (pure findings over the
model), :mod:`.report` (renders a report) and :mod:`.command` (the typer command over all
of them). Nothing is re-exported here, so the model and checks load without typer.
"""
