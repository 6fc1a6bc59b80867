"""Utilities: field-named validation, device copies, atomic file writes, checkpoint loading."""
