"""SPEC §1 vendoring, and the sh launcher at the top of redo.py.

A project copies redo.py into its tree and runs it: no install step, no
redo command on PATH.  Every test here runs with PATH=/usr/bin:/bin (no
redo-* commands on it) and a private XDG_CACHE_HOME, so the launcher's
interpreter cache starts empty unless a test fills it."""

import marshal
import os
import shutil
import stat
import sys

import pytest

from conftest import COMMANDS, REDO_PY
from helpers import no_traceback

PLAIN_PATH = '/usr/bin:/bin'


class Project:
    """A project directory holding a copy of redo.py, and an environment
    with no redo on PATH."""

    def __init__(self, sb, name='proj'):
        self.sb = sb
        self.dir = sb.path / name
        self.dir.mkdir(parents=True)
        shutil.copy2(str(REDO_PY), str(self.dir / 'redo.py'))
        os.chmod(self.dir / 'redo.py', 0o755)
        self.cache = sb.path / 'cache home'
        self.env = {'PATH': PLAIN_PATH, 'XDG_CACHE_HOME': str(self.cache),
                    'HOME': str(sb.path / 'home')}

    @property
    def python_cache(self):
        return self.cache / 'redo.py' / 'python'

    def write(self, name, text, mode=None):
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if mode is not None:
            os.chmod(p, mode)
        return p

    def read(self, name):
        return (self.dir / name).read_text()

    def run(self, *args, cwd=None, env=None, **kw):
        e = dict(self.env)
        if env:
            e.update(env)
        return self.sb.run(*args, cwd=cwd or self.dir, env=e, **kw)


@pytest.fixture
def proj(sb):
    return Project(sb)


def simple_project(p):
    """all -> sub/x -> src, each step through redo-ifchange found on PATH."""
    p.write('src', 'source\n')
    p.write('all.do', 'redo-ifchange sub/x\necho all; cat sub/x\n')
    p.write('sub/x.do', 'redo-ifchange ../src\necho x; cat ../src\n')


def test_vendored_env_has_no_redo_on_path(proj):
    """The precondition every other test here relies on."""
    r = proj.run('sh', '-c', 'command -v redo || command -v redo-ifchange', check=False)
    assert r.stdout == ''


def test_vendored_redo_py_without_arguments_builds_all(proj):
    simple_project(proj)
    proj.run('./redo.py', check=True)
    assert proj.read('all') == 'all\nx\nsource\n'
    assert proj.read('sub/x') == 'x\nsource\n'


def test_vendored_redo_py_builds_named_target(proj):
    simple_project(proj)
    r = proj.run('./redo.py', 'sub/x', check=True)
    no_traceback(r)
    assert proj.read('sub/x') == 'x\nsource\n'
    assert not (proj.dir / 'all').exists()
    # and rebuilds it when its source changes
    proj.write('src', 'changed\n')
    proj.run('./redo.py', 'ifchange', 'sub/x', check=True)
    assert proj.read('sub/x') == 'x\nchanged\n'


@pytest.mark.parametrize('first', ['ifchange', 'redo-ifchange'])
def test_vendored_redo_py_command_as_first_argument(proj, first):
    simple_project(proj)
    proj.run('./redo.py', first, 'all', check=True)
    assert proj.read('all') == 'all\nx\nsource\n'
    r = proj.run('./redo.py', 'targets', check=True)
    assert sorted(r.stdout.split()) == ['all', 'sub/x']


def test_vendored_python3_redo_py_builds_target(proj, any_python):
    simple_project(proj)
    r = proj.run(any_python, 'redo.py', 'all', check=True)
    no_traceback(r)
    assert proj.read('all') == 'all\nx\nsource\n'
    proj.write('src', 'changed\n')
    proj.run(any_python, 'redo.py', 'ifchange', 'all', check=True)
    assert proj.read('all') == 'all\nx\nchanged\n'


SHADOWS = ('signal', 'enum', 'select', 'fcntl', 'heapq', 'time', 'json', 'shutil',
           'collections', 'os', 'io', 'marshal')


@pytest.mark.parametrize('how', ['./redo.py', 'python3 redo.py'])
def test_project_files_named_like_python_modules_are_not_imported(proj, any_python, how):
    # A project may well hold select.py or enum.py: redo's Python must not
    # import them, neither through the launcher (cwd) nor as a script (its
    # own directory).
    simple_project(proj)
    for name in SHADOWS:
        proj.write(name + '.py', 'raise SystemExit("imported the project\'s %s.py")\n' % name)
    argv = how.replace('python3', any_python).split()
    for args in (['all'], ['ifchange', 'all'], ['targets'], ['log', 'all'], ['ood']):
        r = proj.run(*argv, *args)
        assert r.returncode == 0, (args, r.stderr)
        assert 'imported the project' not in r.stderr + r.stdout
    assert proj.read('all') == 'all\nx\nsource\n'


