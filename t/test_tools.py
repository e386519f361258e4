"""Installing, Python versions, and the tools for seeing a build: -d,
redo-log (tree and --trace), redo-dot, and the bundled example (t/example).

Every test drives the real commands.  Commands are found either through the
session's symlink directory (the `sb` fixture) or, where the point is what a
user without redo installed sees, with PATH=<one dir>:/usr/bin:/bin only and a
private XDG_CACHE_HOME, so that the launcher's interpreter cache starts empty.

Python versions are checked twice.  Statically: newer_python_uses() (its
docstring says how) parses redo.py, and the Python that its sh launcher
passes to `python -c`, with 3.8's grammar and searches the syntax tree for
standard-library names, keywords and operators that came after 3.8;
test_newer_stdlib_checker_catches_each_kind shows that it finds each kind.
And by running: test_runs_under_python builds and runs every listing command
under each interpreter >= 3.8 found here (pyenv's, Debian's), through
REDO_PYTHON, skipping those not installed."""

import ast
import glob
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time

import pytest

from conftest import COMMANDS, REDO_PY, ROOT
from helpers import no_traceback

PLAIN_PATH = '/usr/bin:/bin'
README = ROOT / 'README'
INSTALL_SH = ROOT / 'install.sh'


# =============================================================================
# Helpers
# =============================================================================

def private_env(sb, bindir):
    """PATH with only bindir before /usr/bin:/bin, and a private cache."""
    return {'PATH': '%s:%s' % (bindir, PLAIN_PATH),
            'XDG_CACHE_HOME': str(sb.path / 'cache'),
            'HOME': str(sb.path / 'home')}


def started(stderr):
    """The targets named on `redo  target` lines, in order (indentation
    stripped)."""
    return [m.group(1) for m in re.finditer(r'^redo {2,}(\S.*)$', stderr, re.M)]


def small_project(d):
    """all -> out/a.txt (from src.txt), b.txt (from src.txt and b.src);
    two levels, a subdirectory, stdout and $3 outputs, stderr in the log."""
    files = {
        'src.txt': 'hello\n',
        'b.src': 'bee\n',
        'all.do': 'redo-ifchange out/a.txt b.txt\n'
                  'echo "all: joining" >&2\n'
                  'cat out/a.txt b.txt\n',
        'out/a.txt.do': 'redo-ifchange ../src.txt\n'
                        'echo "a: upper-casing" >&2\n'
                        'tr a-z A-Z <../src.txt >"$3"\n',
        'b.txt.do': 'redo-ifchange src.txt b.src\n'
                    'cat b.src src.txt\n',
    }
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ['all', 'out/a.txt', 'b.txt']


SMALL_ALL = 'HELLO\nbee\nhello\n'


def readme_uninstall_line():
    lines = [l.strip() for l in README.read_text().splitlines()
             if l.strip().startswith('rm ') and '/usr/local/bin/' in l]
    assert len(lines) == 1, 'README should give one uninstall command: %r' % lines
    return lines[0]


def listing(p):
    return sorted(l for l in p.stdout.splitlines() if l)


def check_small_build(sb, env, where, label):
    """Builds the small project in `where` with env; checks the result and
    that every command runs from env's PATH."""
    targets = small_project(where)
    r = no_traceback(sb.run('redo', cwd=where, env=env))
    assert r.returncode == 0, '%s\n%s' % (label, r.stderr)
    assert (where / 'all').read_text() == SMALL_ALL
    assert sorted(started(r.stderr)) == sorted(targets)
    assert listing(sb.run('redo-targets', cwd=where, env=env, check=True)) == sorted(targets)
    assert listing(sb.run('redo-ood', cwd=where, env=env, check=True)) == []
    r = no_traceback(sb.run('redo-ifchange', 'all', cwd=where, env=env, check=True))
    assert started(r.stderr) == []
    (where / 'b.src').write_text('BEE\n')
    assert listing(sb.run('redo-ood', cwd=where, env=env, check=True)) == ['all', 'b.txt']
    r = no_traceback(sb.run('redo-ifchange', 'all', cwd=where, env=env, check=True))
    assert sorted(started(r.stderr)) == ['all', 'b.txt']
    assert (where / 'all').read_text() == 'HELLO\nBEE\nhello\n'


def check_bin_dir(d, copies):
    """d holds redo.py and one executable per command: symlinks that lead to
    d/redo.py, or regular files equal to redo.py."""
    names = set(os.listdir(d))
    assert names == set(COMMANDS) | {'redo.py'}, sorted(names)
    main = d / 'redo.py'
    assert not main.is_symlink() and main.is_file()
    assert main.read_bytes() == REDO_PY.read_bytes()
    for name in sorted(names):
        p = d / name
        assert os.access(p, os.X_OK), name
        if name == 'redo.py':
            continue
        if copies:
            assert not p.is_symlink(), name
            assert stat.S_ISREG(os.lstat(p).st_mode), name
            assert p.read_bytes() == REDO_PY.read_bytes(), name
        else:
            assert p.is_symlink(), name
            assert os.path.realpath(p) == os.path.realpath(main), name


def check_every_command_answers(sb, d, env):
    for c in COMMANDS:
        r = no_traceback(sb.run(str(d / c), '--version', env=env, check=True))
        assert r.stdout.split()[0] == c, (c, r.stdout)
    # And found by name on PATH:
    r = sb.run('sh', '-c', 'command -v redo-ifchange', env=env, check=True)
    assert r.stdout.strip() == str(d / 'redo-ifchange')


def run_uninstall(sb, command, env=None):
    r = sb.run('sh', '-c', command, env=env)
    assert r.returncode == 0, r.stderr


# =============================================================================
# install.sh
# =============================================================================

def test_readme_lists_the_commands_that_get_installed():
    """The README's command list is conftest's, which the install tests
    check that install.sh and --install make: a new command cannot be left
    out of the install unnoticed."""
    text = README.read_text()
    section = text.split('\nCommands\n', 1)[1].split('\nOptions of redo', 1)[0]
    documented = set(re.findall(r'^  (redo(?:-[a-z]+)?)\b', section, re.M))
    assert documented == set(COMMANDS)


def test_install_sh_with_prefix(sb):
    prefix = sb.path / 'prefix'
    r = no_traceback(sb.run(str(INSTALL_SH), env={'PREFIX': str(prefix)}))
    assert r.returncode == 0, r.stderr
    assert os.listdir(prefix) == ['bin']
    bindir = prefix / 'bin'
    check_bin_dir(bindir, copies=False)
    env = private_env(sb, bindir)
    check_every_command_answers(sb, bindir, env)
    proj = sb.path / 'proj'
    check_small_build(sb, env, proj, 'install.sh PREFIX')
    # Installing again over an installation works.
    r = sb.run(str(INSTALL_SH), env={'PREFIX': str(prefix)}, check=True)
    check_bin_dir(bindir, copies=False)
    # The README's uninstall line, for this prefix, removes all of it and
    # nothing else.
    (bindir / 'unrelated-tool').write_text('#!/bin/sh\n')
    run_uninstall(sb, readme_uninstall_line().replace('/usr/local', shlex.quote(str(prefix))))
    assert os.listdir(bindir) == ['unrelated-tool']


def test_install_sh_run_by_a_relative_path_with_cdpath_set(sb):
    # cd prints the directory it found through CDPATH: it must not end up
    # in the path install.sh copies from.
    prefix = sb.path / 'prefix'
    top = INSTALL_SH.parent
    r = no_traceback(sb.run('sh', os.path.join(top.name, 'install.sh'), str(prefix),
                            cwd=top.parent, env={'CDPATH': '.:' + str(sb.path)}))
    assert r.returncode == 0, r.stderr
    check_bin_dir(prefix / 'bin', copies=False)


def test_install_sh_prefix_as_argument_and_its_uninstall_comment(sb):
    """`./install.sh ~/.local` (README), and the Uninstall line that
    install.sh's header gives."""
    prefix = sb.path / 'my prefix'
    sb.run(str(INSTALL_SH), str(prefix), check=True)
    check_bin_dir(prefix / 'bin', copies=False)
    comment = [l for l in INSTALL_SH.read_text().splitlines() if l.startswith('# Uninstall:')]
    assert len(comment) == 1
    run_uninstall(sb, comment[0].split(':', 1)[1], env={'PREFIX': str(prefix)})
    assert os.listdir(prefix / 'bin') == []


def test_install_sh_with_destdir(sb):
    dest = sb.path / 'dest'
    r = sb.run(str(INSTALL_SH), env={'DESTDIR': str(dest), 'PREFIX': '/usr'})
    assert r.returncode == 0, r.stderr
    assert os.listdir(dest) == ['usr'] and os.listdir(dest / 'usr') == ['bin']
    bindir = dest / 'usr' / 'bin'
    check_bin_dir(bindir, copies=False)
    for c in COMMANDS:
        # Relative links: the staged tree works where it is and once moved.
        assert not os.readlink(bindir / c).startswith('/'), c
    env = private_env(sb, bindir)
    check_every_command_answers(sb, bindir, env)
    check_small_build(sb, env, sb.path / 'proj', 'install.sh DESTDIR')
    run_uninstall(sb, readme_uninstall_line().replace(
        '/usr/local', shlex.quote(str(dest / 'usr'))))
    assert os.listdir(bindir) == []


