"""The read side: what analysts open, published from the ledger after each run without ever locking it for them."""
