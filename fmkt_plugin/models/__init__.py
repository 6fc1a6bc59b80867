"""FM-KT models: schedules, meta-encoders, solvers, connectors, heads, necks, losses, algorithms."""
from . import meta_encoders, schedules, solvers  # noqa: F401
from .meta_encoders import *  # noqa: F401,F403
from .schedules import *  # noqa: F401,F403
from .solvers import *  # noqa: F401,F403
