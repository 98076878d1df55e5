"""Plaid: the bank accounts of each tenant, read through /transactions/sync, /accounts/get and /item/get."""