def test_vendored_through_symlink_named_do(proj):
    simple_project(proj)
    os.symlink('redo.py', proj.dir / 'do')
    proj.run('./do', 'all', check=True)
    assert proj.read('all') == 'all\nx\nsource\n'
    proj.write('src', 'changed\n')
    proj.run('./do', check=True)          # no target: all
    assert proj.read('all') == 'all\nx\nchanged\n'


def test_vendored_from_subdirectory(proj, any_python):
    simple_project(proj)
    sub = proj.dir / 'sub'
    proj.run('../redo.py', 'x', cwd=sub, check=True)
    assert proj.read('sub/x') == 'x\nsource\n'
    proj.write('src', 'changed\n')
    proj.run(any_python, '../redo.py', 'x', cwd=sub, check=True)
    assert proj.read('sub/x') == 'x\nchanged\n'
    proj.run('../redo.py', '../all', cwd=sub, check=True)
    assert proj.read('all') == 'all\nx\nchanged\n'


def test_vendored_two_line_do_bootstrap(proj):
    simple_project(proj)
    proj.write('do', '#!/bin/sh\nexec "$(dirname "$0")/redo.py" "$@"\n', mode=0o755)
    assert len(proj.read('do').splitlines()) == 2
    proj.run('./do', check=True)
    assert proj.read('all') == 'all\nx\nsource\n'
    proj.write('src', 'changed\n')
    proj.run('../do', 'x', cwd=proj.dir / 'sub', check=True)
    assert proj.read('sub/x') == 'x\nchanged\n'
    proj.run('./do', 'all', check=True)
    assert proj.read('all') == 'all\nx\nchanged\n'


def test_vendored_project_under_path_with_spaces(sb, any_python):
    p = Project(sb, "my projects/the 'best' one")
    p.write('src', 'source\n')
    p.write('all.do', 'redo-ifchange "sub dir/x y"\ncat "sub dir/x y"\n')
    p.write('sub dir/x y.do', 'redo-ifchange ../src\necho "$1"; cat ../src\n')
    p.run('./redo.py', check=True)
    assert p.read('all') == 'x y\nsource\n'
    p.write('src', 'changed\n')
    p.run(any_python, 'redo.py', 'ifchange', 'all', check=True)
    assert p.read('all') == 'x y\nchanged\n'
    p.write('src', 'again\n')
    p.run('../redo.py', 'x y', cwd=p.dir / 'sub dir', check=True)
    assert p.read('sub dir/x y') == 'x y\nagain\n'


ALL_COMMANDS_DO = r'''
for c in %s; do
  command -v "$c" >/dev/null || { echo "$c is not on PATH" >&2; exit 1; }
  "$c" --version >/dev/null || { echo "$c --version failed" >&2; exit 1; }
done
redo-ifchange src dep
redo-ifcreate not-there
redo-always
echo stamp | redo-stamp
redo forced
redo-whichdo dep >whichdo.out
redo-targets >targets.out
redo-sources >sources.out
redo-ood >ood.out
redo-dot dep >dot.out
redo-affects src >affects.out
redo-log dep >log.out
echo ok
'''


def test_vendored_do_files_find_every_command(proj):
    proj.write('src', 's\n')
    proj.write('dep.do', 'redo-ifchange src\necho dep-log >&2\ncat src\n')
    proj.write('forced.do', 'echo forced\n')
    proj.write('all.do', ALL_COMMANDS_DO % ' '.join(COMMANDS))
    r = proj.run('./redo.py', 'all', check=True)
    no_traceback(r)
    assert proj.read('all') == 'ok\n'
    assert proj.read('forced') == 'forced\n'
    assert proj.read('whichdo.out') == 'dep.do\n'
    assert 'dep' in proj.read('targets.out').split()
    assert 'src' in proj.read('sources.out').split()
    assert 'dep' in proj.read('dot.out')
    assert 'dep' in proj.read('affects.out').split()
    assert 'dep-log' in proj.read('log.out')