# =============================================================================
# ./redo.py --install DIR [--copy]
# =============================================================================

def vendored(sb):
    """A project holding a copy of redo.py, as a user vendors it."""
    d = sb.path / 'vendor'
    d.mkdir()
    shutil.copy2(str(REDO_PY), str(d / 'redo.py'))
    os.chmod(d / 'redo.py', 0o755)
    return d


@pytest.mark.parametrize('copy', [False, True], ids=['symlinks', 'copies'])
def test_install_option(sb, copy):
    v = vendored(sb)
    dest = sb.path / 'home' / 'bin dir'
    env = private_env(sb, '/nonexistent')
    args = ['./redo.py', '--install', str(dest)] + (['--copy'] if copy else [])
    r = no_traceback(sb.run(*args, cwd=v, env=env))
    assert r.returncode == 0, r.stderr
    check_bin_dir(dest, copies=copy)
    env = private_env(sb, dest)
    check_every_command_answers(sb, dest, env)
    proj = sb.path / 'proj'
    check_small_build(sb, env, proj, '--install')
    # The installed files also work as clients inside a build, called by
    # their full path (for copies, the sh fast path of a copy).
    (proj / 'c.txt.do').write_text('"$INSTALLED/redo-ifchange" b.txt\n'
                                   '"$INSTALLED/redo-always"\ncat b.txt\n')
    (proj / 'd.txt.do').write_text('"$INSTALLED/redo-ifchange" c.txt\ncat c.txt\n')
    e = dict(env, INSTALLED=str(dest))
    r = no_traceback(sb.run('redo', 'd.txt', cwd=proj, env=e))
    assert r.returncode == 0, r.stderr
    assert (proj / 'd.txt').read_text() == 'BEE\nhello\n'
    assert 'c.txt' in listing(sb.run('redo-ood', cwd=proj, env=env, check=True))
    assert 'b.txt' in sb.run('redo-log', '-r', 'd.txt', cwd=proj, env=env, check=True).stdout
    # The README's uninstall line, adapted to DIR, removes everything.
    run_uninstall(sb, readme_uninstall_line().replace('/usr/local/bin', shlex.quote(str(dest))))
    assert os.listdir(dest) == []


def test_install_option_over_an_earlier_install(sb):
    """Symlinks replaced by copies and back; options in either order; and
    an installed command can install again."""
    v = vendored(sb)
    dest = sb.path / 'bin'
    env = private_env(sb, '/nonexistent')
    sb.run('./redo.py', '--install', str(dest), cwd=v, env=env, check=True)
    check_bin_dir(dest, copies=False)
    sb.run('./redo.py', '--copy', '--install', str(dest), cwd=v, env=env, check=True)
    check_bin_dir(dest, copies=True)
    r = no_traceback(sb.run(str(dest / 'redo'), '--install', str(dest), env=env))
    assert r.returncode == 0, r.stderr
    check_bin_dir(dest, copies=False)
    # An installed copy installs copies again over itself.
    sb.run('./redo.py', '--install', str(dest), '--copy', cwd=v, env=env, check=True)
    for cmd in ('redo', 'redo-ifchange'):
        r = no_traceback(sb.run(str(dest / cmd), '--install', str(dest), '--copy', env=env))
        assert r.returncode == 0, r.stderr
        check_bin_dir(dest, copies=True)


def test_install_option_error_is_one_line(sb):
    v = vendored(sb)
    (sb.path / 'afile').write_text('x\n')
    r = no_traceback(sb.run('./redo.py', '--install', str(sb.path / 'afile' / 'bin'),
                            cwd=v, env=private_env(sb, '/nonexistent')))
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'afile' in r.stderr
    assert not os.path.exists(sb.path / 'afile' / 'bin')
    r = no_traceback(sb.run('./redo.py', '--install', cwd=v, env=private_env(sb, '/nonexistent')))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_install_option_error_exit_status_is_2(sb):
    v = vendored(sb)
    (sb.path / 'afile').write_text('x\n')
    r = no_traceback(sb.run('./redo.py', '--install', str(sb.path / 'afile' / 'bin'),
                            cwd=v, env=private_env(sb, '/nonexistent')))
    assert r.returncode == 2


# =============================================================================
# Python 3.8 to the newest
# =============================================================================

# Names that the standard library gained after 3.8, per module.  A use of
# `module.name` (after `import module`, also as an alias) or
# `from module import name` is reported.
NEWER_IN_MODULE = {
    'os': ['waitstatus_to_exitcode', 'pidfd_open', 'P_PIDFD', 'splice', 'SPLICE_F_MOVE',
           'SPLICE_F_NONBLOCK', 'SPLICE_F_MORE', 'eventfd', 'eventfd_read', 'eventfd_write',
           'EFD_CLOEXEC', 'EFD_NONBLOCK', 'EFD_SEMAPHORE', 'O_EVTONLY', 'O_FSYNC',
           'O_SYMLINK', 'O_NOFOLLOW_ANY', 'RWF_APPEND', 'login_tty', 'process_cpu_count',
           'unshare', 'setns', 'PIDFD_NONBLOCK', 'listdrives', 'listmounts', 'listvolumes',
           'timerfd_create', 'timerfd_settime', 'timerfd_settime_ns', 'timerfd_gettime',
           'timerfd_gettime_ns', 'grantpt', 'posix_openpt', 'ptsname', 'unlockpt',
           'POSIX_SPAWN_CLOSEFROM', 'EX_NOTFOUND'],
    'os.path': ['splitroot', 'isjunction', 'isreserved', 'isdevdrive'],
    'sys': ['stdlib_module_names', 'orig_argv', 'platlibdir', 'exception',
            'activate_stack_trampoline', 'deactivate_stack_trampoline',
            'is_stack_trampoline_active', 'monitoring', 'last_exc', '_is_gil_enabled',
            'set_int_max_str_digits', 'get_int_max_str_digits', 'getunicodeinternedsize',
            'is_remote_debug_enabled', 'remote_exec'],
    'functools': ['cache'],
    'math': ['lcm', 'nextafter', 'ulp', 'cbrt', 'exp2', 'sumprod', 'fma'],
    'itertools': ['pairwise', 'batched'],
    'contextlib': ['aclosing', 'chdir'],
    'random': ['randbytes', 'binomialvariate'],
    'signal': ['pidfd_send_signal', 'SIGSTKFLT'],
    'fcntl': ['F_OFD_GETLK', 'F_OFD_SETLK', 'F_OFD_SETLKW', 'F_GETPIPE_SZ', 'F_SETPIPE_SZ',
              'F_DUP2FD', 'F_DUP2FD_CLOEXEC', 'F_GETNOSIGPIPE', 'F_SETNOSIGPIPE',
              'FICLONE', 'FICLONERANGE'],
    'time': ['CLOCK_TAI'],
    'hashlib': ['file_digest'],
    'types': ['GenericAlias', 'NoneType', 'EllipsisType', 'NotImplementedType',
              'UnionType', 'get_original_bases', 'CapsuleType'],
    'typing': ['Annotated', 'ParamSpec', 'Concatenate', 'TypeAlias', 'TypeGuard',
               'is_typeddict', 'ParamSpecArgs', 'ParamSpecKwargs', 'Self', 'LiteralString',
               'Never', 'Required', 'NotRequired', 'TypeVarTuple', 'Unpack', 'assert_never',
               'assert_type', 'reveal_type', 'dataclass_transform', 'get_overloads',
               'clear_overloads', 'override', 'TypeAliasType', 'get_protocol_members',
               'is_protocol', 'NoDefault', 'ReadOnly', 'TypeIs'],
    'enum': ['StrEnum', 'ReprEnum', 'EnumCheck', 'FlagBoundary', 'verify', 'member',
             'nonmember', 'global_enum', 'EnumType'],
    'datetime': ['UTC'],
    'dataclasses': ['KW_ONLY'],
    'operator': ['call'],
    'asyncio': ['to_thread', 'TaskGroup', 'timeout', 'timeout_at', 'Runner', 'Barrier',
                'eager_task_factory'],
    'inspect': ['get_annotations', 'markcoroutinefunction'],
    'logging': ['getLevelNamesMapping', 'getHandlerByName', 'getHandlerNames'],
    'threading': ['gettrace', 'getprofile', 'settrace_all_threads', 'setprofile_all_threads'],
    'statistics': ['correlation', 'covariance', 'linear_regression', 'kde'],
    'pathlib': ['UnsupportedOperation'],
    'errno': ['EQFULL'],
    'shlex': [],
    'subprocess': [],
}

# Whole modules that are newer than 3.8.
NEWER_MODULES = ['zoneinfo', 'graphlib', 'tomllib', 'wsgiref.types',
                 'importlib.resources.abc', 'sys.monitoring', 'annotationlib',
                 'compression', 'string.templatelib']

# Builtins that are newer than 3.8, used as bare names.
NEWER_BUILTINS = ['aiter', 'anext', 'EncodingWarning', 'ExceptionGroup',
                  'BaseExceptionGroup', 'PythonFinalizationError']

