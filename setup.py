"""Installs fmkt_plugin: Knowledge Transfer with Flow Matching (FM-KT) for MMRazor.

OpenMMLab's ``mim`` and mmengine's ``fmkt_plugin::path`` config references look for the configs,
the tools and ``model-index.yml`` in the installed package's ``.mim`` folder
(``<site-packages>/fmkt_plugin/.mim``). The ``build_py`` command below puts them there: a copy
in a regular build (wheel, sdist install), symbolic links into the repository in an editable
one (so the links follow the working tree).

It also installs ``fmkt_mmcv_ext_hook.pth`` into site-packages: at interpreter start it registers
the import finder that answers ``mmcv._ext`` with the plugin's torch/torchvision ops where mmcv
has no compiled ops (mmcv-lite; ``fmkt_plugin/compat/mmcv_ext.py``).
"""
import os
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE = 'fmkt_plugin'
#: what ``mim`` and mmengine read from ``<package>/.mim``: repository paths, copied as they are
MIM_FILES = ('configs', 'tools', 'model-index.yml')
#: the start-up hook of the mmcv ``_ext`` provider, placed at the root of site-packages
HOOK_PTH = 'fmkt_mmcv_ext_hook.pth'
_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pyo')


def read_requirements(name: str) -> list:
    path = HERE / 'requirements' / name
    lines = (line.split('#')[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def read_version() -> str:
    # the package's own version file, read without importing the package (it needs torch)
    text = (HERE / PACKAGE / 'version.py').read_text()
    return text.split("__version__ = '")[1].split("'")[0]


def add_mim_extension(mim_dir: Path, mode: str) -> list:
    """Put ``MIM_FILES`` into ``mim_dir``: ``mode='copy'`` copies them, ``'symlink'`` links to
    the repository's (relative links, as ``../../configs``). Returns the paths written."""
    if mode not in ('copy', 'symlink'):
        raise ValueError(f'add_mim_extension: mode must be copy or symlink, got {mode!r}')
    mim_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in MIM_FILES:
        src, dst = HERE / name, mim_dir / name
        if not src.exists():
            raise FileNotFoundError(f'add_mim_extension: {src} is missing (needed in .mim)')
        if dst.is_symlink() or dst.is_file():
            dst.unlink()
        elif dst.is_dir():
            shutil.rmtree(dst)
        if mode == 'symlink':
            dst.symlink_to(os.path.relpath(src, mim_dir), target_is_directory=src.is_dir())
        elif src.is_dir():
            shutil.copytree(src, dst, ignore=_IGNORE)
        else:
            shutil.copyfile(src, dst)
        written.append(str(dst))
    return written


class BuildPyWithMim(build_py):
    """``build_py`` that also places the ``.mim`` folder: copied into the build (wheels), or
    linked in the source package for an editable install."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            add_mim_extension(HERE / PACKAGE / '.mim', 'symlink')
            # an editable wheel takes nothing from build_lib; setuptools points install_lib at
            # the unpacked wheel's root, which becomes the root of site-packages
            root = Path(self.distribution.get_command_obj('install').install_lib)
        else:
            add_mim_extension(Path(self.build_lib) / PACKAGE / '.mim', 'copy')
            root = Path(self.build_lib)  # the root of build_lib lands in site-packages
        self.copy_file(str(HERE / HOOK_PTH), str(root / HOOK_PTH))


if __name__ == '__main__':  # pip and setuptools run this file as __main__; tests import it
    setup(
        name=PACKAGE,
        version=read_version(),
        description='Knowledge Transfer with Flow Matching (FM-KT) for OpenMMLab MMRazor',
        long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
        long_description_content_type='text/markdown',
        packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
        py_modules=['fmkt_mmcv_ext_hook'],
        python_requires='>=3.9',
        # mmcv 2.1.0 has no wheel for torch 2.14: scripts/bootstrap.sh installs mmcv-lite (or
        # builds the compiled mmcv with FMKT_MMCV=full), so it is deliberately not resolved here.
        install_requires=read_requirements('torch.txt') + read_requirements('runtime.txt'),
        # mmcv-lite is not a requirement: it would overwrite a compiled mmcv's files
        extras_require={'tests': read_requirements('tests.txt'), 'lite': ['mmcv-lite==2.1.0']},
        cmdclass={'build_py': BuildPyWithMim},
        license='Apache-2.0',
        zip_safe=False,
    )
