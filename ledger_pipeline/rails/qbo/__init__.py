"""QuickBooks Online: entity table, httpx client and the offline sandbox."""