# Methods of built-in types (and pathlib) newer than 3.8, whatever object
# they are called on (names chosen not to clash with older methods).
NEWER_METHODS = ['removeprefix', 'removesuffix', 'bit_count', 'is_relative_to',
                 'with_stem', 'hardlink_to', 'is_junction', 'full_match', 'from_uri',
                 'with_segments', 'add_note', 'cancelling', 'uncancel', 'pairwise']

# Keyword arguments that functions gained after 3.8, by the called name.
_SUBPROCESS = {'process_group', 'user', 'group', 'extra_groups', 'umask', 'pipesize'}
_HASHES = {'usedforsecurity'}
NEWER_KEYWORDS = {
    'dataclass': {'slots', 'kw_only', 'match_args', 'weakref_slot'},
    'zip': {'strict'},
    'run': _SUBPROCESS, 'Popen': _SUBPROCESS, 'call': _SUBPROCESS,
    'check_call': _SUBPROCESS, 'check_output': _SUBPROCESS,
    'rmtree': {'onexc', 'dir_fd'},
    'TemporaryDirectory': {'ignore_cleanup_errors', 'delete'},
    'NamedTemporaryFile': {'delete_on_close'},
    'glob': {'root_dir', 'dir_fd', 'include_hidden'},
    'iglob': {'root_dir', 'dir_fd', 'include_hidden'},
    'bisect': {'key'}, 'bisect_left': {'key'}, 'bisect_right': {'key'},
    'insort': {'key'}, 'insort_left': {'key'}, 'insort_right': {'key'},
    'realpath': {'strict'},
    'blake2b': _HASHES, 'blake2s': _HASHES, 'md5': _HASHES, 'sha1': _HASHES,
    'sha256': _HASHES, 'sha512': _HASHES, 'new': _HASHES,
    'ArgumentParser': {'exit_on_error', 'suggest_on_error', 'color'},
    'basicConfig': {'encoding', 'errors'},
    'copyfile': {'follow_symlinks_dirs'},
}

GENERIC_BUILTINS = {'list', 'dict', 'tuple', 'set', 'frozenset', 'type'}


def newer_python_uses(src, filename='<src>'):
    """The uses of Python newer than 3.8 in src, as 'line: what' strings.

    1. Syntax: ast.parse(src, feature_version=(3, 8)) rejects grammar that
       3.8 lacks (match, except*, parenthesised context managers, type
       parameters, ...).  A SyntaxError is reported as a use.
    2. Imports: `import m` / `from m import n` of a module in NEWER_MODULES,
       or a name in NEWER_IN_MODULE[m].
    3. Attributes: `m.n` where m is bound by an import of a module (or
       `import a.b as m`) and n is in NEWER_IN_MODULE for that module
       (`os.path.x` is resolved too); `x.n` for n in NEWER_METHODS on any
       object (str.removeprefix, int.bit_count, ...).
    4. Bare builtins in NEWER_BUILTINS (anext, ExceptionGroup, ...).
    5. Calls with a keyword in NEWER_KEYWORDS for the called name
       (dataclass(slots=), zip(strict=), subprocess.run(process_group=), ...),
       and int.to_bytes()/from_bytes() without the byteorder that 3.8 needs.
    6. Operators evaluated at runtime: `|` between types in an annotation
       (unless `from __future__ import annotations`) or in isinstance /
       issubclass; builtin generics like list[int] in an annotation; `|` and
       `|=` with a dict display, dict(...) or os.environ (dict union).
    7. f-strings that reuse their own quote inside (PEP 701, 3.12).
    """
    found = []
    try:
        tree = ast.parse(src, filename, feature_version=(3, 8))
    except SyntaxError as e:
        return ['%s: not 3.8 syntax: %s' % (e.lineno, e.msg)]
    modules = {}   # local name -> module name
    future_annotations = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in NEWER_MODULES:
                    found.append('%d: import %s' % (node.lineno, a.name))
                if a.asname:
                    modules[a.asname] = a.name
                else:
                    modules[a.name.split('.')[0]] = a.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == '__future__':
                future_annotations |= any(a.name == 'annotations' for a in node.names)
            for a in node.names:
                full = node.module + '.' + a.name
                if node.module in NEWER_MODULES or full in NEWER_MODULES:
                    found.append('%d: from %s import %s' % (node.lineno, node.module, a.name))
                elif a.name in NEWER_IN_MODULE.get(node.module, ()):
                    found.append('%d: from %s import %s' % (node.lineno, node.module, a.name))
                if full in NEWER_IN_MODULE or full in ('os.path',):
                    modules[a.asname or a.name] = full

    def module_of(expr):
        if isinstance(expr, ast.Name):
            return modules.get(expr.id)
        if isinstance(expr, ast.Attribute):
            m = module_of(expr.value)
            if m is not None:
                return m + '.' + expr.attr
        return None

    def called_name(func):
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
        return None

    def is_dictish(e):
        return (isinstance(e, (ast.Dict, ast.DictComp))
                or (isinstance(e, ast.Call) and called_name(e.func) == 'dict')
                or (isinstance(e, ast.Attribute) and e.attr == 'environ'))

    def check_annotation(ann, lineno):
        if ann is None or future_annotations:
            return
        for n in ast.walk(ann):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
                found.append('%d: X | Y in an annotation' % lineno)
            if (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)
                    and n.value.id in GENERIC_BUILTINS):
                found.append('%d: %s[...] in an annotation' % (lineno, n.value.id))

    for node in ast.walk(tree):
        line = getattr(node, 'lineno', 0)
        if isinstance(node, ast.Attribute):
            m = module_of(node.value)
            if m is not None and node.attr in NEWER_IN_MODULE.get(m, ()):
                found.append('%d: %s.%s' % (line, m, node.attr))
            if node.attr in NEWER_METHODS:
                found.append('%d: .%s' % (line, node.attr))
        elif isinstance(node, ast.Name) and node.id in NEWER_BUILTINS:
            found.append('%d: %s' % (line, node.id))
        elif isinstance(node, ast.Call):
            name = called_name(node.func)
            for kw in node.keywords:
                if kw.arg in NEWER_KEYWORDS.get(name, ()):
                    found.append('%d: %s(%s=)' % (line, name, kw.arg))
            kws = {kw.arg for kw in node.keywords}
            if name == 'to_bytes' and len(node.args) < 2 and 'byteorder' not in kws:
                found.append('%d: to_bytes() without byteorder' % line)
            if (name == 'from_bytes' and len(node.args) < 2
                    and 'byteorder' not in kws):
                found.append('%d: from_bytes() without byteorder' % line)
            if name in ('isinstance', 'issubclass') and len(node.args) == 2:
                if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                       for n in ast.walk(node.args[1])):
                    found.append('%d: %s(x, A | B)' % (line, name))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if is_dictish(node.left) or is_dictish(node.right):
                found.append('%d: dict union |' % line)
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.BitOr):
            if is_dictish(node.value) or is_dictish(node.target):
                found.append('%d: dict union |=' % line)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None:
                    check_annotation(arg.annotation, node.lineno)
            check_annotation(node.returns, node.lineno)
        elif isinstance(node, ast.AnnAssign):
            check_annotation(node.annotation, line)
        elif isinstance(node, ast.JoinedStr):
            seg = ast.get_source_segment(src, node)
            if seg:
                body = seg.lstrip('rRfFbBuU')
                q = body[:3] if body[:3] in ('"""', "'''") else body[:1]
                inner = body[len(q):-len(q)]
                if re.search(r'(?<!\\)' + re.escape(q), inner):
                    found.append('%d: f-string reusing its quote' % line)
    return found


def launcher_python_snippets():
    """The Python code that the sh part of redo.py passes to `python -c '...'`."""
    src = REDO_PY.read_text()
    sh_part = src.split('\n":"""\n', 1)[0]
    snippets = re.findall(r"\s-c '([^']*)'", sh_part)
    return snippets


def test_redo_py_parses_with_python38_grammar():
    src = REDO_PY.read_text()
    ast.parse(src, str(REDO_PY), feature_version=(3, 8))


def test_launcher_python_parses_with_python38_grammar():
    snippets = launcher_python_snippets()
    # The version probe and the code-cache loader.
    assert len(snippets) >= 2, snippets
    assert any('marshal' in s for s in snippets)
    for s in snippets:
        ast.parse(s, '<launcher>', feature_version=(3, 8))


def test_no_newer_standard_library_names():
    assert newer_python_uses(REDO_PY.read_text(), 'redo.py') == []
    for s in launcher_python_snippets():
        assert newer_python_uses(s, '<launcher>') == []


