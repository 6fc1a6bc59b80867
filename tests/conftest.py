"""Import fmkt_plugin before any test module imports mmrazor (it applies the compat fixes)."""
import fmkt_plugin  # noqa: F401
