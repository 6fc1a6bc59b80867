import os

import pytest

import fmkt_plugin  # noqa: F401  (compat fixes must come before any mmrazor import)

os.environ.setdefault('OMP_NUM_THREADS', '2')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: end-to-end runs (still run in CI)')


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory):
    """An ImageNet-format folder with 4 classes: 2 train and 1 val image per class, 40 px."""
    from fixtures import write_imagenet_folder
    root, counts = write_imagenet_folder(str(tmp_path_factory.mktemp('imagenet')), num_classes=4)
    assert counts == {'train': 8, 'val': 4}
    return root


@pytest.fixture(scope='session')
def tiny_cifar(tmp_path_factory):
    """A CIFAR-100-format folder (``cifar-100-python`` pickles): 4 of the 100 classes, 2 train
    and 1 test image each."""
    from fixtures import write_cifar_folder
    return write_cifar_folder(str(tmp_path_factory.mktemp('cifar')), num_classes=4,
                              train_per_class=2, test_per_class=1)


@pytest.fixture(scope='session')
def teacher_ckpts(tmp_path_factory):
    """Locally written teacher checkpoints (random weights) standing in for the published ones,
    by mmpretrain config name; each is written at its first use."""
    from fixtures.smoke import random_checkpoint
    out = tmp_path_factory.mktemp('teachers')
    configs = {name: f'mmpretrain::resnet/{name}.py' for name in (
        'resnet34_8xb32_in1k', 'resnet50_8xb32_in1k', 'resnet50_8xb16_cifar100')}
    configs['deit3-small-p16_64xb64_in1k'] = 'mmpretrain::deit3/deit3-small-p16_64xb64_in1k.py'

    class _Lazy(dict):
        def __missing__(self, name):
            self[name] = random_checkpoint(configs[name], str(out / f'{name}.pth'))
            return self[name]

        def get(self, name, default=None):
            return self[name] if name in configs else default

    return _Lazy()


def _with_subclasses(cls):
    yield cls
    for sub in cls.__subclasses__():
        yield from _with_subclasses(sub)


@pytest.fixture(autouse=True)
def _fresh_visualizers():
    """Forget mmengine's visualizers after each test: every runner keeps one (and its figures)
    for the life of the process. Tests must not lean on compat Fix 11 (runners of the same second
    get their own visualizer) to stay apart, nor on each other's instances."""
    yield
    from mmengine.visualization import Visualizer
    for cls in _with_subclasses(Visualizer):
        cls._instance_dict.clear()