def imported_modules(src, name):
    """The top-level names of the modules src imports, anywhere in it (also
    inside functions and try blocks), as {module: first line}."""
    found = {}
    for node in ast.walk(ast.parse(src, name)):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.setdefault(a.name.split('.')[0], node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.setdefault(node.module.split('.')[0], node.lineno)
    return found


def test_only_the_standard_library_is_imported():
    # SPEC §1: standard library only.  The list of its modules is the
    # running Python's (3.10 or newer has one).
    stdlib = getattr(sys, 'stdlib_module_names', None)
    if stdlib is None:
        pytest.skip('this Python does not list its standard library modules')
    mods = imported_modules(REDO_PY.read_text(), 'redo.py')
    for s in launcher_python_snippets():
        mods.update(imported_modules(s, '<launcher>'))
    assert 'os' in mods and 'signal' in mods, mods      # the walk finds them
    assert {m: line for m, line in mods.items() if m not in stdlib} == {}


CHECKER_SAMPLES = [
    'import os\nos.waitstatus_to_exitcode(1)\n',
    'import os as o\no.pidfd_open(1)\n',
    'import os\nos.path.splitroot("x")\n',
    'from os import path\npath.isjunction("x")\n',
    'import os.path\nos.path.isreserved("x")\n',
    'from os import splice\n',
    '"x".removeprefix("y")\n',
    'b"x".removesuffix(b"y")\n',
    'import math\nmath.lcm(2, 3)\n',
    'import functools\n@functools.cache\ndef f(): pass\n',
    'from functools import cache\n',
    'import zoneinfo\n',
    'from graphlib import TopologicalSorter\n',
    '(5).bit_count()\n',
    'import os\nos.eventfd(0)\n',
    'import contextlib\ncontextlib.aclosing(x)\n',
    'import itertools\nitertools.pairwise([])\n',
    'import sys\nsys.stdlib_module_names\n',
    'from dataclasses import dataclass\n@dataclass(slots=True)\nclass C: pass\n',
    'from typing import TypeAlias\n',
    'import typing\nx = typing.ParamSpec("P")\n',
    'def f(x: int | None): pass\n',
    'def f() -> list[int]: pass\n',
    'isinstance(x, int | str)\n',
    'a = {"x": 1} | b\n',
    'import os\ne = os.environ | {"A": "1"}\n',
    'e |= {"A": "1"}\n',
    'zip(a, b, strict=True)\n',
    'import subprocess\nsubprocess.run(["x"], process_group=0)\n',
    'anext(it)\n',
    'x = (1).to_bytes()\n',
    'match x:\n    case 1:\n        pass\n',
    'try:\n    pass\nexcept* ValueError:\n    pass\n',
    'with (open("a") as f, open("b") as g):\n    pass\n',
    'def f[T](x: T): pass\n',
    'type Alias = int\n',
    'x = f"{d["k"]}"\n',
]


@pytest.mark.parametrize('sample', CHECKER_SAMPLES)
def test_newer_stdlib_checker_catches_each_kind(sample):
    """The static check (newer_python_uses, whose docstring explains it)
    finds each kind of newer use: it is not a test that cannot fail."""
    assert newer_python_uses(sample) != [], sample


def test_newer_stdlib_checker_accepts_38_code():
    ok = ('from __future__ import annotations\nimport os\n'
          'def f(x: int | None) -> list[int]: pass\n'
          'os.waitpid(1, 0)\n"x".startswith("y")\nx = 1 | 2\n'
          'n = (1).to_bytes(2, "big")\nzip(a, b)\nf"{x!r} {y}"\n'
          'if (n := 3): pass\n')
    assert newer_python_uses(ok) == []


def interpreters():
    """(id, path) of each Python >= 3.8 here: pyenv's and Debian's."""
    found = []
    for exe in sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/3.*/bin/python3'))):
        m = re.match(r'3\.(\d+)', os.path.basename(os.path.dirname(os.path.dirname(exe))))
        if m and int(m.group(1)) >= 8:
            found.append(('pyenv-' + os.path.basename(os.path.dirname(os.path.dirname(exe))), exe))
    found.append(('usr-bin-python3', '/usr/bin/python3'))
    return found


def old_interpreters():
    found = []
    for exe in sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/3.*/bin/python3'))):
        m = re.match(r'3\.(\d+)', os.path.basename(os.path.dirname(os.path.dirname(exe))))
        if m and int(m.group(1)) < 8:
            found.append(exe)
    return found or ['none-present']


def python_info(exe):
    r = subprocess.run([exe, '-c', 'import sys; print(sys.implementation.cache_tag);'
                        ' print("%d.%d" % sys.version_info[:2])'],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip('%s does not run' % exe)
    tag, version = r.stdout.split()
    return tag, tuple(int(x) for x in version.split('.'))


@pytest.mark.parametrize('exe', [p for i, p in interpreters()], ids=[i for i, p in interpreters()])
def test_runs_under_python(sb, exe):
    """A small build and every listing command, under each interpreter
    present (REDO_PYTHON), skipping those that are not."""
    if not os.access(exe, os.X_OK):
        pytest.skip('%s is not present' % exe)
    tag, version = python_info(exe)
    assert version >= (3, 8)
    env = dict(private_env(sb, sb.bindir), REDO_PYTHON=exe)
    proj = sb.path / 'proj'
    proj.mkdir()
    small_project(proj)
    (proj / 'st.do').write_text('redo-always\nredo-ifcreate nothing-here\n'
                                'echo stamped | redo-stamp\necho st\n')

    def run(*args, ok=True):
        r = no_traceback(sb.run(*args, cwd=proj, env=env))
        if ok:
            assert r.returncode == 0, '%s: %s\n%s' % (exe, args, r.stderr)
        return r

    r = run('redo', '-j2', 'all', 'st')
    assert (proj / 'all').read_text() == SMALL_ALL
    assert sorted(started(r.stderr)) == ['all', 'b.txt', 'out/a.txt', 'st']
    # The launcher really started this interpreter: its code cache is there.
    caches = os.listdir(sb.path / 'cache' / 'redo.py')
    assert any(n.startswith(tag + '-') and n.endswith('.code') for n in caches), caches
    assert started(run('redo-ifchange', 'all').stderr) == []
    (proj / 'src.txt').write_text('changed\n')
    assert listing(run('redo-ood')) == ['all', 'b.txt', 'out/a.txt', 'st']
    assert listing(run('redo-targets')) == ['all', 'b.txt', 'out/a.txt', 'st']
    assert listing(run('redo-sources')) == ['all.do', 'b.src', 'b.txt.do', 'out/a.txt.do',
                                            'src.txt', 'st.do']
    assert listing(run('redo-affects', 'b.src')) == ['all', 'b.txt']
    assert run('redo-whichdo', 'b.txt').stdout.splitlines()[-1] == 'b.txt.do'
    assert 'a: upper-casing' in run('redo-log', '-r', 'all').stdout
    trace = json.loads(run('redo-log', '--trace', '-').stdout)
    assert {e['name'] for e in trace['traceEvents'] if e['ph'] == 'X'} >= {'all', 'b.txt'}
    assert run('redo-dot').stdout.startswith('digraph')
    r = run('redo-ifchange', '-d', 'all')
    assert 'out of date' in r.stderr
    assert (proj / 'all').read_text() == 'CHANGED\nbee\nchanged\n'
    for c in COMMANDS:
        assert run(c, '--version').stdout.startswith(c + ' ')
    assert run('redo', '--help').stdout
    run('redo-cleanup')
    (proj / 'bad.do').write_text('echo broken >&2\nexit 4\n')
    r = run('redo', 'bad', ok=False)
    assert r.returncode == 1 and 'broken' in r.stderr
    r = run('redo-ifcreate', 'x', ok=False)
    assert r.returncode == 2


@pytest.mark.parametrize('exe', old_interpreters())
def test_older_python_is_a_clear_error(sb, exe):
    """SPEC §6: no traceback for anything the user can cause; REDO_PYTHON is
    the user's to set."""
    if not os.access(exe, os.X_OK):
        pytest.skip('no Python older than 3.8 here')
    sb.write('all.do', 'echo hi\n')
    r = sb.redo(env={'REDO_PYTHON': exe, 'XDG_CACHE_HOME': str(sb.path / 'cache')})
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr, r.stderr
    assert '3.8' in r.stderr, r.stderr


# =============================================================================
# -d / --debug / --explain
# =============================================================================

def explained(stderr):
    """{target: reason} from the -d lines ('up to date' or 'out of date: ...').
    A target explained twice is an error."""
    out = {}
    for m in re.finditer(r"^redo: debug: '?(.+?)'?: (up to date|out of date.*)$", stderr, re.M):
        assert m.group(1) not in out, 'explained twice: %s\n%s' % (m.group(1), stderr)
        out[m.group(1)] = m.group(2)
    return out


def debug_project(sb):
    sb.write('a.src', 'a\n')
    sb.write('b.src', 'b\n')
    sb.write('all.do', 'redo-ifchange a.out b.out c.out\ncat a.out b.out c.out\n')
    sb.write('a.out.do', 'redo-ifchange a.src\ncat a.src\n')
    sb.write('b.out.do', 'redo-ifchange b.src\n'
                         'if grep -q fail b.src; then echo "b: refusing" >&2; exit 5; fi\n'
                         'cat b.src\n')
    sb.write('c.out.do', 'redo-ifchange a.out\n'
                         'if [ -e c.cfg ]; then redo-ifchange c.cfg; cat c.cfg\n'
                         'else redo-ifcreate c.cfg; fi\ncat a.out\n')
    sb.redo('all', check=True)
    return ['all', 'a.out', 'b.out', 'c.out']


@pytest.mark.parametrize('flag', ['-d', '--debug', '--explain', 'REDO_DEBUG=1'])
def test_debug_clean_targets_are_up_to_date(sb, flag):
    targets = debug_project(sb)
    if flag.startswith('REDO_'):
        r = sb.ifchange('all', env={'REDO_DEBUG': '1'}, check=True)
    else:
        r = sb.ifchange(flag, 'all', check=True)
    why = explained(r.stderr)
    assert set(why) == set(targets), r.stderr
    assert all(v == 'up to date' for v in why.values()), why
    assert started(r.stderr) == []


def test_debug_never_built(sb):
    sb.write('x.src', 'x\n')
    sb.write('x.out.do', 'redo-ifchange x.src\ncat x.src\n')
    sb.write('y.out.do', 'redo-ifchange x.out\ncat x.out\n')
    r = sb.ifchange('-d', 'y.out', check=True)
    why = explained(r.stderr)
    assert set(why) == {'x.out', 'y.out'}
    assert all(v.startswith('out of date') and 'never built' in v for v in why.values()), why


# name: (change to make, what redo-ood lists then,
#        {target -d calls out of date: a word its reason must contain})
DEBUG_CASES = {
    'source edited': (lambda sb: sb.write('a.src', 'A!\n'), ['a.out', 'all', 'c.out'],
                      {'a.out': 'a.src', 'c.out': 'a.out', 'all': 'a.out'}),
    'ifcreate file appears': (lambda sb: sb.write('c.cfg', 'cfg\n'), ['all', 'c.out'],
                              {'c.out': 'c.cfg', 'all': 'c.out'}),
    '.do edited': (lambda sb: sb.write('b.out.do', 'redo-ifchange b.src\necho new\ncat b.src\n'),
                   ['all', 'b.out'], {'b.out': 'b.out.do', 'all': 'b.out'}),
    'last build failed': (None, ['all', 'b.out'], {'b.out': 'fail', 'all': 'fail'}),
    # Early cut-off: a.out comes back the same, so what depends on it is
    # up to date after all; redo-ood, which builds nothing, cannot know.
    'target deleted': (lambda sb: os.unlink(sb.path / 'a.out'), ['a.out', 'all', 'c.out'],
                       {'a.out': 'exist'}),
}


@pytest.mark.parametrize('case', list(DEBUG_CASES))
def test_debug_reasons_match_ood(sb, case):
    """After a change, -d gives every target one line; the ones it calls
    out of date are the ones redo-ood lists (all of them when each rebuild
    changes its output; a subset when early cut-off applies), each with a
    reason naming the cause; the rest are up to date; and afterwards
    nothing is out of date."""
    targets = debug_project(sb)
    change, ood_expected, expect = DEBUG_CASES[case]
    if change is None:
        sb.write('b.src', 'fail\n')
        r = sb.redo('all', check=False)
        assert 'b: refusing' in r.stderr
        sb.write('b.src', 'b\n')   # as before: still out of date, as it failed
    else:
        change(sb)
    ood = listing(sb.run('redo-ood', check=True))
    assert ood == ood_expected
    r = sb.ifchange('-d', 'all', check=True)
    why = explained(r.stderr)
    assert set(why) == set(targets), r.stderr
    called_ood = sorted(t for t, v in why.items() if v.startswith('out of date'))
    assert called_ood == sorted(expect), why
    assert set(called_ood) <= set(ood)
    if len(expect) == len(ood):
        assert called_ood == ood
    for t, word in expect.items():
        assert word in why[t].split(':', 1)[1], (t, why[t])
    for t in set(targets) - set(expect):
        assert why[t] == 'up to date', (t, why[t])
    assert sorted(started(r.stderr)) == called_ood
    assert listing(sb.run('redo-ood', check=True)) == []


def test_debug_always_and_forced(sb):
    sb.write('t.do', 'redo-always\necho t\n')
    sb.write('u.do', 'echo u\n')
    sb.redo('t', 'u', check=True)
    r = sb.ifchange('-d', 't', check=True)
    why = explained(r.stderr)
    assert why['t'].startswith('out of date') and 'always' in why['t'], why
    assert started(r.stderr) == ['t']
    r = sb.redo('-d', 'u', check=True)
    why = explained(r.stderr)
    # `redo` builds it regardless; -d says so rather than 'up to date'.
    assert why['u'].startswith('out of date'), why
    r = sb.ifchange('-d', 'u', check=True)
    assert explained(r.stderr) == {'u': 'up to date'}


# =============================================================================
# redo-log
# =============================================================================

LOG_HEAD = re.compile(r"^( *)redo '?(.+?)'? \((ok|FAILED), exit (-?\d+), (\d+(?:\.\d+)?)s\)$")


def log_tree(stdout):
    """[(depth-indent, target, result, exit, seconds, [stderr lines])]."""
    nodes = []
    for line in stdout.splitlines():
        m = LOG_HEAD.match(line)
        if m:
            nodes.append((len(m.group(1)), m.group(2), m.group(3), int(m.group(4)),
                          float(m.group(5)), []))
        else:
            assert nodes, 'stderr line before any target: %r' % line
            indent = len(line) - len(line.lstrip(' '))
            assert indent > nodes[-1][0], 'stderr line not under its target: %r' % line
            nodes[-1][5].append(line.strip())
    return nodes


def log_project(sb):
    sb.write('src', 'x\n')
    sb.write('all.do', 'redo-ifchange sub/mid\necho "all says hi" >&2\ncat sub/mid\n')
    sb.write('sub/mid.do', 'redo-ifchange leaf ../src\necho "mid line 1" >&2\n'
                           'echo "mid line 2" >&2\ncat leaf\n')
    sb.write('sub/leaf.do', 'sleep 0.3\necho "leaf done" >&2\necho leaf\n')


def test_log_tree(sb):
    log_project(sb)
    sb.redo('all', check=True)
    r = sb.run('redo-log', '-r', 'all', check=True)
    tree = log_tree(r.stdout)
    assert [(d, t) for d, t, *_ in tree] == [(0, 'all'), (2, 'sub/mid'), (4, 'sub/leaf')], r.stdout
    assert [n[5] for n in tree] == [['all says hi'], ['mid line 1', 'mid line 2'], ['leaf done']]
    for depth, t, result, code, secs, _ in tree:
        assert result == 'ok' and code == 0
    # Durations are real: leaf sleeps 0.3 s; its parents wait for it.
    secs = {t: s for d, t, res, c, s, lines in tree}
    assert 0.3 <= secs['sub/leaf'] < 10
    # Without -r: one target, its own stderr; no argument means all.
    tree = log_tree(sb.run('redo-log', 'sub/mid', check=True).stdout)
    assert [(t, lines) for d, t, res, c, s, lines in tree] == [
        ('sub/mid', ['mid line 1', 'mid line 2'])]
    tree = log_tree(sb.run('redo-log', check=True).stdout)
    assert [t for d, t, *_ in tree] == ['all']
    # Relative to the current directory.
    tree = log_tree(sb.run('redo-log', '-r', 'mid', cwd=sb.path / 'sub', check=True).stdout)
    assert [t for d, t, *_ in tree] == ['mid', 'leaf']
    # Only the last build's output is kept.
    sb.write('src', 'y\n')
    sb.ifchange('all', check=True)
    tree = log_tree(sb.run('redo-log', '-r', 'all', check=True).stdout)
    assert [n[5] for n in tree] == [['all says hi'], ['mid line 1', 'mid line 2'], ['leaf done']]


def fail_project(sb):
    sb.write('all.do', 'redo-ifchange ok.out bad.out\necho "all ran" >&2\n')
    sb.write('ok.out.do', 'echo "ok: fine" >&2\necho ok\n')
    sb.write('bad.out.do', 'echo good\n')


def test_log_after_a_failed_rebuild(sb):
    fail_project(sb)
    sb.redo('-j1', 'all', check=True)
    sb.write('bad.out.do', 'echo "bad: cannot find frobnitz.h" >&2\nexit 3\n')
    sb.redo('-j1', 'all', check=False)
    r = sb.run('redo-log', '-r', 'all')
    tree = {t: (res, code, lines) for d, t, res, code, s, lines in log_tree(r.stdout)}
    assert tree['bad.out'] == ('FAILED', 3, ['bad: cannot find frobnitz.h']), r.stdout
    assert tree['all'][0] == 'FAILED' and tree['all'][1] != 0
    assert tree['ok.out'] == ('ok', 0, ['ok: fine'])


def test_log_after_a_first_build_fails(sb):
    fail_project(sb)
    sb.write('bad.out.do', 'echo "bad: cannot find frobnitz.h" >&2\nexit 3\n')
    sb.redo('-j1', 'all', check=False)
    r = sb.run('redo-log', '-r', 'all')
    tree = {t: (res, code, lines) for d, t, res, code, s, lines in log_tree(r.stdout)}
    assert tree['all'][0] == 'FAILED' and tree['all'][1] != 0
    assert tree.get('bad.out') == ('FAILED', 3, ['bad: cannot find frobnitz.h']), r.stdout


def test_log_of_a_do_killed_by_a_signal_names_the_signal(sb):
    sb.write('x.do', 'echo before >&2\nkill -TERM $$\n')
    assert sb.redo('x').returncode == 1
    r = sb.run('redo-log', 'x', check=True)
    assert r.stdout.splitlines()[0].startswith('redo x (FAILED, killed by signal 15, '), r.stdout
    r = sb.run('redo-log', '--trace', '-', check=True)
    event = [e for e in json.loads(r.stdout)['traceEvents'] if e.get('name') == 'x'][0]
    assert event['args']['signal'] == 15 and 'exit' not in event['args'], event


def test_log_unknown_target_is_an_error(sb):
    r = no_traceback(sb.run('redo-log', 'nothing'))
    assert r.returncode != 0 and 'nothing' in r.stderr


def test_log_says_why_a_dependency_could_not_be_built(sb):
    # redo's own message about pages/new.txt (no .do file can build it)
    # shows with the log of what needed it.
    sb.write('all.do', 'redo-ifchange pages/new.txt\n')
    sb.write('pages/old.txt', 'old\n')
    build = sb.redo('all')
    assert build.returncode == 1 and 'no .do file to build it' in build.stderr
    r = no_traceback(sb.run('redo-log', '-r', 'all', check=True))
    assert r.stdout.splitlines() == [
        'redo all (FAILED, exit 1, %s)' % r.stdout.split(', ')[2].split(')')[0],
        '  redo pages/new.txt (not built: no .do file to build it, and it does not exist)']
    r = no_traceback(sb.run('redo-log', 'pages/new.txt'))
    assert r.returncode == 1 and r.stdout == ''
    assert r.stderr == 'redo-log: pages/new.txt: no .do file to build it, and it does not exist\n'


def test_log_of_a_source_or_a_target_not_built_yet_says_so(sb):
    sb.write('src', 'x\n')
    sb.write('x.do', 'echo x\n')
    r = no_traceback(sb.run('redo-log', 'src', 'x'))
    assert r.returncode == 1
    assert r.stderr.splitlines() == ['redo-log: src: a source file: redo does not build it',
                                     'redo-log: x: redo has not built it yet']


def test_log_u_is_accepted_and_shows_unchanged_dependencies(sb):
    log_project(sb)
    sb.redo('all', check=True)
    sb.write('all.do', sb.read('all.do') + '# edited\n')
    sb.redo('all', check=True)                 # sub/mid and sub/leaf unchanged
    r = sb.run('redo-log', '-r', 'all', check=True)
    u = sb.run('redo-log', '-r', '-u', 'all', check=True)
    assert u.stdout == r.stdout
    assert [t for d, t, *_ in log_tree(u.stdout)] == ['all', 'sub/mid', 'sub/leaf']
    assert sb.run('redo-log', '--unchanged', 'all', check=True).stdout == \
        sb.run('redo-log', 'all', check=True).stdout


def read_until(proc, text, timeout=20):
    """What proc wrote to stdout until text appeared (it is still running)."""
    import select
    import time
    out = b''
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while text.encode() not in out:
        left = end - time.monotonic()
        assert left > 0, 'timed out waiting for %r in %r' % (text, out)
        if select.select([fd], [], [], min(left, 0.5))[0]:
            data = os.read(fd, 65536)
            assert data, 'ended before %r: %r' % (text, out)
            out += data
    return out


def test_log_f_follows_a_running_build_until_it_ends(sb):
    sb.write('x.do', 'echo "first line" >&2\n: >started\n'
                     'i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n'
                     'echo "second line" >&2\nexit 3\n')
    build = subprocess.Popen(['redo', 'x'], cwd=str(sb.path), env=sb.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    follow = None
    try:
        end = time.monotonic() + 20
        while not (sb.path / 'started').exists():
            assert build.poll() is None and time.monotonic() < end
            time.sleep(0.01)
        follow = subprocess.Popen(['redo-log', '-f', 'x'], cwd=str(sb.path), env=sb.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen = read_until(follow, 'first line')      # while it still runs
        assert follow.poll() is None and build.poll() is None
        assert b'second line' not in seen
    finally:
        sb.write('go', '')
        build.wait(timeout=30)
        if follow is not None:
            out, err = follow.communicate(timeout=30)
    assert build.returncode == 1
    assert follow.returncode == 0, err
    text = (seen + out).decode()
    assert text.splitlines()[:3] == ['redo x (building)', '  first line', '  second line']
    assert re.match(r'redo x \(FAILED, exit 3, \d+\.\d+s\)$', text.splitlines()[3]), text
    assert len(text.splitlines()) == 4, text


def test_log_f_without_a_running_build_shows_the_last_log(sb):
    sb.write('x.do', 'echo "only line" >&2\necho x\n')
    sb.redo('x', check=True)
    r = sb.run('redo-log', '-f', 'x', timeout=20, check=True)
    assert r.stdout == sb.run('redo-log', 'x', check=True).stdout
    assert 'only line' in r.stdout


# =============================================================================
# redo-log --trace
# =============================================================================

def load_trace(text):
    """Parses trace JSON strictly (no NaN/Infinity) and checks the documented
    fields of the Trace Event Format."""
    def no_constants(c):
        raise ValueError('not JSON: %s' % c)
    data = json.loads(text, parse_constant=no_constants)
    assert isinstance(data, dict) and isinstance(data['traceEvents'], list)
    if 'displayTimeUnit' in data:
        assert data['displayTimeUnit'] in ('ms', 'ns')
    number = (int, float)
    for e in data['traceEvents']:
        assert isinstance(e.get('ph'), str), e
        assert isinstance(e['pid'], int) and not isinstance(e['pid'], bool), e
        assert isinstance(e['tid'], int) and not isinstance(e['tid'], bool), e
        if e['ph'] == 'X':
            assert isinstance(e['name'], str) and e['name'], e
            for k in ('ts', 'dur'):
                assert isinstance(e[k], number) and not isinstance(e[k], bool), e
                assert e[k] >= 0, e
            if 'args' in e:
                assert isinstance(e['args'], dict)
        elif e['ph'] == 'M':
            assert e['name'] in ('process_name', 'process_labels', 'process_sort_index',
                                 'thread_name', 'thread_sort_index'), e
            assert isinstance(e['args'], dict), e
            if e['name'].endswith('_name'):
                assert isinstance(e['args']['name'], str), e
        else:
            pytest.fail('unexpected event phase: %r' % e)
    xs = [e for e in data['traceEvents'] if e['ph'] == 'X']
    ms = [e for e in data['traceEvents'] if e['ph'] == 'M']
    assert ms, 'no metadata event (process name)'
    # Complete events on one thread must nest or be disjoint, or the viewer
    # cannot draw them.
    by_tid = {}
    for e in xs:
        by_tid.setdefault((e['pid'], e['tid']), []).append((e['ts'], e['ts'] + e['dur'], e['name']))
    for tid, spans in by_tid.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        open_ = []
        for s in spans:
            while open_ and open_[-1][1] <= s[0]:
                open_.pop()
            assert not open_ or s[1] <= open_[-1][1], \
                'overlapping, not nested, on tid %s: %s and %s' % (tid, open_[-1], s)
            open_.append(s)
    return {e['name']: e for e in xs}


def par_project(sb):
    sb.write('all.do', 'redo-ifchange a.out b.out\ncat a.out b.out\n')
    # No redo-ifchange in the leaves: a .do waiting for its dependencies
    # gives its slot away, so with -j1 it could overlap with its sibling.
    sb.write('a.out.do', 'sleep 0.4\necho a\n')
    sb.write('b.out.do', 'sleep 0.4\necho b\n')


def overlap(x, y):
    return x['ts'] < y['ts'] + y['dur'] and y['ts'] < x['ts'] + x['dur']


def test_trace_parallel_targets_on_different_rows(sb):
    par_project(sb)
    sb.redo('-j2', 'all', check=True)
    sb.run('redo-log', '--trace', 'trace.json', check=True)
    xs = load_trace(sb.read('trace.json'))
    assert set(xs) == {'all', 'a.out', 'b.out'}
    a, b, top = xs['a.out'], xs['b.out'], xs['all']
    # Microseconds: each sleeps 0.4 s.
    for e in (a, b):
        assert 400000 <= e['dur'] < 10000000, e
    assert overlap(a, b), (a, b)
    assert a['tid'] != b['tid']
    # all ran before its dependencies started and after they ended; the
    # time it waited for them in between is not drawn as its work.
    tops = sorted((e for e in json.loads(sb.read('trace.json'))['traceEvents']
                   if e.get('name') == 'all'), key=lambda e: e['ts'])
    assert tops[0]['ts'] <= min(a['ts'], b['ts'])
    assert tops[-1]['ts'] + tops[-1]['dur'] >= max(a['ts'] + a['dur'], b['ts'] + b['dur'])
    assert all(e['dur'] < 400000 for e in tops)
    # The same JSON on stdout with `-`.
    r = sb.run('redo-log', '--trace', '-', check=True)
    assert load_trace(r.stdout) == xs


def test_trace_sequential_with_j1_and_last_run_only(sb):
    par_project(sb)
    sb.redo('-j1', 'all', check=True)
    xs = load_trace(sb.run('redo-log', '--trace', '-', check=True).stdout)
    a, b = xs['a.out'], xs['b.out']
    assert not overlap(a, b), (a, b)
    first, second = sorted((a, b), key=lambda e: e['ts'])
    assert second['ts'] >= first['ts'] + first['dur'] - 1
    assert second['ts'] - first['ts'] >= 400000
    # The next run rebuilds a.out and all only: the trace shows that run.
    sb.write('a.out.do', 'sleep 0.4\necho A\n')
    sb.ifchange('all', check=True)
    xs = load_trace(sb.run('redo-log', '--trace', '-', check=True).stdout)
    assert set(xs) == {'a.out', 'all'}


def test_trace_of_a_failed_run(sb):
    fail_project(sb)
    sb.write('bad.out.do', 'exit 3\n')
    sb.redo('-j1', 'all', check=False)
    xs = load_trace(sb.run('redo-log', '--trace', '-', check=True).stdout)
    assert 'bad.out' in xs
    assert xs['bad.out'].get('args', {}).get('exit') == 3


def test_trace_without_any_build_is_an_error(sb):
    r = no_traceback(sb.run('redo-log', '--trace', '-'))
    assert r.returncode != 0 and r.stderr.strip()


def test_trace_many_jobs_at_once_never_share_a_row(sb):
    n = 70
    sb.write('all.do', 'for i in $(seq 1 %d); do echo t$i.out; done | xargs redo-ifchange\n' % n)
    sb.write('default.out.do', 'sleep 0.4\necho $1\n')
    sb.redo('-j%d' % (n + 5), 'all', check=True)
    xs = load_trace(sb.run('redo-log', '--trace', '-', check=True).stdout)
    assert len(xs) == n + 1


# =============================================================================
# redo-dot
# =============================================================================

NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*)\s*\[([^\]]*)\];?\s*$')
EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*)\s*->\s*'
                  r'("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*)\s*(\[[^\]]*\])?;?\s*$')


