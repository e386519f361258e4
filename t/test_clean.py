"""Cleaning and starting over (SPEC §2, §3): redo-clean removes what redo
built (ninja -t clean), redo-cleandead what nothing needs any more (ninja -t
cleandead), redo-rebuild builds everything again without deleting (make -B).
Each has a dry run, -n, that lists and changes nothing.

Every test drives the real commands on real .do files."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import REDO_PY
from helpers import no_traceback_anywhere


def lines(text):
    return [x for x in text.split('\n') if x]


def started(stderr):
    """The targets a build started, from its `redo  name` lines."""
    return sorted(ln.strip()[4:].strip() for ln in stderr.split('\n')
                  if ln.startswith('redo ') and not ln.startswith('redo: '))


def project(sb):
    """all -> a -> (src, sub/b -> src2); c is built apart; `virt` has no
    output.  Every .do appends its name to runs."""
    sb.write('src', 'source\n')
    sb.write('sub/src2', 'source2\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange a virt\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange src sub/b\ncat src sub/b\n')
    sb.write('sub/b.do', 'echo b >>../runs\nredo-ifchange src2\necho b-err >&2\ncat src2\n')
    sb.write('c.do', 'echo c >>runs\necho c\n')
    sb.write('virt.do', 'echo virt >>runs\n')
    sb.redo('all', 'c', check=True)
    (sb.path / 'runs').unlink()


SOURCES = ['a.do', 'all.do', 'c.do', 'src', 'sub/b.do', 'sub/src2', 'virt.do']


def files(sb):
    """Every file under the sandbox but redo's own, relative."""
    out = []
    for d, dirs, names in os.walk(sb.path):
        dirs[:] = [x for x in dirs if x != '.redo']
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), sb.path))
    return sorted(out)


def state_files(sb):
    out = []
    for d, dirs, names in os.walk(sb.path):
        if os.path.basename(d) == '.redo':
            out += [os.path.relpath(os.path.join(d, n), sb.path) for n in names]
    return sorted(out)


# ---------------------------------------------------------------------------
# redo-clean
# ---------------------------------------------------------------------------

def test_clean_removes_what_redo_built_and_then_everything_is_built_again(sb):
    project(sb)
    assert files(sb) == sorted(SOURCES + ['a', 'c', 'sub/b'])
    p = sb.run('redo-clean', check=True)
    no_traceback_anywhere(p)
    assert files(sb) == SOURCES
    assert state_files(sb) == []                  # no state, log or summary left
    assert sb.run('redo-targets', check=True).stdout == ''
    p = sb.redo('all', 'c', check=True)
    assert started(p.stderr) == ['a', 'all', 'c', 'sub/b', 'virt']
    assert sb.read('a') == 'source\nsource2\n'


def test_clean_dry_run_lists_and_removes_nothing(sb):
    project(sb)
    before = files(sb), state_files(sb)
    p = sb.run('redo-clean', '-n', check=True)
    assert lines(p.stdout) == ['a', 'all', 'c', 'virt', 'sub/b']
    assert (files(sb), state_files(sb)) == before
    p = sb.run('redo-clean', '--dry-run', 'sub', check=True)
    assert lines(p.stdout) == ['sub/b']
    sb.ifchange('all', 'c', check=True)
    assert sb.log('runs') == []


def test_clean_of_a_directory_or_a_target_removes_only_those(sb):
    project(sb)
    sb.run('redo-clean', 'sub', check=True)
    assert not sb.exists('sub/b') and sb.exists('a') and sb.exists('c')
    sb.run('redo-clean', 'c', cwd=sb.path / 'sub', check=False)   # not there
    assert sb.exists('c')
    sb.run('redo-clean', '../c', cwd=sb.path / 'sub', check=True)
    assert not sb.exists('c') and sb.exists('a')
    assert sorted(lines(sb.run('redo-targets', check=True).stdout)) == ['a', 'all', 'virt']
    sb.ifchange('all', check=True)
    assert sb.log('runs') == ['b']        # a is up to date: b is the same


