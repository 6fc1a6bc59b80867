"""docs/advanced_guides/components.md is generated from the code (scripts/gen_components_doc.py)
and must stay what the code says: every registered class, its arguments and their defaults."""
import ast
import difflib
import glob
import os.path as osp

import pytest
from helpers import REPO, load_script

PAGE = osp.join(REPO, 'docs', 'advanced_guides', 'components.md')


@pytest.fixture(scope='module')
def gen():
    return load_script('gen_components_doc')


def test_the_checked_in_page_is_what_the_code_says(gen):
    with open(PAGE) as f:
        current = f.read()
    expected = gen.render()
    if current != expected:
        diff = ''.join(list(difflib.unified_diff(
            current.splitlines(True), expected.splitlines(True), 'checked in', 'generated'))[:60])
        pytest.fail('docs/advanced_guides/components.md is stale: run '
                    f'`python scripts/gen_components_doc.py`\n{diff}')


def _decorated_classes():
    """Classes of fmkt_plugin whose decorator registers them (register_model / register_module),
    found in the source, independently of the registry walk the generator does."""
    found = set()
    for path in glob.glob(osp.join(REPO, 'fmkt_plugin', '**', '*.py'), recursive=True):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for dec in node.decorator_list:
                func = dec.func if isinstance(dec, ast.Call) else dec
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
                if name in ('register_model', 'register_module'):
                    found.add(node.name)
    return found


def test_every_class_registered_in_the_source_has_a_section():
    with open(PAGE) as f:
        headings = {line[4:].strip() for line in f if line.startswith('### ')}
    classes = _decorated_classes()
    assert len(classes) >= 25
    assert not sorted(classes - headings), 'registered but not documented'
    assert not sorted(headings - classes), 'documented but not registered'


def test_every_argument_of_a_class_is_a_row_with_its_default(gen):
    import inspect

    from fmkt_plugin.models import FlowMatchingConnector, FMKTLoss
    page = open(PAGE).read()
    for cls in (FlowMatchingConnector, FMKTLoss):
        section = page[page.index(f'### {cls.__name__}\n'):]
        section = section[:section.find('\n### ', 1)]
        for name, param in inspect.signature(cls).parameters.items():
            row = next(line for line in section.splitlines() if line.startswith(f'| `{name}` |'))
            if param.default is not inspect.Parameter.empty:
                assert f'`{gen._default(param.default)}`' in row, row


def test_docstring_parser_reads_google_style_arguments(gen):
    doc = ('Summary line.\n\nMore text with ``code`` and :class:`Foo`.\n\nArgs:\n'
           '    alpha: first line\n        continued.\n    beta (int): second.\n'
           '    **kwargs: passed on.\n\nRaises:\n    ValueError: when bad.\n')
    narrative, args, raises = gen._split_docstring(doc)
    assert narrative == 'Summary line.\n\nMore text with ``code`` and :class:`Foo`.'
    assert args == {'alpha': 'first line continued.', 'beta': 'second.', 'kwargs': 'passed on.'}
    assert raises == 'ValueError: when bad.'
    assert gen._rst_to_md(narrative).endswith('with `code` and `Foo`.')


def test_check_mode_fails_on_a_stale_page(gen, tmp_path):
    stale = tmp_path / 'components.md'
    stale.write_text(open(PAGE).read().replace('| `num_steps` |', '| `steps` |', 1))
    assert gen.main(['--check', '--out', str(stale)]) == 1
    fresh = tmp_path / 'fresh.md'
    assert gen.main(['--out', str(fresh)]) == 0
    assert gen.main(['--check', '--out', str(fresh)]) == 0
