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
    # The call is under way when the .do exits: the target is committed
    # once it ends, with it among the dependencies.
    sb.write('slow.do', 'sleep 0.3\necho slow\n')
    sb.write('all.do', 'redo-ifchange slow &\nsleep 0.1\necho all\n')
    r = no_traceback(sb.redo(jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    assert sb.read('slow') == 'slow\n'
    assert 'Dep: slow' in sb.read('.redo/all.rec')
    r = no_traceback(sb.ifchange(jobs, 'all', timeout=HANG))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize('jobs', ['-j1', '-j2'])
def test_spec5_do_exits_before_its_call_starts(sb, jobs):
    # The call starts after the .do's target was committed: it is served
    # while the run lasts, or by a redo of its own after it; never a hang.
    sb.write('late.do', 'echo late\n')
    sb.write('other.do', 'sleep 0.4\necho other\n')
    sb.write('all.do', '(sleep 0.2; redo-ifchange late) &\necho all\n')
    r = no_traceback(sb.redo(jobs, 'all', 'other', timeout=HANG))
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 20
    while not sb.exists('late') and time.time() < deadline:
        time.sleep(0.05)
    assert sb.read('late') == 'late\n'


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

def test_spec5_unreadable_do_fails_its_target_only(sb):
    if os.getuid() != 0:
        pytest.skip('needs root to run the build as another user')
    if shutil.which('setpriv') is None:
        pytest.skip('no setpriv')
    from conftest import COMMANDS, REDO_PY
    bindir = sb.path / 'bin'
    bindir.mkdir()
    shutil.copy(str(REDO_PY), str(bindir / 'redo.py'))
    for c in COMMANDS:
        os.symlink('redo.py', str(bindir / c))
    sb.write('bad.do', 'echo bad\n', mode=0o000)
    sb.write('good.do', 'echo good\n')
    sb.write('all.do', 'redo-ifchange bad || echo handled >status\nredo-ifchange good\n')
    for d in (sb.path, sb.path.parent, sb.path.parent.parent):
        os.chmod(d, 0o777)
    env = dict(sb.env, HOME='/nonexistent', XDG_CACHE_HOME='',
               PATH='%s:%s' % (bindir, os.environ.get('PATH', '/usr/bin:/bin')))
    for j in ('-j1', '-j2'):
        p = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                            'redo', j, 'all'], cwd=str(sb.path), env=env,
                           capture_output=True, text=True, timeout=HANG)
        no_traceback(p)
        assert p.returncode == 0, p.stderr
        assert sb.read('good') == 'good\n'
        assert sb.read('status') == 'handled\n'
        os.unlink(sb.path / 'status')


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


# ---------------------------------------------------------------------------
# §3 a hand edit made while the target was being built is kept
# ---------------------------------------------------------------------------

def test_spec3_hand_edit_while_dependencies_build_is_kept(sb):
    sb.write('slow.do', 'echo slow\n')
    sb.write('x.do', 'redo-ifchange slow\necho generated\n')
    sb.ifchange('x', check=True)
    # slow's rebuild edits x by hand (as a user at another terminal).
    sb.write('slow.do', 'echo "edited by hand" >x\necho slow2\n')
    r = no_traceback(sb.ifchange('x', timeout=HANG))
    assert r.returncode == 0, r.stderr
    assert sb.read('x') == 'edited by hand\n'
    assert 'modified outside redo' in r.stderr


def test_spec3_file_made_while_its_do_runs_is_kept(sb):
    # Made during the .do's run (here by a dependency's .do): redo cannot
    # tell it from the .do writing $1 itself; an error, and the file stays.
    sb.write('dep.do', 'echo "made by hand" >x\necho dep\n')
    sb.write('x.do', 'redo-ifchange dep\necho generated\n')
    r = no_traceback(sb.ifchange('x', timeout=HANG))
    assert r.returncode == 1
    assert sb.read('x') == 'made by hand\n'
    assert 'wrote to $1 itself' in r.stderr


def test_spec3_hand_edit_while_building_stop_if_modified(sb):
    sb.write('slow.do', 'echo slow\n')
    sb.write('x.do', 'redo-ifchange slow\necho generated\n')
    sb.ifchange('x', check=True)
    sb.write('slow.do', 'echo "edited by hand" >x\necho slow2\n')
    r = no_traceback(sb.ifchange('x', env={'REDO_STOP_IF_MODIFIED': '1'}, timeout=HANG))
    assert r.returncode == 1
    assert sb.read('x') == 'edited by hand\n'


# ---------------------------------------------------------------------------
# §5 errors around the client: a full run directory, a wrong REDO_JOB
# ---------------------------------------------------------------------------