def test_vendored_copies_named_like_commands(sb):
    """Copies (not symlinks) of redo.py named redo, redo-ifchange, ... work."""
    p = Project(sb)
    bindir = sb.path / 'copies'
    bindir.mkdir()
    for c in ('redo', 'redo-ifchange', 'redo-ood'):
        shutil.copy2(str(REDO_PY), str(bindir / c))
        os.chmod(bindir / c, 0o755)
    simple_project(p)
    env = {'PATH': '%s:%s' % (bindir, PLAIN_PATH)}
    p.run('redo-ifchange', 'all', env=env, check=True)
    assert p.read('all') == 'all\nx\nsource\n'
    p.write('src', 'changed\n')
    assert p.run('redo-ood', env=env, check=True).stdout.split() == ['all', 'sub/x']
    p.run('redo', env=env, check=True)
    assert p.read('all') == 'all\nx\nchanged\n'


# --- the launcher's interpreter cache ----------------------------------------

def test_launcher_works_without_interpreter_cache(proj):
    simple_project(proj)
    assert not proj.cache.exists()
    proj.run('./redo.py', check=True)
    assert proj.read('all') == 'all\nx\nsource\n'
    cached = proj.python_cache.read_text().strip()
    assert os.path.isabs(cached) and os.access(cached, os.X_OK), cached
    # a second start reads the cache and works just as well
    proj.write('src', 'changed\n')
    proj.run('./redo.py', check=True)
    assert proj.read('all') == 'all\nx\nchanged\n'


@pytest.mark.parametrize('bogus', [
    '/nonexistent/bin/python3',
    '',
    'not a path at all',
    'python3',
    '/',
])
def test_launcher_with_bogus_interpreter_cache(proj, bogus):
    simple_project(proj)
    proj.python_cache.parent.mkdir(parents=True)
    proj.python_cache.write_text(bogus + '\n')
    r = proj.run('./redo.py', check=True)
    no_traceback(r)
    assert proj.read('all') == 'all\nx\nsource\n'
    # the cache is repaired: it now names a real interpreter
    cached = proj.python_cache.read_text().strip()
    assert os.path.isabs(cached) and os.path.isfile(cached) and os.access(cached, os.X_OK), cached
    proj.write('src', 'changed\n')
    proj.run('./redo.py', check=True)
    assert proj.read('all') == 'all\nx\nchanged\n'


def test_launcher_with_unwritable_cache_directory(proj):
    simple_project(proj)
    proj.cache.parent.mkdir(parents=True, exist_ok=True)
    proj.cache.write_text('a file, not a directory\n')
    r = proj.run('./redo.py', check=True)
    no_traceback(r)
    assert proj.read('all') == 'all\nx\nsource\n'
    assert proj.cache.read_text() == 'a file, not a directory\n'


@pytest.mark.parametrize('how', ['no HOME', 'HOME missing', 'relative XDG_CACHE_HOME'])
def test_launcher_keeps_no_cache_where_it_should_not(proj, how):
    # The cache names what runs: never a shared place (/tmp, when HOME is
    # unset), nor a relative XDG_CACHE_HOME (a directory in each project),
    # nor a HOME made up because it was missing.
    simple_project(proj)
    home = proj.sb.path / 'no such home'
    env = ['env', '-u', 'XDG_CACHE_HOME', '-u', 'HOME']
    if how == 'HOME missing':
        env.append('HOME=%s' % home)
    elif how == 'relative XDG_CACHE_HOME':
        env += ['HOME=%s' % home, 'XDG_CACHE_HOME=rel']
    r = proj.run(*env, './redo.py', check=True)
    no_traceback(r)
    assert proj.read('all') == 'all\nx\nsource\n'
    assert not home.exists()
    assert not (proj.dir / 'rel').exists() and not (proj.dir / 'sub' / 'rel').exists()
    assert not proj.cache.exists()


def test_launcher_with_a_code_cache_that_is_not_code(proj):
    simple_project(proj)
    proj.run('./redo.py', check=True)
    codes = list((proj.cache / 'redo.py').glob('*.code'))
    assert codes
    for c in codes:
        c.write_bytes(marshal.dumps(42))
    proj.write('src', 'changed\n')
    r = proj.run('./redo.py', check=True)
    no_traceback(r)
    assert proj.read('all') == 'all\nx\nchanged\n'


def test_launcher_with_an_empty_environment(proj):
    # env -i: no PATH at all.  sh looks commands up on a default PATH of
    # its own, but the Python it finds there cannot tell where it is
    # (sys.executable is empty).
    found = proj.run('env', '-i', '/bin/sh', '-c', 'command -v python3 || command -v python')
    if not found.stdout.strip():
        pytest.skip("no python3 on sh's default PATH")
    simple_project(proj)
    r = proj.run('env', '-i', './redo.py')
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert proj.read('all') == 'all\nx\nsource\n'
    proj.write('src', 'changed\n')
    proj.run('env', '-i', './redo.py', 'ifchange', 'all', check=True)
    assert proj.read('all') == 'all\nx\nchanged\n'


