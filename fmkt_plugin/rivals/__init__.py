"""The rival methods the benchmark compares FM-KT with, each in its own package: DiffKD
(:mod:`.diffkd`: DDIM noise schedule and sampler, denoisers, connector, loss, algorithm) and our
reading of RDR (:mod:`.rdr`: re-parameterisable branches and their fold, loss, algorithm), and
ViTKD (:mod:`.vitkd`: its loss), the feature loss of the FM-KT authors' DeiT recipe, with NKD
(:mod:`.nkd`), the logit term ViTKD's authors run next to it.
They build on the FM-KT models (the shared distiller checks, the MSE metric, the interpolant
schedules); nothing in :mod:`fmkt_plugin.models` imports them."""
from . import diffkd, nkd, rdr, vitkd  # noqa: F401  (registers the components)
from .diffkd import *  # noqa: F401,F403
from .nkd import *  # noqa: F401,F403
from .rdr import *  # noqa: F401,F403
from .vitkd import *  # noqa: F401,F403