def test_spec5_full_run_directory_is_a_clear_message(sb, tmp_path):
    from helpers import mount, umount
    run = tmp_path / 'runfs'
    run.mkdir()
    mount('-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(run), what='a tmpfs')
    try:
        sb.write('x.do', 'echo x\n')
        sb.write('all.do', 'head -c 2000000 /dev/zero >"$TMPDIR/fill" 2>/dev/null || :\n'
                           'redo-ifchange x || echo "status $?" >status\n'
                           'rm -f "$TMPDIR/fill"\n')
        r = no_traceback(sb.redo('all', env={'TMPDIR': str(run)}, timeout=HANG))
        assert r.returncode == 0, r.stderr
        assert sb.read('status') == 'status 2\n'
        assert 'cannot reach the running redo' in r.stderr and 'full' in r.stderr
        assert 'printf' not in r.stderr
    finally:
        umount(run)


def test_spec5_wrong_redo_job_is_no_hang(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('all.do', 'REDO_JOB=999 redo-ifchange x || echo "status $?" >status\n')
    r = no_traceback(sb.redo('all', timeout=HANG))
    assert r.returncode == 0, r.stderr
    assert sb.read('status') == 'status 2\n'
    assert 'not called from a .do' in r.stderr


def test_spec4_source_with_a_future_mtime_is_not_taken_for_an_edit(sb):
    # Dated in the future (touch -d, an archive, clock skew), but changed
    # before the .do started: seen, recorded, and up to date next time.
    sb.write('src', 'one\n')
    t = time.time() + 3600
    os.utime(sb.path / 'src', (t, t))
    sb.write('x.do', 'echo x >>runs\nredo-ifchange src\ncat src\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x']


def test_spec4_missing_source_handled_by_the_do_is_no_change(sb):
    # x asks for a file that is gone, and handles it; another target's
    # failure on the same file in the same run does not rebuild x.
    sb.write('x.do', 'echo x >>runs\nif redo-ifchange gone; then cat gone; else echo none; fi\n')
    sb.write('y.do', 'redo-ifchange gone\n')
    sb.write('all.do', 'redo-ifchange y || :\nredo-ifchange x\n')
    sb.ifchange('all', check=True)
    sb.write('all.do', 'redo-ifchange y || :\nredo-ifchange x\n# changed\n')
    sb.ifchange('all', check=True)
    assert sb.log('runs') == ['x']


def test_spec5_dependency_that_failed_then_builds_rebuilds_its_dependent(sb):
    # t1 handled t0's failure; once t0 builds again (with the same content
    # as before its failure), t1 must be rebuilt.
    sb.write('flag', 'ok\n')
    sb.write('t0.do', 'redo-ifchange flag\ngrep -q ok flag\necho t0\n')
    sb.write('t1.do', 'if redo-ifchange t0; then cat t0; else echo "failed t0"; fi\n')
    sb.ifchange('t1', check=True)
    assert sb.read('t1') == 't0\n'
    sb.write('flag', 'bad\n')
    sb.ifchange('t1', check=True)
    assert sb.read('t1') == 'failed t0\n'
    sb.write('flag', 'ok\n')
    sb.ifchange('t1', check=True)
    assert sb.read('t1') == 't0\n'


@pytest.mark.parametrize('jobs', ['-j1', '-j4'])
@pytest.mark.parametrize('how', ['redo-ifchange late &', 'echo late | xargs redo-ifchange &'])
def test_spec5_call_left_as_the_last_line_never_hangs(sb, jobs, how):
    # The .do exits at once; its call comes when the run may be over: no
    # client is left waiting for an answer that cannot come.
    sb.write('late.do', 'echo late\n')
    sb.write('all.do', how + '\n')
    for _ in range(3):
        r = no_traceback(sb.redo(jobs, 'all', timeout=HANG))
        assert r.returncode == 0, r.stderr
    deadline = time.time() + 20
    while time.time() < deadline:
        stuck = [l for l in subprocess.run(['ps', '-eo', 'pid,args'], capture_output=True,
                                           text=True, timeout=30).stdout.splitlines()
                 if str(sb.path) in l and ('redo-ifchange late' in l or 'all.do' in l)]
        if not stuck:
            break
        time.sleep(0.2)
    assert stuck == [], stuck


@pytest.mark.parametrize('cut', ['(unset REDO_RUN; redo-ifchange %s)', 'env -i PATH="$PATH" redo-ifchange %s'])
def test_spec5_cycle_through_two_independent_redos(sb, cut):
    sb.write('a.do', (cut % 'b') + '\necho a\n')
    sb.write('b.do', (cut % 'a') + '\necho b\n')
    r = no_traceback(sb.redo('a', timeout=HANG))
    assert r.returncode != 0
    assert 'cycle' in r.stderr
