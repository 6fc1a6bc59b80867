"""fmkt_plugin."""
