"""Installs fmkt_plugin: Knowledge Transfer with Flow Matching (FM-KT) for MMRazor."""
from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name: str) -> list:
    path = Path(__file__).parent / 'requirements' / name
    lines = (line.split('#')[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def read_version() -> str:
    # the package's own version file, read without importing the package (it needs torch)
    text = (Path(__file__).parent / 'fmkt_plugin' / 'version.py').read_text()
    return text.split("__version__ = '")[1].split("'")[0]


setup(
    name='fmkt_plugin',
    version=read_version(),
    description='Knowledge Transfer with Flow Matching (FM-KT) for OpenMMLab MMRazor',
    long_description=Path(__file__).with_name('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['fmkt_plugin', 'fmkt_plugin.*']),
    python_requires='>=3.9',
    # mmcv 2.1.0 has no wheel for torch 2.14 and is built from source by scripts/bootstrap.sh,
    # so it is deliberately not resolved here.
    install_requires=read_requirements('torch.txt') + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
