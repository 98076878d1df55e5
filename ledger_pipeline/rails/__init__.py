"""Rails: one folder per external system, each declaring itself in its `rail.py` (lib/rails.py reads this)."""

from ledger_pipeline.rails.qbo.rail import RAIL as QBO
from ledger_pipeline.rails.plaid.rail import RAIL as PLAID
from ledger_pipeline.rails.ramp.rail import RAIL as RAMP
from ledger_pipeline.rails.stripe.rail import RAIL as STRIPE

RAILS = {rail.name: rail for rail in (QBO, STRIPE, PLAID, RAMP)}
