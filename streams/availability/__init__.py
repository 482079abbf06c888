"""NetSuite back to the stores: per-location availability moved by the POS between NetSuite
reads, oversell and replenishment signals, and order status changes (pure rules)."""
