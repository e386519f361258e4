"""SPEC §4-§5 under stress: the defects an afternoon of adversarial use
found.  Nothing ever waits forever (every run here has a timeout that
fails the test), and nothing builds wrong with exit 0."""

import os
import shutil
import subprocess
import time

import pytest

from helpers import no_traceback

HANG = 60        # a hang guard, not a speed check


def leaf_dos(sb, n=8):
    for i in range(1, n + 1):
        sb.write('%d.t.do' % i, 'echo %d\n' % i)


def check_leaves(sb, n=8):
    for i in range(1, n + 1):
        assert sb.read('%d.t' % i) == '%d\n' % i


# ---------------------------------------------------------------------------
# §5 several calls in flight from one .do
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('jobs', ['-j1', '-j2', '-j3'])
def test_spec5_xargs_parallel_calls_from_one_do(sb, jobs):
    leaf_dos(sb)
    sb.write('all.do', "seq 1 8 | sed 's/$/.t/' | xargs -P4 -n2 redo-ifchange\n")
    r = no_traceback(sb.redo(jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    check_leaves(sb)


@pytest.mark.parametrize('jobs', ['-j1', '-j2', '-j3'])
def test_spec5_background_calls_and_wait(sb, jobs):
    leaf_dos(sb, 6)
    sb.write('all.do', 'for i in 1 2 3 4 5 6; do redo-ifchange $i.t & done; wait\n')
    r = no_traceback(sb.redo(jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    check_leaves(sb, 6)


@pytest.mark.parametrize('jobs', [[], ['-j1'], ['-j3']])
def test_spec5_two_levels_of_parallel_calls(sb, jobs):
    for i in range(1, 5):
        sb.write('m%d.do' % i, 'for k in 1 2 3; do redo-ifchange %d.$k.t & done; wait\n'
                               'cat %d.1.t %d.2.t %d.3.t\n' % (i, i, i, i))
        for k in range(1, 4):
            sb.write('%d.%d.t.do' % (i, k), 'echo %d.%d\n' % (i, k))
    sb.write('all.do', 'for i in 1 2 3 4; do redo-ifchange m$i & done; wait\n')
    r = no_traceback(sb.redo(*jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    assert sb.read('m3') == '3.1\n3.2\n3.3\n'


@pytest.mark.parametrize('jobs', ['-j1', '-j2'])
def test_spec5_do_exits_while_its_call_runs(sb, jobs):
    sb.write('slow.do', 'sleep 0.3\necho slow\n')
    sb.write('all.do', 'redo-ifchange slow &\necho all\n')
    r = no_traceback(sb.redo(jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    assert sb.read('slow') == 'slow\n'
    assert 'Dep: slow' in sb.read('.redo/all.rec')
    r = no_traceback(sb.ifchange(jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr


def test_spec5_parallel_calls_keep_the_job_limit(sb):
    # At -j1 no two .do files run at once, however the calls are made.
    for i in range(1, 7):
        sb.write('%d.t.do' % i, 'mkdir lock 2>/dev/null || { echo overlap >>bad; exit 1; }\n'
                                'sleep 0.05\nrmdir lock\necho %d\n' % i)
    sb.write('all.do', 'for i in 1 2 3 4 5 6; do redo-ifchange $i.t & done; wait\n')
    r = no_traceback(sb.redo('-j1', 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    assert not sb.exists('bad')


# ---------------------------------------------------------------------------
# §5 an error inside redo fails its target; the run goes on, never hangs
# ---------------------------------------------------------------------------

def test_spec5_unreadable_do_fails_its_target_only(sb, tmp_path):
    if os.getuid() != 0:
        pytest.skip('needs root to run the build as another user')
    if shutil.which('setpriv') is None:
        pytest.skip('no setpriv')
    sb.write('bad.do', 'echo bad\n', mode=0o000)
    sb.write('good.do', 'echo good\n')
    sb.write('all.do', 'redo-ifchange bad || echo handled >status\nredo-ifchange good\n')
    os.chmod(sb.path, 0o777)
    os.chmod(tmp_path, 0o777)
    env = dict(sb.env, HOME='/nonexistent', XDG_CACHE_HOME='')
    for j in ('-j1', '-j2'):
        p = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                            'redo', j, 'all'], cwd=str(sb.path), env=env,
                           capture_output=True, text=True, timeout=HANG)
        no_traceback(p)
        assert p.returncode == 0, p.stderr
        assert sb.read('good') == 'good\n'
        assert sb.read('status') == 'handled\n'


def test_spec5_lock_that_cannot_be_made_fails_its_target(sb):
    # .redo/NAME.lock is a directory: the lock cannot be taken.
    sb.write('x.do', 'echo x\n')
    sb.write('y.do', 'echo y\n')
    (sb.path / '.redo' / 'x.lock').mkdir(parents=True)
    sb.write('all.do', 'redo-ifchange x || echo handled >status\nredo-ifchange y\n')
    for j in ('-j1', '-j2'):
        r = no_traceback(sb.redo(j, 'all', timeout=HANG))
        assert r.returncode == 0, r.stderr
        assert 'x' in r.stderr and 'lock' in r.stderr
        assert sb.read('y') == 'y\n'


def test_spec5_state_that_cannot_be_written_fails_its_target(sb):
    # .redo/x.rec is a directory: the state cannot be written.
    sb.write('x.do', 'echo x\n')
    sb.write('y.do', 'echo y\n')
    (sb.path / '.redo' / 'x.rec').mkdir(parents=True)
    sb.write('all.do', 'redo-ifchange x || echo handled >status\nredo-ifchange y\n')
    for j in ('-j1', '-j2'):
        r = no_traceback(sb.redo(j, 'all', timeout=HANG))
        assert r.returncode == 0, r.stderr
        assert sb.read('status') == 'handled\n'
        assert sb.read('y') == 'y\n'
        assert not sb.exists('x')


# ---------------------------------------------------------------------------
# §5 a cycle through a redo started with a scrubbed environment
# ---------------------------------------------------------------------------

def test_spec5_cycle_through_env_i_redo_of_itself(sb):
    sb.write('x.do', 'env -i PATH="$PATH" redo x\necho x\n')
    r = no_traceback(sb.redo('x', timeout=HANG))
    assert r.returncode != 0
    assert 'cycle' in r.stderr


def test_spec5_cycle_through_env_i_redo_of_a_dependent(sb):
    sb.write('x.do', 'env -i PATH="$PATH" redo-ifchange y\necho x\n')
    sb.write('y.do', 'redo-ifchange x\necho y\n')
    r = no_traceback(sb.redo('x', timeout=HANG))
    assert r.returncode != 0
    assert 'cycle' in r.stderr


# ---------------------------------------------------------------------------
# §4 a source changed while the .do that reads it ran
# ---------------------------------------------------------------------------

def test_spec4_source_edited_between_read_and_declare(sb):
    # The cc -MD idiom: read first, declare after.  An edit in between is
    # not recorded as seen: the next run rebuilds.
    sb.write('src', 'one\n')
    sb.write('x.do', 'cat src\n[ -e edited ] || { echo two >src; touch edited; }\n'
                     'redo-ifchange src\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'one\n'
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'two\n'
    sb.ifchange('x', check=True)                     # and then it is up to date
    assert 'redo' not in sb.ifchange('x', check=True).stderr
