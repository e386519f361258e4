"""Shared fixtures: every test runs the real redo.py, through symlinks named
like the installed commands, in a fresh temporary directory."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDO_PY = ROOT / 'redo.py'
COMMANDS = ['redo', 'redo-ifchange', 'redo-ifcreate', 'redo-always',
            'redo-stamp', 'redo-recheck', 'redo-ood', 'redo-targets', 'redo-sources',
            'redo-whichdo', 'redo-log', 'redo-dot', 'redo-affects',
            'redo-cleanup', 'redo-clean', 'redo-cleandead', 'redo-rebuild']


@pytest.fixture(scope='session')
def bindir(tmp_path_factory):
    """A directory of symlinks to redo.py, one per command, as users make."""
    d = tmp_path_factory.mktemp('bin')
    for c in COMMANDS:
        os.symlink(REDO_PY, d / c)
    return d


class Sandbox:
    """A temporary project directory and a way to run redo commands in it."""

    def __init__(self, path, bindir):
        self.path = path
        self.bindir = bindir
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith('REDO') or k in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL'):
                del self.env[k]
        self.env['PATH'] = '%s:%s' % (bindir, self.env.get('PATH', '/usr/bin:/bin'))
        self.env['REDO_NO_SYNC'] = '1'
        self.env['NO_COLOR'] = '1'

    def write(self, name, text, mode=None):
        """Writes a file (dedenting nothing: pass exact text)."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if mode is not None:
            os.chmod(p, mode)
        return p

    def read(self, name):
        return (self.path / name).read_text()

    def exists(self, name):
        return os.path.lexists(self.path / name)

    def run(self, *args, cwd=None, env=None, input=None, timeout=60, check=None):
        """Runs a command (args[0] is a redo command name or any program);
        returns the CompletedProcess with text stdout and stderr.
        check=True asserts exit status 0, check=False asserts non-zero."""
        e = dict(self.env)
        if env:
            e.update(env)
        p = subprocess.run(list(args), cwd=str(cwd or self.path), env=e,
                           input=input, capture_output=True, text=True,
                           timeout=timeout)
        if check is True:
            assert p.returncode == 0, 'exit %d\n%s\n%s' % (p.returncode, p.stdout, p.stderr)
        elif check is False:
            assert p.returncode != 0, 'unexpected success\n%s\n%s' % (p.stdout, p.stderr)
        return p

    def redo(self, *args, **kw):
        return self.run('redo', *args, **kw)

    def ifchange(self, *args, **kw):
        return self.run('redo-ifchange', *args, **kw)

    def log(self, name):
        """Lines of a file that .do scripts append to, to count their runs."""
        p = self.path / name
        return p.read_text().split() if p.exists() else []


@pytest.fixture
def sb(tmp_path, bindir):
    yield Sandbox(tmp_path, bindir)
    kill_left_in(tmp_path)


def kill_left_in(root):
    """Kills what a test left running in its directory: the .do shells of
    a redo that a time-out killed would otherwise go on, waiting for a
    file that never comes, long after the test."""
    root = str(root)
    for n in os.listdir('/proc') if os.path.isdir('/proc') else ():
        if not n.isdigit() or int(n) == os.getpid():
            continue
        try:
            cwd = os.readlink('/proc/%s/cwd' % n)
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + '/'):
            try:
                os.kill(int(n), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(params=['pyenv-or-path-python', 'debian-python'])
def any_python(request):
    """Both interpreters on this machine, where present."""
    if request.param == 'debian-python':
        exe = '/usr/bin/python3'
        if not os.path.exists(exe):
            pytest.skip('no /usr/bin/python3')
        return exe
    return sys.executable


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: a test that takes seconds (still run by default)')
    config.addinivalue_line(
        'markers', 'random: a randomized test of t/test_random.py (seeds and steps set by --random-*)')


def pytest_addoption(parser):
    g = parser.getgroup('random', 'randomized differential tests (t/test_random.py)')
    g.addoption('--random-seed', action='append', default=[], metavar='N[,M...]',
                help='run only these seeds (as a failure prints them)')
    g.addoption('--random-seeds', type=int, default=None, metavar='N',
                help='run N seeds, from --random-base on (default: a new random base, printed)')
    g.addoption('--random-base', type=int, default=None, metavar='N',
                help='the first seed of --random-seeds')
    g.addoption('--random-steps', type=int, default=None, metavar='N',
                help='steps (edits + build) per seed')
    g.addoption('--random-features', default=None, metavar='SPEC',
                help="features of the generator: 'all' (known defects included), or "
                     "changes to the default set such as +fail_or,-dir3")