def write_wrapper(path, log, real):
    """A python3 that logs each call to log, then execs the real one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\necho "$$ $*" >>"%s"\nexec "%s" "$@"\n' % (log, real))
    os.chmod(path, 0o755)


def test_launcher_uses_redo_python(proj, any_python):
    simple_project(proj)
    wrapper = proj.sb.path / 'wrap' / 'mypython'
    log = proj.sb.path / 'wrap.log'
    write_wrapper(wrapper, log, any_python)
    proj.python_cache.parent.mkdir(parents=True)
    proj.python_cache.write_text('/nonexistent/python3\n')
    r = proj.run('./redo.py', env={'REDO_PYTHON': str(wrapper)}, check=True)
    no_traceback(r)
    assert proj.read('all') == 'all\nx\nsource\n'
    assert log.exists() and log.read_text().strip(), 'REDO_PYTHON was not used'


@pytest.mark.parametrize('bogus', ['/bin/false', '/bin/true', '/nonexistent/python3',
                                   'no-such-python-here', '/', '/usr/lib/python3'])
def test_launcher_with_a_redo_python_that_is_not_python(proj, bogus):
    # exec'd as it is, /bin/false would fail without a word, /bin/true
    # succeed without doing anything.
    simple_project(proj)
    r = proj.run('./redo.py', env={'REDO_PYTHON': bogus})
    no_traceback(r)
    assert r.returncode != 0
    assert r.stderr == 'redo: REDO_PYTHON=%s is not a Python interpreter\n' % bogus
    assert not (proj.dir / 'all').exists()


def test_launcher_redo_python_wins_over_cache(proj, any_python):
    simple_project(proj)
    other = proj.sb.path / 'wrap' / 'cached-python'
    other_log = proj.sb.path / 'cached.log'
    write_wrapper(other, other_log, '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable)
    proj.python_cache.parent.mkdir(parents=True)
    proj.python_cache.write_text('%s\n' % other)
    wrapper = proj.sb.path / 'wrap' / 'mypython'
    log = proj.sb.path / 'wrap.log'
    write_wrapper(wrapper, log, any_python)
    proj.run('./redo.py', env={'REDO_PYTHON': str(wrapper)}, check=True)
    assert log.read_text().strip()
    assert not other_log.exists(), 'the cached interpreter was used despite REDO_PYTHON'
    # without REDO_PYTHON, the cache decides
    proj.write('src', 'changed\n')
    proj.run('./redo.py', check=True)
    assert other_log.read_text().strip()
    assert proj.read('all') == 'all\nx\nchanged\n'


def test_launcher_calls_python3_on_path_at_most_once(proj):
    """A python3 on PATH that is a slow wrapper (as pyenv's shims are) is
    asked for the interpreter once; the cache makes later starts skip it."""
    real = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable
    wrapdir = proj.sb.path / 'shims'
    log = proj.sb.path / 'shim.log'
    write_wrapper(wrapdir / 'python3', log, real)
    write_wrapper(wrapdir / 'python', log, real)
    env = {'PATH': '%s:%s' % (wrapdir, PLAIN_PATH)}
    simple_project(proj)
    proj.write('ood.do', 'redo-always\nredo-ifchange all\nredo-ood\nredo-targets\n')
    for i in range(3):
        proj.write('src', 'source %d\n' % i)
        proj.run('./redo.py', env=env, check=True)
        assert proj.read('all') == 'all\nx\nsource %d\n' % i
        proj.run('./redo.py', 'ood', env=env, check=True)
        proj.run('./redo.py', 'ifchange', 'ood', env=env, check=True)
        proj.run('./redo.py', 'targets', env=env, check=True)
    calls = log.read_text().splitlines() if log.exists() else []
    assert len(calls) <= 1, calls


def test_launcher_code_cache_follows_edits_to_redo_py(proj):
    p = proj.dir / 'redo.py'
    text = p.read_text()
    marker = "VERSION = '"
    i = text.index(marker) + len(marker)
    version = text[i:text.index("'", i)]
    r = proj.run('./redo.py', '--version', check=True)
    assert version in r.stdout
    old = r.stdout
    st = os.stat(p)
    new_text = text[:i] + '9' + text[i + 1:]           # same size
    assert len(new_text) == len(text) and new_text != text
    with open(p, 'r+') as f:                            # same inode
        f.write(new_text)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    r = proj.run('./redo.py', '--version', check=True)
    assert r.stdout != old
    assert '9' + version[1:] in r.stdout