def test_clean_paths_are_relative_to_the_current_directory(sb):
    project(sb)
    p = sb.run('redo-clean', '-n', '..', cwd=sb.path / 'sub', check=True)
    assert lines(p.stdout) == ['../a', '../all', '../c', '../virt', 'b']


def test_clean_keeps_a_target_modified_by_hand_and_what_redo_knows_of_it(sb):
    project(sb)
    sb.write('a', 'mine\n')
    p = sb.run('redo-clean', '-n', check=True)
    assert 'a' not in lines(p.stdout)
    assert 'a' in p.stderr and 'modified' in p.stderr
    p = sb.run('redo-clean', check=True)
    assert sb.read('a') == 'mine\n'
    assert 'a' in p.stderr and 'modified' in p.stderr
    assert not sb.exists('sub/b') and not sb.exists('c')
    assert sb.exists('.redo/a.rec')       # redo still knows it was edited
    p = sb.redo('all')
    assert 'a was modified outside redo' in p.stderr
    assert sb.read('a') == 'mine\n'


def test_clean_never_removes_sources_or_files_redo_did_not_build(sb):
    project(sb)
    sb.write('d.do', 'echo d\n')
    sb.write('d', 'made by hand\n')          # a .do could build it; redo never did
    sb.run('redo-clean', check=True)
    assert sb.read('d') == 'made by hand\n'
    assert files(sb) == sorted(SOURCES + ['d', 'd.do'])


def test_clean_keeps_a_target_that_no_do_builds_any_more(sb):
    project(sb)
    os.unlink(sb.path / 'c.do')               # c is a source from now on
    p = sb.run('redo-clean', '-n', check=True)
    assert 'c' not in lines(p.stdout) and 'keeping c: no .do file' in p.stderr
    assert sb.exists('.redo/c.rec')
    p = sb.run('redo-clean', check=True)
    assert 'keeping c: no .do file' in p.stderr
    assert sb.read('c') == 'c\n'
    # Its state went, as a build would remove it: it is a source, said once.
    assert not sb.exists('.redo/c.rec')
    assert sb.run('redo-clean', check=True).stderr == ''
    assert sb.read('c') == 'c\n'


def test_clean_removes_directory_and_symlink_targets_without_following(sb):
    sb.write('keep/file', 'keep\n')
    sb.write('d.do', 'mkdir $3; echo x >$3/x\n')
    sb.write('l.do', 'ln -s keep $3\n')
    sb.redo('d', 'l', check=True)
    assert os.path.islink(sb.path / 'l')
    sb.run('redo-clean', check=True)
    assert not sb.exists('d') and not sb.exists('l')
    assert sb.read('keep/file') == 'keep\n'


def test_clean_of_a_name_that_is_neither_a_target_nor_a_directory_is_an_error(sb):
    project(sb)
    p = sb.run('redo-clean', 'a', 'nothing')
    no_traceback_anywhere(p)
    assert p.returncode == 2
    assert lines(p.stderr) == ['redo-clean: nothing: neither a target redo built nor a directory']
    assert sb.exists('a')                     # nothing was removed


GATED = ('echo start >>runs; : >started\n'
         'i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n')


