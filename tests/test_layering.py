"""The plugin's layers: utils <- compat <- models <- rivals <- apis. No module imports from a
layer above its own (a lazy import inside a function counts too)."""
import ast
import os.path as osp
import pathlib

import pytest
from helpers import REPO

#: package -> the packages it must never import
FORBIDDEN = {
    'utils': ('compat', 'models', 'rivals', 'apis', 'engine'),
    'models': ('rivals', 'apis'),
    'rivals': ('apis', ),
}


def _imports(path: pathlib.Path):
    """The absolute names of what ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(REPO)
    package = rel.parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ''
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = '.'.join(base + ((name, ) if name else ()))
            yield name
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_no_layer_imports_from_above(layer):
    offenders = []
    for path in sorted(pathlib.Path(REPO, 'fmkt_plugin', layer).rglob('*.py')):
        for name in _imports(path):
            for above in FORBIDDEN[layer]:
                if name == f'fmkt_plugin.{above}' or name.startswith(f'fmkt_plugin.{above}.'):
                    offenders.append(f'{osp.relpath(path, REPO)}: {name}')
    assert offenders == []


def test_the_import_check_sees_relative_imports():
    """A relative import two levels up from models/algorithms resolves to fmkt_plugin.*."""
    path = pathlib.Path(REPO, 'fmkt_plugin', 'models', 'algorithms', 'fmkt_distill.py')
    assert 'fmkt_plugin.registry' in set(_imports(path))
