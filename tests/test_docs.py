"""The README and docs/: length, layout, links (files and anchors), facts checked against the
configs and the registry, the README's commands run on tiny data, and the TensorBoard switch of
the visualisation guide on a tiny training run."""
import glob
import os
import os.path as osp
import re
import shlex

import pytest
from helpers import REPO, assert_trained_stably, load_tool

README = osp.join(REPO, 'README.md')
DOCS = osp.join(REPO, 'docs')
#: the pages of the documentation layout (OpenMMLab's, under docs/)
LAYOUT = [
    'README.md', 'get_started.md', 'rivals.md',
    'user_guides/train_test_export.md', 'user_guides/your_own_config.md',
    'user_guides/detection.md', 'user_guides/distributed.md',
    'user_guides/resume_reproducibility.md', 'user_guides/visualisation.md',
    'user_guides/mmrazor_configs.md',
    'advanced_guides/architecture.md', 'advanced_guides/components.md',
    'advanced_guides/maths.md', 'advanced_guides/overhead.md', 'advanced_guides/security.md',
    'advanced_guides/compat.md',
    'benchmark/README.md', 'benchmark/classification.md', 'benchmark/detection.md',
    'benchmark/theta.md', 'benchmark/authors.md',
    'notes/limitations.md', 'notes/changelog.md', 'notes/faq.md',
]


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _markdown_files():
    return ([README] + sorted(glob.glob(osp.join(DOCS, '**', '*.md'), recursive=True)) +
            sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md'))))


def _prose(text):
    """The text without fenced blocks and inline code (links inside them are not links)."""
    text = re.sub(r'^(```|~~~).*?^\1', '', text, flags=re.S | re.M)
    return re.sub(r'`[^`\n]*`', '', text)


def _links(text):
    return re.findall(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)', _prose(text))


def _slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r'[`*_]|<[^>]+>', '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def _anchors(path):
    seen, out = {}, set()
    for line in _prose(_read(path)).splitlines():
        match = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if match:
            slug = _slug(match.group(1))
            n = seen.get(slug, 0)
            out.add(slug if n == 0 else f'{slug}-{n}')
            seen[slug] = n + 1
    return out


# --------------------------------------------------------------------------------------------
# Length, layout, links
# --------------------------------------------------------------------------------------------
def test_readme_is_at_most_250_lines():
    assert len(_read(README).splitlines()) <= 250


def test_docs_follow_the_openmmlab_layout():
    missing = [p for p in LAYOUT if not osp.isfile(osp.join(DOCS, p))]
    assert not missing, f'missing docs pages: {missing}'
    # the moved pages are not left behind at their old places
    for old in ('architecture.md', 'overhead.md', 'detection_benchmark.md', 'theta.md'):
        assert not osp.exists(osp.join(DOCS, old)), old


def test_every_docs_page_is_linked_from_the_docs_index():
    index = osp.join(DOCS, 'README.md')
    linked = {osp.normpath(osp.join(DOCS, link.split('#')[0])) for link in _links(_read(index))}
    pages = set(glob.glob(osp.join(DOCS, '**', '*.md'), recursive=True)) - {index}
    assert not sorted(pages - linked), 'pages missing from docs/README.md'


@pytest.mark.parametrize('path', _markdown_files(), ids=lambda p: osp.relpath(p, REPO))
def test_every_relative_link_resolves(path):
    broken = []
    for link in _links(_read(path)):
        if re.match(r'^[a-z][a-z0-9+.-]*:', link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition('#')
        full = osp.normpath(osp.join(osp.dirname(path), target)) if target else path
        if not osp.exists(full):
            broken.append(f'{link} (no file {osp.relpath(full, REPO)})')
        elif anchor and full.endswith('.md') and anchor not in _anchors(full):
            broken.append(f'{link} (no heading #{anchor} in {osp.relpath(full, REPO)})')
    assert not broken, f'{osp.relpath(path, REPO)}: {broken}'


def test_link_checker_finds_broken_links_and_anchors(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# A title\n\n[ok](#a-title) [bad](missing.md) [anchor](#nope) '
                    '`[code](ignored.md)`\n')
    assert _links(page.read_text()) == ['#a-title', 'missing.md', '#nope']
    assert _anchors(str(page)) == {'a-title'}
    assert _slug('Should I use it?') == 'should-i-use-it'
    assert _slug('Test, and the number of steps N') == 'test-and-the-number-of-steps-n'


def test_docs_hold_no_change_history_or_machine_paths():
    banned = ['before the batched', 'the previous run', 'previous version of the benchmark',
              '/work/main', '/root/', 'helper session']
    for path in _markdown_files():
        text = _read(path).lower()
        found = [b for b in banned if b in text]
        assert not found, f'{osp.relpath(path, REPO)}: {found}'


_REPO_DIRS = ('fmkt_plugin/', 'benchmarks/', 'configs/', 'tools/', 'scripts/', 'tests/',
              'docs/', 'requirements/')


@pytest.mark.parametrize('path', [p for p in _markdown_files() if not p.endswith('rivals.md')],
                         ids=lambda p: osp.relpath(p, REPO))
def test_repository_paths_named_in_the_text_exist(path):
    """Inline-code paths into the repository (`tools/train.py`, `benchmarks/results/tune/`)
    name files and folders that exist (placeholders such as <...> or * are skipped)."""
    text = re.sub(r'^(```|~~~).*?^\1', '', _read(path), flags=re.S | re.M)
    missing = []
    for span in re.findall(r'`([^`\s]+)`', text):
        candidate = span.split(':')[0].rstrip('.,;')
        if (not candidate.startswith(_REPO_DIRS) or re.search(r'[<>*{}$]|\.\.\.', candidate)):
            continue
        if not osp.exists(osp.join(REPO, candidate)):
            missing.append(candidate)
    assert not missing, f'{osp.relpath(path, REPO)} names missing paths: {sorted(set(missing))}'


# --------------------------------------------------------------------------------------------
# What the README says, checked against the code and the configs
# --------------------------------------------------------------------------------------------
def test_readme_answers_the_newcomer_questions():
    text = _read(README)
    headings = [h.strip() for h in re.findall(r'^## (.*)$', text, flags=re.M)]
    for heading in ('Should I use it?', 'Installation', 'The two commands',
                    'Train, test and export', 'FM-KT in your MMRazor config',
                    'Components and options', 'Configs', 'Limitations', 'Citation and licence'):
        assert heading in headings, heading
    for needle in ('https://arxiv.org/abs/2402.02012', 'bash scripts/benchmark.sh',
                   'bash scripts/test.sh', 'tools/dist_train.sh', 'tools/slurm_train.sh',
                   'tools/convert_fmkt_ckpt_to_student.py', '--theta',
                   'model.architecture.head.flow.test_num_steps=4',
                   'model.head.flow.test_num_steps=4',
                   'model.architecture.neck.flow.test_num_steps',
                   'model.neck.flow.test_num_steps', '(CITATION.cff)', '(LICENSE)',
                   'docs/advanced_guides/components.md', 'docs/notes/limitations.md'):
        assert needle in text, needle
    # one delimited place for the verdicts, one for the main job's time
    assert text.count('<!-- verdicts:start') == 1 and text.count('<!-- verdicts:end') == 1
    assert text.count('<!-- main-job-time:') == 2
    block = text[text.index('<!-- verdicts:start'):text.index('<!-- verdicts:end')]
    assert 'not distinguishable' in block and 'better' in block


#: the reports the README's verdict block quotes
REPORTS = ('benchmarks/results/default/results.md', 'benchmarks/results/extended/results.md',
           'benchmarks/results/det-default/results.md', 'benchmarks/results/vit/results.md')
#: a paired difference as the reports write it: mean, then its 95% interval
_FIGURE = re.compile(r'([+-]\d+\.\d+)\s*(?:\|[^|]*\|\s*)?(\[[+-]?\d+\.\d+, [+-]?\d+\.\d+\])')


def _figures(text):
    """``(mean, interval)`` pairs of a text; in a report table the std column may sit between."""
    return set(_FIGURE.findall(text))


def _last_cell(row):
    return row.rstrip().rstrip('|').rsplit('|', 1)[-1].strip()


def test_readme_verdicts_match_the_benchmark_reports():
    """Every paired difference in the README's verdict block is one of a checked-in report's, with
    the same verdict word, and the block names the machine of the figures."""
    text = _read(README)
    block = text[text.index('<!-- verdicts:start'):text.index('<!-- verdicts:end')]
    reports = {path: _read(osp.join(REPO, path)) for path in REPORTS}
    rows = [line for report in reports.values() for line in report.splitlines()
            if line.startswith('|') and _figures(line)]
    quoted = [line for line in block.splitlines() if line.startswith('| ') and _figures(line)]
    assert len(quoted) >= 5, quoted
    words = ('better', 'worse', 'not distinguishable')
    for line in quoted:
        verdict = _last_cell(line)
        for figure in _figures(line):
            sources = [row for row in rows if figure in _figures(row)]
            assert sources, f'README figure {figure} is in no report: {line}'
            own = _last_cell(sources[0])
            if own in words:
                assert own in verdict, (line, sources[0])
    machine = re.compile(r'on (\d+-core CPU \([\w-]+\): [^,]+, [A-Z]|cuda)')
    for report in REPORTS[:2]:  # CPU model and SIMD level, or the GPU
        assert machine.search(reports[report]), report
    assert re.search(r'CPU|GPU', block)


@pytest.mark.parametrize('page', ['README.md', 'docs/get_started.md'])
def test_main_job_times_are_the_published_runs_wall_times(page):
    """The minutes a page gives for the main job and the extended profile are the wall times
    recorded in the published results (``meta.wall_time_s``), to the second."""
    import json

    text = _read(osp.join(REPO, page))
    start = text.index('<!-- main-job-time:')
    block = text[start:text.index('<!-- main-job-time: end', start)]
    quoted = re.findall(r'(\d+) min\s+(\d+) s', block)
    published = []
    for profile in ('default', 'extended'):
        with open(osp.join(REPO, 'benchmarks/results', profile, 'results.json')) as f:
            seconds = round(json.load(f)['meta']['wall_time_s'])
        published.append((str(seconds // 60), f'{seconds % 60:02d}'))
        assert f'**{round(seconds / 60)} minutes**' in block, (profile, seconds)
    assert quoted == published, (quoted, published)


def _model(config):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, config))


def test_readme_config_diff_is_the_difference_of_the_kd_and_fmkt_configs():
    kd = _model('configs/baselines/kd_resnet50_resnet18_in1k.py')
    fm = _model('configs/fmkt/resnet50_res18_in1k.py')
    assert (kd.model.type, fm.model.type) == ('SingleTeacherDistill', 'FMKTDistill')
    assert kd.model.architecture.head.type == 'LinearClsHead'
    assert fm.model.architecture.head.type == 'FlowMatchingClsHead'
    assert 'cfg_path' not in fm.model.architecture  # written out, so the head can be replaced
    sources = [{r.source for r in c.model.distiller.student_recorders.values()} for c in (kd, fm)]
    assert sources == [{'head.fc'}, {'head.step_head'}]
    (kd_loss, ), (fm_loss, ) = (c.model.distiller.distill_losses.values() for c in (kd, fm))
    assert kd_loss.type == 'KLDivergence' and fm_loss.type == 'FMKTLoss' and 'metric' in fm_loss
    (kd_map, ), (fm_map, ) = (c.model.distiller.loss_forward_mappings.values() for c in (kd, fm))
    assert (set(kd_map), set(fm_map)) == ({'preds_S', 'preds_T'}, {'preds', 'target'})
    for cfg in (kd, fm):
        assert 'fmkt_plugin' in cfg.custom_imports.imports
        assert 'EpochSeedHook' in [h.type for h in cfg.custom_hooks]
    diff = re.search(r'```diff\n(.*?)```', _read(README), re.S).group(1)
    for needle in ("-    type='SingleTeacherDistill'", "+    type='FMKTDistill'",
                   "_delete_=True, type='FlowMatchingClsHead'", "source='head.fc'",
                   "source='head.step_head'", "type='FMKTLoss', metric=",
                   "+            loss_fmkt=dict(preds=", 'target=dict(from_student=False',
                   "+custom_imports = dict(imports=['fmkt_plugin']",
                   "+custom_hooks = [dict(type='EpochSeedHook')]"):
        assert needle in diff, needle


def test_readme_names_only_registered_classes_and_every_fmkt_config():
    from mmengine.registry import HOOKS
    from mmrazor.registry import MODELS

    import fmkt_plugin  # noqa: F401
    text = _read(README)
    table = text[text.index('## Components and options'):text.index('## Configs')]
    names = set(re.findall(r'`([A-Z]\w+)`', table))
    assert len(names) >= 20
    unknown = [n for n in names if MODELS.get(n) is None and HOOKS.get(n) is None]
    assert not unknown, unknown
    configs = text[text.index('## Configs'):text.index('## Limitations')]
    for path in glob.glob(osp.join(REPO, 'configs', 'fmkt', '*.py')):
        assert f'`{osp.splitext(osp.basename(path))[0]}`' in configs, path


def test_flow_num_steps_is_where_the_readme_says():
    from fmkt_plugin.models import flow_num_steps
    assert callable(flow_num_steps)


# --------------------------------------------------------------------------------------------
# The README's commands, on tiny data
# --------------------------------------------------------------------------------------------
def _shell_commands(text):
    """Each command line of the bash blocks, continuation lines joined, as a token list."""
    for lang, body in re.findall(r'^```(\w*)\n(.*?)^```', text, flags=re.S | re.M):
        if lang not in ('bash', 'sh', 'shell'):
            continue
        for line in body.replace('\\\n', ' ').splitlines():
            tokens = shlex.split(line, comments=True)
            while tokens and re.match(r'^[A-Z_][A-Z0-9_]*=', tokens[0]):
                tokens = tokens[1:]  # GPUS=8 ... environment assignments
            if tokens:
                yield tokens


def _as_tool_call(tokens):
    """(tool, argv) of a tools/ command, the launchers as their one-process equivalent."""
    if tokens[0] == 'python' and tokens[1].startswith('tools/'):
        return osp.splitext(osp.basename(tokens[1]))[0], tokens[2:]
    if tokens[0] != 'bash' or not tokens[1].startswith('tools/'):
        return None
    script, args = osp.basename(tokens[1]), tokens[2:]
    if script == 'dist_train.sh':
        assert args[1].isdigit(), tokens
        return 'train', [args[0]] + args[2:]
    if script == 'dist_test.sh':
        assert args[2].isdigit(), tokens
        return 'test', args[:2] + args[3:]
    if script == 'slurm_train.sh':
        return 'train', [args[2], '--work-dir', args[3]] + args[4:]
    if script == 'slurm_test.sh':
        return 'test', args[2:4] + args[4:]
    raise AssertionError(f'unknown launcher in the README: {tokens}')


def test_readme_commands_are_recognised():
    calls = [c for c in map(_as_tool_call, _shell_commands(_read(README))) if c]
    tools = [tool for tool, _ in calls]
    assert tools.count('train') >= 4 and tools.count('test') >= 3
    assert tools.count('convert_fmkt_ckpt_to_student') >= 3
    for tool, argv in calls:
        assert osp.isfile(osp.join(REPO, 'tools', f'{tool}.py')), tool
        load_tool(tool).parse_args(argv)  # every flag exists
        for arg in argv:
            if arg.startswith('configs/'):
                assert osp.isfile(osp.join(REPO, arg)), arg


def _tiny_options(config, tiny_imagenet, coco, det_teacher):
    from fixtures.smoke import tiny_cls_options, tiny_det_options
    name = osp.basename(config)
    if name.endswith('_coco.py'):
        # a checkpoint of the teacher's architecture, so the teacher's pretrained backbone
        # init_cfg is never reached (nothing is downloaded)
        family = 'faster-rcnn' if 'faster-rcnn' in name else 'retinanet'
        return tiny_det_options(coco, family, det_teacher(family))
    if name.endswith('_in1k.py'):
        opts = tiny_cls_options(tiny_imagenet)
        opts['model.teacher_ckpt'] = None
        opts['model.allow_random_teacher'] = True  # a random teacher: nothing is downloaded
        return opts
    raise AssertionError(f'{config}: no tiny data for this config in tests/test_docs.py')


def _key_exists(cfg, key):
    node = cfg
    for part in key.split('.'):
        if not hasattr(node, 'keys') or part not in node:
            return False
        node = node[part]
    return True


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    from fixtures import write_coco_detection
    from fixtures.smoke import DET_IMAGE_SIZE
    return write_coco_detection(str(tmp_path_factory.mktemp('coco')),
                                num_images={'train': 4, 'val': 2}, image_size=DET_IMAGE_SIZE)


@pytest.fixture(scope='module')
def det_teacher(tmp_path_factory):
    """A random-weight checkpoint of a detection family's teacher, written once per family."""
    from fixtures.smoke import DET_TEACHERS, random_checkpoint
    out, cache = tmp_path_factory.mktemp('det_teacher'), {}

    def get(family):
        if family not in cache:
            cache[family] = random_checkpoint(DET_TEACHERS[family], str(out / f'{family}.pth'))
        return cache[family]

    return get


@pytest.mark.slow
def test_readme_commands_run_on_tiny_data(tiny_imagenet, tiny_coco, det_teacher, tmp_path,
                                          monkeypatch):
    """Every tools/ command of the README runs, in order, on tiny data: each shipped config
    becomes a child config with the tiny data, one epoch and a random-weight teacher;
    checkpoints named epoch_<N>.pth become epoch_1.pth; launchers run as one process (a
    launcher line whose work dir is already trained only has its arguments checked). Every
    --cfg-options key must sit in a dict of the config it overrides: mmengine would silently
    add a misplaced one (a misspelt argument then fails in the constructor)."""
    from fixtures.smoke import write_child_config
    from mmengine.config import Config
    monkeypatch.chdir(tmp_path)  # the README's relative work_dirs/ land here
    children, trained, results = {}, set(), []
    for tokens in _shell_commands(_read(README)):
        call = _as_tool_call(tokens)
        if call is None:
            continue
        tool, argv = call
        argv = [re.sub(r'epoch_\d+\.pth$', 'epoch_1.pth', a) for a in argv]
        for i, arg in enumerate(argv):
            if arg.startswith('configs/'):
                if arg not in children:
                    folder = tmp_path / 'tiny' / osp.dirname(arg)
                    folder.mkdir(parents=True, exist_ok=True)
                    children[arg] = write_child_config(
                        folder, osp.join(REPO, arg),
                        _tiny_options(arg, tiny_imagenet, tiny_coco, det_teacher),
                        name=osp.basename(arg))
                argv[i] = children[arg]
        args = load_tool(tool).parse_args(argv)
        if getattr(args, 'cfg_options', None):
            cfg = Config.fromfile(argv[0])
            for key in args.cfg_options:  # a misplaced key would add a dict nothing reads
                parent = key.rpartition('.')[0]
                assert _key_exists(cfg, parent), f'{" ".join(tokens)}: no {parent} in {argv[0]}'
        if tool == 'train':
            work_dir = osp.abspath(args.work_dir or osp.join(
                'work_dirs', osp.splitext(osp.basename(argv[0]))[0]))
            if work_dir in trained:
                continue
            trained.add(work_dir)
            runner = load_tool('train').main(argv)
            assert runner.epoch == 1 and osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
            assert_trained_stably(runner)
        elif tool == 'test':
            metrics = load_tool('test').main(argv)
            assert metrics and all(v == v for v in metrics.values() if isinstance(v, float))
            results.append((argv[0], metrics))
        else:
            load_tool(tool).main(argv)
    students = [m for cfg, m in results if cfg.endswith('student_config.py')]
    assert len(students) >= 3, results
    assert any('accuracy/top1' in m for m in students)
    assert any('coco/bbox_mAP' in m for m in students)


# --------------------------------------------------------------------------------------------
# TensorBoard, as the visualisation guide switches it on
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tensorboard_backend_of_the_visualisation_guide_writes_event_files(tiny_imagenet,
                                                                          tmp_path):
    pytest.importorskip('tensorboard')
    from fixtures.smoke import tiny_cls_options, write_child_config
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    guide = _read(osp.join(DOCS, 'user_guides', 'visualisation.md'))
    (tokens, ) = [t for t in _shell_commands(guide) if t[:2] == ['python', 'tools/train.py']]
    options = tokens[tokens.index('--cfg-options') + 1:]
    assert options == ['visualizer.vis_backends.0.type=TensorboardVisBackend']

    opts = tiny_cls_options(tiny_imagenet)
    opts['model.teacher_ckpt'] = None
    opts['model.allow_random_teacher'] = True
    cfg = write_child_config(tmp_path, osp.join(REPO, tokens[2]), opts)
    work = str(tmp_path / 'work')
    assert_trained_stably(load_tool('train').main([cfg, '--work-dir', work, '--cfg-options'] +
                                                  options))
    events = glob.glob(osp.join(work, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1, os.listdir(work)
    acc = EventAccumulator(events[0])
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    assert {'loss', 'lr', 'distill.loss_fmkt'} <= tags, tags
    assert len(acc.Scalars('loss')) == 4  # 8 images, batch 2, one epoch, logged every iteration
