"""FM-KT models: schedules, meta-encoders, solvers, connectors, heads, necks, losses, algorithms;
the DiffKD denoisers and RDR's re-parameterisable branches."""
from . import (  # noqa: F401
    algorithms,
    connectors,
    denoisers,
    heads,
    losses,
    meta_encoders,
    necks,
    reparam,
    schedules,
    solvers,
)
from .algorithms import *  # noqa: F401,F403
from .connectors import *  # noqa: F401,F403
from .denoisers import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .meta_encoders import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .reparam import *  # noqa: F401,F403
from .schedules import *  # noqa: F401,F403
from .solvers import *  # noqa: F401,F403