def unquote(s):
    if s.startswith('"'):
        return re.sub(r'\\(.)', r'\1', s[1:-1])
    return s


def parse_dot(text):
    nodes, edges = {}, set()
    for line in text.splitlines():
        m = EDGE.match(line)
        if m:
            edges.add((unquote(m.group(1)), unquote(m.group(2)), m.group(3) or ''))
            continue
        m = NODE.match(line)
        if m and unquote(m.group(1)) not in ('node', 'edge', 'graph'):
            attrs = dict(re.findall(r'(\w+)\s*=\s*("[^"]*"|[^,\s]+)', m.group(2)))
            nodes.setdefault(unquote(m.group(1)), {}).update(attrs)
    return nodes, edges


def dot_project(sb):
    sb.write('a.src', 'a\n')
    sb.write('b.src', 'b\n')
    sb.write('all.do', 'redo-ifchange a.out b.out\ncat a.out b.out\n')
    sb.write('a.out.do', 'redo-ifchange a.src\nredo-ifcreate a.cfg\ncat a.src\n')
    sb.write('b.out.do', 'redo-ifchange b.src\ncat b.src\n')
    sb.write('odd "name" here.out.do', 'redo-ifchange b.out\ncat b.out\n')
    sb.redo('all', 'odd "name" here.out', check=True)
    sb.write('a.src', 'A\n')
    return {'all', 'a.out', 'b.out', 'odd "name" here.out'}


