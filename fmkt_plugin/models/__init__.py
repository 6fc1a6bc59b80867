"""FM-KT models: schedules, meta-encoders, solvers, connectors, heads, necks, losses, algorithms."""
