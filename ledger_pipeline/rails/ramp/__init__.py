"""Ramp: the business's corporate cards and bill pay, mirrored although Ramp has no change feed."""