def test_dot_styles(sb):
    targets = dot_project(sb)
    ood = set(listing(sb.run('redo-ood', check=True)))
    assert ood == {'all', 'a.out'}
    r = sb.run('redo-dot', check=True)
    assert r.stdout.lstrip().startswith('digraph')
    nodes, edges = parse_dot(r.stdout)
    sources = {'a.src', 'b.src', 'all.do', 'a.out.do', 'b.out.do', 'odd "name" here.out.do'}
    assert set(nodes) >= targets | sources, sorted(nodes)
    for t in targets:
        assert nodes[t].get('shape') == 'box', (t, nodes[t])
    for s in sources:
        assert nodes[s].get('shape') == 'ellipse', (s, nodes[s])
    red = {n for n, a in nodes.items() if 'red' in a.values()}
    assert red == ood
    plain = {(a, b) for a, b, attrs in edges}
    for e in [('all', 'a.out'), ('all', 'b.out'), ('a.out', 'a.src'), ('b.out', 'b.src'),
              ('odd "name" here.out', 'b.out'), ('a.out', 'a.out.do')]:
        assert e in plain, e
    dashed = {(a, b) for a, b, attrs in edges if 'dashed' in attrs}
    assert dashed == {('a.out', 'a.cfg')}
    # Given targets: only what they lead to.
    nodes, edges = parse_dot(sb.run('redo-dot', 'b.out', check=True).stdout)
    assert set(nodes) == {'b.out', 'b.src', 'b.out.do'}