def start(sb, *args):
    return subprocess.Popen(list(args), cwd=str(sb.path), env=sb.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_file(sb, name, proc):
    end = time.monotonic() + 20
    while not sb.exists(name):
        assert proc.poll() is None, proc.communicate(timeout=30)
        assert time.monotonic() < end, 'timed out waiting for ' + name
        time.sleep(0.01)


def test_clean_leaves_a_target_being_built_alone(sb):
    project(sb)
    sb.write('c.do', GATED + 'echo new\n')
    build = start(sb, 'redo', 'c')
    try:
        wait_file(sb, 'started', build)
        sb.run('redo-clean', check=True)
        assert sb.exists('.redo/c.rec') and sb.read('c') == 'c\n'
        assert not sb.exists('a')
    finally:
        sb.write('go', '')
        out, err = build.communicate(timeout=30)
    assert build.returncode == 0, err
    assert sb.read('c') == 'new\n'
    assert lines(sb.run('redo-targets', check=True).stdout) == ['c']


def test_clean_called_by_a_do_leaves_the_running_build_alone(sb):
    project(sb)
    sb.write('clean.do', 'redo-clean\n')
    sb.redo('clean', check=True)
    assert files(sb) == sorted(SOURCES + ['clean.do'])
    p = sb.redo('all', check=True)
    assert started(p.stderr) == ['a', 'all', 'sub/b', 'virt']


def test_clean_is_not_a_first_argument_of_redo_py_clean_builds_clean_do(sb):
    # `./redo.py clean` (and `./do clean`) builds the project's clean.do, as
    # it always did; the command is `./redo.py redo-clean`.
    project(sb)
    shutil.copy(REDO_PY, sb.path / 'redo.py')
    sb.write('clean.do', 'echo clean-do >>runs\n')
    sb.run('./redo.py', 'clean', check=True)
    assert sb.log('runs') == ['clean-do'] and sb.exists('a')
    sb.run('./redo.py', 'redo-clean', check=True)
    assert not sb.exists('a')


# ---------------------------------------------------------------------------
# redo-cleandead
# ---------------------------------------------------------------------------

def list_project(sb, names):
    sb.write('list', ''.join(n + '\n' for n in names))
    sb.write('all.do', 'redo-ifchange list\nredo-ifchange $(sed "s/$/.out/" list)\n')
    sb.write('default.out.do', 'redo-ifchange ${2##*/}.in\ncat ${2##*/}.in\n')
    for n in ('x', 'y', 'z'):
        sb.write(n + '.in', n + '\n')


def test_cleandead_removes_what_nothing_needs_any_more(sb):
    list_project(sb, ['x', 'y', 'z'])
    sb.redo('all', check=True)
    sb.write('list', 'x\n')
    os.unlink(sb.path / 'y.in')
    sb.redo('all', check=True)
    # y.out and z.out stay, targets still, though nothing needs them.
    assert sorted(lines(sb.run('redo-targets', check=True).stdout)) == \
        ['all', 'x.out', 'y.out', 'z.out']
    p = sb.run('redo-cleandead', '-n', check=True)
    assert lines(p.stdout) == ['y.out', 'z.out']
    assert sb.exists('y.out')
    p = sb.run('redo-cleandead', check=True)
    no_traceback_anywhere(p)
    assert not sb.exists('y.out') and not sb.exists('z.out')
    assert not sb.exists('.redo/y.out.rec') and not sb.exists('.redo/z.out.rec')
    assert sb.read('x.out') == 'x\n' and sb.exists('z.in')
    assert sorted(lines(sb.run('redo-targets', check=True).stdout)) == ['all', 'x.out']
    assert sb.run('redo-cleandead', '-n', check=True).stdout == ''
    p = sb.ifchange('all', check=True)
    assert started(p.stderr) == []


def test_cleandead_keeps_what_the_named_targets_need(sb):
    list_project(sb, ['x', 'y'])
    sb.write('extra.do', 'redo-ifchange z.out\ncat z.out\n')
    sb.redo('all', 'extra', check=True)
    p = sb.run('redo-cleandead', '-n', check=True)        # all alone
    assert lines(p.stdout) == ['extra', 'z.out']
    p = sb.run('redo-cleandead', '-n', 'all', 'extra', check=True)
    assert p.stdout == ''
    sb.run('redo-cleandead', 'extra', check=True)
    assert not sb.exists('x.out') and not sb.exists('.redo/all.rec')
    assert sb.exists('extra') and sb.exists('z.out')


def test_cleandead_keeps_a_dead_target_modified_by_hand(sb):
    list_project(sb, ['x', 'y'])
    sb.redo('all', check=True)
    sb.write('list', 'x\n')
    sb.redo('all', check=True)
    sb.write('y.out', 'mine\n')
    p = sb.run('redo-cleandead', check=True)
    assert sb.read('y.out') == 'mine\n'
    assert 'y.out' in p.stderr and 'modified' in p.stderr


def test_cleandead_of_a_target_never_built_is_an_error_and_removes_nothing(sb):
    list_project(sb, ['x'])
    sb.ifchange('x.out', check=True)
    p = sb.run('redo-cleandead')            # `all` was never built
    no_traceback_anywhere(p)
    assert p.returncode == 1
    assert lines(p.stderr) == ['redo-cleandead: all: redo has no record of building it']
    assert sb.exists('x.out')


def test_cleandead_with_a_garbled_state_on_the_way_removes_nothing(sb):
    list_project(sb, ['x'])
    sb.redo('all', check=True)
    sb.write('.redo/all.rec', 'garbage\n')
    p = sb.run('redo-cleandead')
    assert p.returncode == 1
    assert 'all' in p.stderr and 'cannot be read' in p.stderr
    assert sb.exists('x.out')


# ---------------------------------------------------------------------------
# redo-rebuild
# ---------------------------------------------------------------------------

def test_rebuild_builds_everything_again_without_deleting_first(sb):
    project(sb)
    # Each .do sees the old target in place, as make -B leaves it.
    sb.write('a.do', 'echo a >>runs\ntest -e a && echo a-was-there >>runs\n'
                     'redo-ifchange src sub/b\ncat src sub/b\n')
    sb.redo('a', check=True)
    (sb.path / 'runs').unlink()
    p = sb.run('redo-rebuild', check=True)
    no_traceback_anywhere(p)
    assert sorted(sb.log('runs')) == ['a', 'a-was-there', 'all', 'b', 'virt']
    assert started(p.stderr) == ['a', 'all', 'sub/b', 'virt']
    assert sb.run('redo-ood', check=True).stdout == ''
    (sb.path / 'runs').unlink()
    sb.ifchange('all', 'c', check=True)
    assert sb.log('runs') == []


def test_rebuild_rebuilds_the_named_targets_and_what_they_need_only(sb):
    project(sb)
    p = sb.run('redo-rebuild', 'sub/b', 'c', check=True)
    assert sorted(sb.log('runs')) == ['b', 'c']
    assert started(p.stderr) == ['c', 'sub/b']


def test_rebuild_dry_run_lists_and_changes_nothing(sb):
    project(sb)
    p = sb.run('redo-rebuild', '-n', check=True)
    assert lines(p.stdout) == ['all', 'a', 'sub/b', 'virt']
    assert sb.log('runs') == []
    sb.ifchange('all', check=True)
    assert sb.log('runs') == []


def test_rebuild_takes_the_build_options(sb):
    project(sb)
    sb.write('virt.do', 'echo virt >>runs\nexit 1\n')
    p = sb.run('redo-rebuild', '-k', '-j1', '-s')
    assert p.returncode == 1
    assert started(p.stderr) == []                    # -s
    assert sorted(sb.log('runs')) == ['a', 'all', 'b', 'virt']     # -k: a too


def test_rebuild_leaves_a_target_modified_by_hand_alone(sb):
    project(sb)
    sb.write('sub/b', 'mine\n')
    p = sb.run('redo-rebuild', check=True)
    assert sb.read('sub/b') == 'mine\n'
    assert 'b' not in sb.log('runs')
    assert 'sub/b' not in lines(sb.run('redo-rebuild', '-n').stdout)


def test_rebuild_inside_a_build_is_an_error(sb):
    sb.write('x.do', 'redo-rebuild y\n')
    sb.write('y.do', 'echo y\n')
    p = sb.redo('x')
    assert p.returncode == 1
    assert 'redo-rebuild: ' in p.stderr and 'inside a build' in p.stderr


def test_rebuild_of_a_target_never_built_builds_it(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.run('redo-rebuild', 'x', check=True)
    assert sb.log('runs') == ['x']
