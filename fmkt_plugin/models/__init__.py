"""FM-KT models: schedules, meta-encoders, solvers, connectors, heads, necks, losses, algorithms.
The rival methods (DiffKD, RDR) live in :mod:`fmkt_plugin.rivals`."""
from . import (  # noqa: F401
    algorithms,
    connectors,
    heads,
    losses,
    meta_encoders,
    necks,
    schedules,
    solvers,
)
from .algorithms import *  # noqa: F401,F403
from .connectors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .meta_encoders import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .schedules import *  # noqa: F401,F403
from .solvers import *  # noqa: F401,F403