def dot_program():
    exe = shutil.which('dot') or ('/usr/bin/dot' if os.access('/usr/bin/dot', os.X_OK) else None)
    if exe is None:
        pytest.skip('graphviz (dot) is not installed')
    return exe


def test_dot_renders_with_graphviz(sb):
    exe = dot_program()
    targets = dot_project(sb)
    src = sb.run('redo-dot', check=True).stdout
    r = subprocess.run([exe, '-Tplain'], input=src, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr == '', r.stderr
    rendered = {}
    for line in r.stdout.splitlines():
        if line.startswith('node '):
            f = shlex.split(line)
            # node name x y width height label style shape color fillcolor
            rendered[f[1]] = {'shape': f[8], 'color': f[9]}
    assert set(rendered) >= targets | {'a.src', 'b.src', 'all.do'}, sorted(rendered)
    assert {n for n, a in rendered.items() if a['color'] == 'red'} == {'all', 'a.out'}
    assert {rendered[t]['shape'] for t in targets} == {'box'}
    assert rendered['a.src']['shape'] == 'ellipse'
    svg = subprocess.run([exe, '-Tsvg'], input=src, capture_output=True, text=True, timeout=30)
    assert svg.returncode == 0, svg.stderr
    for t in ('all', 'a.out', 'b.src', 'odd &quot;name&quot; here.out'):
        assert '<title>%s</title>' % t in svg.stdout, t


# =============================================================================
# The bundled example
# =============================================================================

EXAMPLE = ROOT / 't' / 'example'
EXAMPLE_TARGETS = ['all', 'pages.list', 'site/about.html', 'site/history.html',
                   'site/index.html', 'site/stats.txt', 'version']


def tracked_example_files():
    """The example's files as a fresh clone has them (git ls-files), or,
    outside a git checkout, its sources (.do, .sh, pages/)."""
    try:
        r = subprocess.run(['git', 'ls-files', '-z', '--', 't/example'], cwd=str(ROOT),
                           capture_output=True, timeout=30)
        if r.returncode == 0 and r.stdout:
            return [os.path.relpath(os.fsdecode(p), 't/example')
                    for p in r.stdout.split(b'\0') if p]
    except OSError:
        pass
    files = []
    for d, dirs, names in os.walk(EXAMPLE):
        dirs[:] = [x for x in dirs if x != '.redo']
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), EXAMPLE)
            if n.endswith(('.do', '.sh')) or rel.startswith('pages' + os.sep):
                files.append(rel)
    return files


@pytest.fixture
def example(sb):
    """A checkout with redo.py at its top and t/example, no redo on PATH."""
    top = sb.path / 'checkout'
    for rel in tracked_example_files():
        dst = top / 't' / 'example' / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(EXAMPLE / rel), str(dst))
    shutil.copy2(str(REDO_PY), str(top / 'redo.py'))
    os.chmod(top / 'redo.py', 0o755)
    env = private_env(sb, '/nonexistent')
    ex = top / 't' / 'example'

    class Example:
        path = ex

        def redo(self, *args, check=True):
            return no_traceback(sb.run('../../redo.py', *args, cwd=ex, env=env, check=check))

        def sh(self, command, check=True):
            return no_traceback(sb.run('sh', '-c', command, cwd=top, env=env, check=check))

    return Example()


def readme_first_command():
    text = README.read_text()
    block = text.split('Build the bundled example', 1)[1]
    cmd = [l.strip() for l in block.splitlines() if l.startswith('    ')][0]
    assert cmd.startswith('cd t/example'), cmd
    return cmd


def test_example_readme_first_command(example):
    cmd = readme_first_command()
    assert cmd == 'cd t/example && ../../redo.py && ../../redo.py log -r all'
    r = example.sh(cmd)
    assert sorted(set(started(r.stderr))) == EXAMPLE_TARGETS
    assert sorted(started(r.stderr)) == EXAMPLE_TARGETS, 'each target built once'
    site = example.path / 'site'
    about = (site / 'about.html').read_text()
    assert '<title>About</title>' in about and 'version dev' in about
    index = (site / 'index.html').read_text()
    assert 'href="about.html"' in index and 'href="history.html"' in index
    assert 'about.html' in (site / 'stats.txt').read_text()
    tree = log_tree(r.stdout)
    names = [t for d, t, *_ in tree]
    assert names[0] == 'all'
    assert set(names) == set(EXAMPLE_TARGETS)
    assert all(res == 'ok' and code == 0 for d, t, res, code, s, l in tree)
    lines = {t: l for d, t, res, code, s, l in tree}
    assert lines['site/about.html'] == ['rendering about']
    depth = {t: d for d, t, *_ in tree}
    assert depth['site/index.html'] > depth['all']
    assert depth['pages.list'] > depth['all']     # all.do reads the list too


def rebuilt(r):
    return sorted(started(r.stderr))


