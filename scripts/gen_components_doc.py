"""Write docs/advanced_guides/components.md: every class fmkt_plugin registers, with its arguments,
their defaults and their descriptions, read from the code's signatures and docstrings.

    python scripts/gen_components_doc.py           # rewrite the page
    python scripts/gen_components_doc.py --check   # exit 1 if the page is not what the code says

The classes are found in mmengine's registry tree (every registry and its children: MMRazor's,
mmpretrain's, mmdet's) after ``import fmkt_plugin``, so nothing is listed by hand.
tests/test_components_reference.py runs ``--check``.
"""
import argparse
import inspect
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OUT = osp.join(REPO, 'docs', 'advanced_guides', 'components.md')
PACKAGE = 'fmkt_plugin'

#: section titles and order of the known sub-packages; any other sub-package gets a section too
GROUPS = {
    'models.schedules': 'Interpolant schedules',
    'models.solvers': 'Solvers',
    'models.meta_encoders': 'Meta-encoders (velocity models)',
    'models.connectors': 'Connectors (flows and projectors)',
    'models.heads': 'Heads',
    'models.necks': 'Necks',
    'models.losses': 'Losses',
    'models.algorithms': 'Algorithms',
    'rivals.diffkd': 'Rival: DiffKD (schedule, sampler, denoisers, connector, loss, algorithm)',
    'rivals.rdr': 'Rival: RDR (branches, loss, algorithm)',
    'rivals.vitkd': 'Rival: ViTKD (loss)',
    'rivals.nkd': "Rival: NKD (ViTKD's logit term)",
    'engine': 'Hooks',
}
_SECTION = re.compile(r'^(Args|Arguments|Returns|Raises|Attributes|Example|Examples|Note|Notes|'
                      r'Yields|Warning|Warnings|References|See Also):\s*$')
_ARG = re.compile(r'^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$')


def _registries() -> List:
    """Every registry reachable from mmengine's root registries."""
    import mmengine.registry as root
    from mmengine.registry import Registry
    todo = [v for v in vars(root).values() if isinstance(v, Registry)]
    seen, out = set(), []
    while todo:
        reg = todo.pop()
        if id(reg) in seen:
            continue
        seen.add(id(reg))
        out.append(reg)
        todo.extend(reg.children.values())
    return out


def collect() -> Dict[type, List[str]]:
    """Class -> the registries (``scope.NAME``) it is registered in."""
    import fmkt_plugin  # noqa: F401  (registers everything)
    found: Dict[type, set] = {}
    for reg in _registries():
        for cls in reg.module_dict.values():
            if inspect.isclass(cls) and cls.__module__.split('.')[0] == PACKAGE:
                found.setdefault(cls, set()).add(f'{reg.scope}.{reg.name.upper()}S'
                                                 if not reg.name.endswith('s') else
                                                 f'{reg.scope}.{reg.name.upper()}')
    return {cls: sorted(regs) for cls, regs in found.items()}


def _group(cls: type) -> str:
    parts = cls.__module__.split('.')[1:]
    for depth in (2, 1):
        key = '.'.join(parts[:depth])
        if key in GROUPS:
            return key
    return '.'.join(parts[:2]) if parts[:1] in (['models'], ['rivals']) else parts[0]


def _rst_to_md(text: str) -> str:
    text = re.sub(r':(?:class|func|meth|attr|data|mod|obj|exc):`~?([^`]+)`', r'`\1`', text)
    return text.replace('``', '`')


def _split_docstring(doc: str) -> Tuple[str, Dict[str, str], str]:
    """(narrative, {argument: description}, raises) of a Google-style docstring."""
    narrative, args, raises = [], {}, []
    section, current, base = None, None, None
    for line in doc.splitlines():
        stripped = line.strip()
        match = _SECTION.match(stripped) if line == line.lstrip() else None
        if match:
            section, current, base = match.group(1), None, None
            continue
        if section is None:
            narrative.append(line)
        elif section in ('Args', 'Arguments'):
            if not stripped:
                continue
            indent = len(line) - len(line.lstrip())
            arg = _ARG.match(stripped)
            if arg and (base is None or indent <= base):
                base, current = indent, arg.group(1).lstrip('*')
                args[current] = arg.group(3).strip()
            elif current is not None:
                args[current] = (args[current] + ' ' + stripped).strip()
        elif section == 'Raises' and stripped:
            raises.append(stripped)
    return '\n'.join(narrative).strip(), args, ' '.join(raises)


