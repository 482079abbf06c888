"""Reconciliation: what the tills took versus what NetSuite holds, per store, register and
business day (``model`` the typed records, ``compare`` the pure comparison, ``pos_side``
and ``netsuite_side`` how each side is read)."""