def test_example_incremental(example):
    example.redo()
    # Nothing changed: the always-run page list (unchanged, so nothing else).
    assert rebuilt(example.redo()) == ['all', 'pages.list']
    # Edit a page: that page, the statistics over it, and all.
    p = example.path / 'pages' / 'about.txt'
    p.write_text(p.read_text() + 'One more line.\n')
    assert rebuilt(example.redo()) == ['all', 'pages.list', 'site/about.html', 'site/stats.txt']
    assert 'One more line.' in (example.path / 'site' / 'about.html').read_text()
    # A new page changes the list: the index, the page itself (its link
    # is not left dangling) and the statistics.
    (example.path / 'pages' / 'new.txt').write_text('New\nfresh\n')
    assert rebuilt(example.redo()) == ['all', 'pages.list', 'site/index.html',
                                       'site/new.html', 'site/stats.txt']
    assert 'new.html' in (example.path / 'site' / 'index.html').read_text()
    assert 'fresh' in (example.path / 'site' / 'new.html').read_text()
    assert 'new.html' in (example.path / 'site' / 'stats.txt').read_text()
    # The template: every page, not the index.
    t = example.path / 'template.sh'
    t.write_text(t.read_text().replace('<h1>', '<h1 class="title">'))
    assert rebuilt(example.redo()) == ['all', 'pages.list', 'site/about.html',
                                       'site/history.html', 'site/new.html', 'site/stats.txt']
    # VERSION appears (an ifcreate): everything that shows the version.
    (example.path / 'VERSION').write_text('2.0\n')
    assert rebuilt(example.redo()) == ['all', 'pages.list', 'site/about.html',
                                       'site/history.html', 'site/index.html',
                                       'site/new.html', 'site/stats.txt', 'version']
    assert 'version 2.0' in (example.path / 'site' / 'history.html').read_text()
    # redo-ifchange at top level: only the always-run list.
    assert rebuilt(example.redo('ifchange', 'all')) == ['pages.list']


def test_example_log_and_trace(example):
    example.redo()
    xs = load_trace(example.redo('log', '--trace', '-').stdout)
    assert set(xs) == set(EXAMPLE_TARGETS)
    p = example.path / 'pages' / 'history.txt'
    p.write_text(p.read_text() + 'More history.\n')
    r = example.redo()
    xs = load_trace(example.redo('log', '--trace', '-').stdout)
    assert sorted(xs) == rebuilt(r) == ['all', 'pages.list', 'site/history.html',
                                        'site/stats.txt']
    tree = log_tree(example.redo('log', '-r', 'all').stdout)
    lines = {t: l for d, t, res, code, s, l in tree}
    assert lines['site/history.html'] == ['rendering history']
    assert lines['site/about.html'] == ['rendering about']   # from the first build
    xs = load_trace(example.redo('log', '--trace', '-').stdout)
    # The page after the list it is built with: stats needs history.html.
    assert xs['site/stats.txt']['ts'] >= xs['site/history.html']['ts'] + \
        xs['site/history.html']['dur'] - 1


def test_example_clean_then_rebuild(example):
    example.redo()
    example.redo('clean')
    assert not (example.path / 'site' / 'about.html').exists()
    assert not (example.path / 'version').exists()
    r = example.redo()
    assert sorted(set(started(r.stderr))) == EXAMPLE_TARGETS
    assert (example.path / 'site' / 'about.html').exists()


def readme_test_command():
    block = README.read_text().split('\nOn a fresh machine\n', 1)[1].split('\nVendoring\n')[0]
    return [l.strip() for l in block.splitlines() if l.startswith('    ')][1]


FAKE_PYTHON = r"""#!/bin/sh
# A python3 without pytest until pip installs it.  $1 is not used.
s=%s
case " $* " in
  " -m pytest --version ") [ -e $s/installed ] && exit 0
                           echo "python3: No module named pytest" >&2; exit 1 ;;
  " -m pip install "*) printf '%%s\n' "$*" >>$s/pip
                       case " $* " in *" %s "*) ;; *) echo "error: externally-managed-environment" >&2; exit 1 ;; esac
                       : >$s/installed; exit 0 ;;
  " -m pytest "*) [ -e $s/installed ] || { echo "python3: No module named pytest" >&2; exit 1; }
                  printf '%%s\n' "$*" >$s/ran; exit 0 ;;
esac
echo "unexpected: $*" >&2; exit 99
"""


@pytest.mark.parametrize('pip', ['plain', 'externally-managed'])
def test_readme_test_command_works_where_pytest_is_missing(sb, pip):
    # On a fresh machine: pytest is installed with pip first (where the
    # system's Python is externally managed, as Debian's, for this user).
    state = sb.path / 'state'
    state.mkdir()
    fake = sb.path / 'fakebin'
    fake.mkdir()
    need = 'pytest' if pip == 'plain' else '--break-system-packages'
    (fake / 'python3').write_text(FAKE_PYTHON % (state, need))
    os.chmod(fake / 'python3', 0o755)
    env = {'PATH': '%s:%s' % (fake, PLAIN_PATH)}
    r = sb.run('sh', '-c', readme_test_command(), cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'pytest' in (state / 'pip').read_text().split()
    assert (state / 'ran').read_text().split() == ['-m', 'pytest', '-q', 't']
    tries = (state / 'pip').read_text()
    sb.run('sh', '-c', readme_test_command(), cwd=ROOT, env=env, check=True)
    assert (state / 'pip').read_text() == tries        # installed: not again


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / '.ci' / 'run').read_text().splitlines()
    assert ci[-1] == 'exec ' + readme_test_command(), ci[-1]


def test_example_cleandead_after_a_page_is_deleted(example):
    (example.path / 'pages' / 'new.txt').write_text('New\nA new page.\n')
    example.redo()
    (example.path / 'pages' / 'new.txt').unlink()
    example.redo()
    # The old page stays a target (nothing builds it any more) ...
    assert (example.path / 'site' / 'new.html').exists()
    assert 'site/new.html' in example.redo('redo-targets').stdout.split()
    assert example.redo('redo-cleandead', '-n').stdout.split() == ['site/new.html']
    # ... until redo-cleandead removes it.
    example.redo('redo-cleandead')
    assert not (example.path / 'site' / 'new.html').exists()
    assert sorted(example.redo('redo-targets').stdout.split()) == EXAMPLE_TARGETS
    assert started(example.redo('ifchange', 'all').stderr) == ['pages.list']


def test_example_ships_no_build_state():
    try:
        r = subprocess.run(['git', 'ls-files', '--', 't/example'], cwd=str(ROOT),
                           capture_output=True, text=True, timeout=30)
    except OSError:
        r = None
    if r is None or r.returncode != 0 or not r.stdout:
        pytest.skip('not a git checkout')
    files = [os.path.relpath(f, 't/example') for f in r.stdout.splitlines()]
    assert [f for f in files if '.redo' in f.split(os.sep)] == []


def test_repository_top_level_is_what_the_spec_lists():
    # SPEC §1: redo.py, install.sh, t/, README, COPYING and .ci/, nothing
    # else at the top (what git tracks; a build's own files are not).
    try:
        r = subprocess.run(['git', 'ls-files'], cwd=str(ROOT),
                           capture_output=True, text=True, timeout=30)
    except OSError:
        r = None
    if r is None or r.returncode != 0 or not r.stdout:
        pytest.skip('not a git checkout')
    top = {f.split('/')[0] for f in r.stdout.splitlines()}
    assert top == {'redo.py', 'install.sh', 't', 'README', 'COPYING', '.ci'}
    assert os.access(REDO_PY, os.X_OK) and os.access(INSTALL_SH, os.X_OK)


def test_trace_rows_are_job_slots_and_waiting_is_not_work(sb):
    # A -j1 build: one row, however deep; a .do waiting in redo-ifchange
    # holds no slot, and that time is not drawn as its work.
    import json
    sb.write('all.do', 'redo-ifchange a b\necho all\n')
    sb.write('a.do', 'sleep 0.1\necho A\n')
    sb.write('b.do', 'redo-ifchange c\nsleep 0.1\necho B\n')
    sb.write('c.do', 'sleep 0.1\necho C\n')
    sb.redo('-j1', 'all', check=True)
    events = [e for e in json.loads(sb.run('redo-log', '--trace', '-', check=True).stdout)['traceEvents']
              if e.get('ph') == 'X']
    assert {e['tid'] for e in events} == {1}
    spans = sorted((e['ts'], e['ts'] + e['dur'], e['name']) for e in events)
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        assert a1 <= b0 + 1000, 'two bars overlap on the one row: %s %s' % (an, bn)
    all_work = sum(e['dur'] for e in events if e['name'] == 'all')
    assert all_work < 250000, 'all waited for a, b and c: not its work'
    assert [e for e in events if e['name'] == 'all'][0]['args']['waited'] >= 0.25


def test_log_keeps_why_redo_failed_a_build_that_exited_0(sb):
    # SPEC §2: redo-log shows redo's own message about a target.
    sb.write('x.do', 'echo out\necho three >$3\n')
    sb.ifchange('x', check=False)
    log = sb.run('redo-log', 'x').stdout
    assert 'redo: x failed: x.do wrote to both $3 and stdout' in log, log
