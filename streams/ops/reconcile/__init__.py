"""`tillbridge reconcile`: read both sides (``gather``), compare (``streams/reconcile``),
publish and report (``command``)."""
