"""The Stripe rail: a Connect platform reading its connected accounts (client, errors, sandbox)."""