def _doc_args(cls: type) -> Dict[str, str]:
    """Argument descriptions from the class's docstring, then from its fmkt_plugin bases'."""
    out: Dict[str, str] = {}
    for klass in cls.__mro__:
        if klass.__module__.split('.')[0] != PACKAGE or not klass.__doc__:
            continue
        for name, text in _split_docstring(inspect.cleandoc(klass.__doc__))[1].items():
            out.setdefault(name, text)
    return out


def _default(value) -> str:
    if inspect.isclass(value) or inspect.isfunction(value):
        return value.__name__
    text = repr(value)
    return re.sub(r' at 0x[0-9a-f]+', '', text)


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def _annotation(param: inspect.Parameter) -> str:
    if param.annotation is inspect.Parameter.empty:
        return ''
    return inspect.formatannotation(param.annotation).replace('NoneType', 'None')


def _arguments(cls: type) -> List[Tuple[str, str, str, str]]:
    docs = _doc_args(cls)
    rows = []
    for name, param in inspect.signature(cls).parameters.items():
        if param.kind is param.VAR_POSITIONAL:
            label, default = f'*{name}', ''
        elif param.kind is param.VAR_KEYWORD:
            label, default = f'**{name}', ''
        else:
            label = name
            default = ('required' if param.default is inspect.Parameter.empty else
                       _default(param.default))
        rows.append((label, _annotation(param), default,
                     _rst_to_md(docs.get(name, '(not documented)'))))
    return rows


def _anchor(name: str) -> str:
    return name.lower()


def render() -> str:
    classes = collect()
    groups: Dict[str, List[type]] = {}
    for cls in classes:
        groups.setdefault(_group(cls), []).append(cls)
    order = [g for g in GROUPS if g in groups] + sorted(g for g in groups if g not in GROUPS)

    lines = [
        '# Components reference',
        '',
        '<!-- Generated by `python scripts/gen_components_doc.py` from the code; do not edit. -->',
        '',
        f'Every class `{PACKAGE}` registers ({len(classes)}), with the arguments of its '
        'constructor, their defaults and their descriptions, generated from the code\'s '
        'signatures and docstrings by `python scripts/gen_components_doc.py` '
        '(`tests/test_components_reference.py` fails when this page and the code differ). '
        'A config names a class by its registered name, `type=\'...\'`, once '
        '`custom_imports = dict(imports=[\'fmkt_plugin\'])` has registered it. How the parts '
        'fit together: [architecture](architecture.md); the formulas: [maths](maths.md).',
        '',
        '| kind | classes |',
        '|---|---|',
    ]
    for group in order:
        title = GROUPS.get(group, group)
        names = sorted(cls.__name__ for cls in groups[group])
        lines.append(f'| {title} | ' + ', '.join(f'[`{n}`](#{_anchor(n)})' for n in names) + ' |')
    for group in order:
        lines += ['', f'## {GROUPS.get(group, group)}']
        for cls in sorted(groups[group], key=lambda c: c.__name__):
            narrative, _, raises = _split_docstring(inspect.cleandoc(cls.__doc__ or ''))
            regs = ', '.join(f'`{r}`' for r in classes[cls])
            lines += ['', f'### {cls.__name__}', '',
                      f'`{cls.__module__}.{cls.__name__}`, registered in {regs}.', '']
            if narrative:
                lines += [_rst_to_md(narrative), '']
            rows = _arguments(cls)
            if rows:
                lines += ['| argument | type | default | description |', '|---|---|---|---|']
                for label, annotation, default, text in rows:
                    ann = f'`{_cell(annotation)}`' if annotation else ''
                    lines.append(f'| `{label}` | {ann} | `{_cell(default)}` | {_cell(text)} |'
                                 if default else f'| `{label}` | {ann} | | {_cell(text)} |')
            else:
                lines.append('No constructor arguments.')
            if raises:
                lines += ['', f'Raises: {_rst_to_md(raises)}']
    return '\n'.join(lines).rstrip() + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if the page differs from what the code says')
    parser.add_argument('--out', default=OUT, help='the page to write or check')
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = open(args.out).read() if osp.isfile(args.out) else ''
        if current != text:
            print(f'{args.out} is stale: run python scripts/gen_components_doc.py',
                  file=sys.stderr)
            return 1
        return 0
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    sys.exit(main())
