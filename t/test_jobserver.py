"""SPEC §5: GNU make's jobserver, both ways and in every form.

redo run by `make -jN` (MAKEFLAGS --jobserver-auth=R,W; make 4.4's
--jobserver-auth=fifo:PATH; the older --jobserver-fds=R,W) takes its slots
from make; `make` run by a .do takes its slots from redo; a jobserver that
cannot be used is a warning naming MAKEFLAGS, then one job at a time, never
a hang; every token taken is given back.

Debian's make is the real peer where the test can use it; the forms this
make does not speak (fifo:, --jobserver-fds) are made by hand.  Concurrency
is measured by the jobs themselves (the `work` tool of concurrency.py):
`S name` / `E name` lines replayed, never wall-clock time.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from concurrency import TIMEOUT, kill_session, leaf_do, max_running, started, temporaries
from concurrency import sb  # noqa: F401  (fixture)

needs_make = pytest.mark.skipif(shutil.which('make') is None, reason='GNU make is not installed')


def make_pipe_style():
    """The make option that asks for a pipe jobserver (R,W): make 4.4 and
    later default to a fifo, older ones only know pipes."""
    out = subprocess.run(['make', '--version'], capture_output=True, text=True).stdout
    try:
        version = tuple(int(x) for x in out.split()[2].split('.')[:2])
    except (IndexError, ValueError):
        return []
    return ['--jobserver-style=pipe'] if version >= (4, 4) else []


def leaves(sb, n, want=None, prefix='l'):
    """`leaves` builds n targets, each one stretch of work."""
    names = ['%s%d' % (prefix, i) for i in range(n)]
    leaf_do(sb, want=want)
    sb.write('leaves.do', 'redo-ifchange %s\ncat %s\n' % (' '.join(names), ' '.join(names)))
    return names


def drain(fd):
    """Every byte now in the pipe or fifo read end fd (left non-blocking)."""
    os.set_blocking(fd, False)
    data = b''
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def run(sb, args, fds=(), env=None, timeout=TIMEOUT):
    """Runs a command in a session of its own (fds passed on at the same
    numbers); a hang fails the test with what was still running, and kills
    it all."""
    e = dict(sb.env)
    e.update(env or {})
    p = subprocess.Popen(args, cwd=str(sb.path), env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         pass_fds=fds, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        ps = subprocess.run(['ps', '-o', 'pid,ppid,stat,args', '-s', str(p.pid)],
                            capture_output=True, text=True).stdout
        kill_session(p.pid)
        out, err = p.communicate()
        raise AssertionError('hung: %s\nstill running:\n%s\nstderr:\n%s' % (args, ps, err))
    finally:
        kill_session(p.pid)
    return subprocess.CompletedProcess(args, p.returncode, out, err)


def at_3_4(r, w, args):
    """args, run with r and w moved to fds 3 and 4 (where make puts them)."""
    code = ('import os, sys\n'
            'r, w = int(sys.argv[1]), int(sys.argv[2])\n'
            'a, b = os.dup(r), os.dup(w)\n'
            'os.dup2(a, 3)\n'
            'os.dup2(b, 4)\n'
            'os.set_inheritable(3, True)\n'
            'os.set_inheritable(4, True)\n'
            'for fd in {r, w, a, b} - {3, 4}:\n'
            '    os.close(fd)\n'
            'os.execvp(sys.argv[3], sys.argv[3:])\n')
    return [sys.executable, '-c', code, str(r), str(w)] + list(args)


def warnings_about_makeflags(stderr):
    return [l for l in stderr.splitlines() if 'MAKEFLAGS' in l]


# --- redo under make ----------------------------------------------------------

@needs_make
@pytest.mark.parametrize('n', [2, 4])
def test_redo_under_make_takes_its_slots_from_make(sb, n):
    # make -jN runs `+redo leaves`: redo's own slot plus make's tokens,
    # N in all, whatever the number of CPUs.
    names = leaves(sb, 3 * n, want=n)
    sb.write('Makefile', 'all:\n\t+redo leaves\n')
    r = run(sb, ['make', '-j%d' % n])
    assert r.returncode == 0, r.stderr
    assert max_running(sb) == n
    assert started(sb) == sorted(names)
    assert 'jobserver' not in r.stderr and 'INTERNAL' not in r.stderr, r.stderr
    assert not warnings_about_makeflags(r.stderr), r.stderr
    assert temporaries(sb) == []


@needs_make
def test_redo_and_makes_own_jobs_share_makes_slots(sb):
    names = leaves(sb, 8, want=3)
    sb.write('Makefile', 'all: r m1 m2 m3 m4 m5\n'
                         'r:\n\t+redo leaves\n'
                         'm1 m2 m3 m4 m5:\n\t@work $@ 3\n')
    r = run(sb, ['make', '-j3'])
    assert r.returncode == 0, r.stderr
    assert max_running(sb) == 3
    assert started(sb) == sorted(names + ['m1', 'm2', 'm3', 'm4', 'm5'])
    assert 'jobserver' not in r.stderr and 'INTERNAL' not in r.stderr, r.stderr


@needs_make
def test_make_redo_make_all_share_one_pool(sb):
    # make -j3 -> +redo -> a .do that runs make -> its recipes, and redo's
    # own leaves beside it: never more than 3 at work, no jobserver warning.
    names = leaves(sb, 4, want=3)
    sb.write('sub.mk', 'all: s1 s2 s3 s4 s5\ns1 s2 s3 s4 s5:\n\t@work $@ 3\n')
    sb.write('m.do', 'make -f sub.mk >&2\necho m\n')
    sb.write('top.do', 'redo-ifchange m leaves\ncat m leaves\n')
    sb.write('Makefile', 'all: r x1 x2\nr:\n\t+redo top\nx1 x2:\n\t@work $@ 3\n')
    r = run(sb, ['make', '-j3'])
    assert r.returncode == 0, r.stderr
    assert max_running(sb) == 3
    assert started(sb) == sorted(names + ['s1', 's2', 's3', 's4', 's5', 'x1', 'x2'])
    assert 'jobserver' not in r.stderr and 'INTERNAL' not in r.stderr, r.stderr
    assert temporaries(sb) == []




@needs_make
def test_redo_under_make_without_plus_warns_and_runs_one_job(sb):
    names = leaves(sb, 4)
    sb.write('Makefile', 'all:\n\tredo leaves\n')
    r = run(sb, ['make', '-j3'] + make_pipe_style())
    assert r.returncode == 0, r.stderr
    assert started(sb) == sorted(names)
    assert warnings_about_makeflags(r.stderr), r.stderr
    assert max_running(sb) == 1


# --- make under redo ----------------------------------------------------------

@needs_make
@pytest.mark.parametrize('n', [2, 4])
def test_make_run_by_a_do_takes_its_slots_from_redo(sb, n):
    # No -j for make: it finds redo's jobserver in MAKEFLAGS and runs N
    # recipes at once (the .do's own slot and N-1 tokens).
    recipes = ['s%d' % i for i in range(3 * n)]
    sb.write('sub.mk', 'all: %s\n%s:\n\t@work $@ %d\n' % (' '.join(recipes), ' '.join(recipes), n))
    sb.write('m.do', 'make -f sub.mk >&2\necho m\n')
    r = run(sb, ['redo', '-j%d' % n, 'm'])
    assert r.returncode == 0, r.stderr
    assert max_running(sb) == n
    assert started(sb) == sorted(recipes)
    assert 'jobserver' not in r.stderr, r.stderr


@needs_make
def test_make_run_by_a_do_shares_the_limit_with_redo(sb):
    names = leaves(sb, 6, want=3)
    recipes = ['s%d' % i for i in range(6)]
    sb.write('sub.mk', 'all: %s\n%s:\n\t@work $@ 3\n' % (' '.join(recipes), ' '.join(recipes)))
    sb.write('m1.do', 'make -f sub.mk >&2\necho m1\n')
    sb.write('all.do', 'redo-ifchange m1 leaves\n')
    r = run(sb, ['redo', '-j3'])
    assert r.returncode == 0, r.stderr
    assert max_running(sb) == 3
    assert started(sb) == sorted(names + recipes)
    assert 'jobserver' not in r.stderr, r.stderr


def test_makeflags_for_the_do_names_a_usable_jobserver(sb):
    # What a .do sees: --jobserver-auth=R,W in MAKEFLAGS, where R and W are the
    # two ends of one pipe, open in the .do, holding N-1 tokens while it
    # is the only job.
    sb.write('x.do', 'echo "$MAKEFLAGS" >flags\n'
                     'python3 -c "%s" >>flags\n' % (
                         "import os, re, stat; "
                         "m = re.search(r'--jobserver-auth=(\\d+),(\\d+)', os.environ['MAKEFLAGS']); "
                         "r, w = int(m.group(1)), int(m.group(2)); "
                         "a, b = os.fstat(r), os.fstat(w); "
                         "print(stat.S_ISFIFO(a.st_mode), a.st_ino == b.st_ino); "
                         "os.set_blocking(r, False); t = os.read(r, 100); os.write(w, t); print(len(t))"))
    sb.redo('-j4', 'x', check=True)
    flags = sb.read('flags').splitlines()
    assert flags[1:] == ['True True', '3'], flags


# --- the forms make itself may not speak: made by hand -------------------------

@pytest.mark.parametrize('tokens', [1, 3])
def test_fifo_jobserver_of_make_4_4(sb, tmp_path, tokens):
    fifo = str(tmp_path / 'jobserver.fifo')
    os.mkfifo(fifo)
    holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)      # make's own end
    try:
        os.write(holder, b'+' * tokens)
        names = leaves(sb, 3 * (tokens + 1), want=tokens + 1)
        r = run(sb, ['redo', 'leaves'], env={'MAKEFLAGS': '-j%d --jobserver-auth=fifo:%s' % (tokens + 1, fifo)})
        assert r.returncode == 0, r.stderr
        assert max_running(sb) == tokens + 1
        assert started(sb) == sorted(names)
        assert not warnings_about_makeflags(r.stderr), r.stderr
        assert drain(holder) == b'+' * tokens
    finally:
        os.close(holder)
    assert temporaries(sb) == []


@pytest.mark.parametrize('form', ['--jobserver-fds', '--jobserver-auth'])
@pytest.mark.parametrize('at', ['high', 'fd3'], ids=['high-fds', 'fds-3-4'])
def test_pipe_jobserver_given_by_hand(sb, form, at):
    # A pipe holding 2 tokens, given at the numbers that MAKEFLAGS names:
    # either where os.pipe put them, or at 3 and 4 as make does.
    r, w = os.pipe()
    try:
        os.write(w, b'+' * 2)
        names = leaves(sb, 6, want=3)
        if at == 'high':
            args, fds, rr, ww = ['redo', 'leaves'], (r, w), r, w
        else:
            args, fds, rr, ww = at_3_4(r, w, ['redo', 'leaves']), (r, w), 3, 4
        p = run(sb, args, fds, {'MAKEFLAGS': ' -j3 %s=%d,%d' % (form, rr, ww)})
        assert p.returncode == 0, p.stderr
        assert max_running(sb) == 3
        assert started(sb) == sorted(names)
        assert not warnings_about_makeflags(p.stderr), p.stderr
        assert drain(r) == b'++'
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize('form', ['pipe', 'fifo'])
def test_a_jobserver_with_no_token_free_still_builds(sb, tmp_path, form):
    # Every token is held elsewhere (make's other jobs): redo builds with
    # its own slot alone, one job at a time, and never waits forever.
    if form == 'pipe':
        r, w = os.pipe()
        flags, fds = ' -j4 --jobserver-auth=%d,%d' % (r, w), (r, w)
    else:
        fifo = str(tmp_path / 'jobserver.fifo')
        os.mkfifo(fifo)
        r = w = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        flags, fds = ' -j4 --jobserver-auth=fifo:%s' % fifo, ()
    try:
        names = leaves(sb, 4)
        p = run(sb, ['redo', 'leaves'], fds, {'MAKEFLAGS': flags})
        assert p.returncode == 0, p.stderr
        assert max_running(sb) == 1
        assert started(sb) == sorted(names)
        assert not warnings_about_makeflags(p.stderr), p.stderr
        assert drain(r) == b''
    finally:
        os.close(r)
        if w != r:
            os.close(w)


def test_explicit_j_wins_over_makes_jobserver(sb):
    # -j1 on the command line: one at a time, and make's tokens untouched.
    r, w = os.pipe()
    try:
        os.write(w, b'+' * 3)
        names = leaves(sb, 4)
        p = run(sb, ['redo', '-j1', 'leaves'], (r, w),
                         {'MAKEFLAGS': ' -j4 --jobserver-auth=%d,%d' % (r, w)})
        assert p.returncode == 0, p.stderr
        assert max_running(sb) == 1
        assert started(sb) == sorted(names)
        assert drain(r) == b'+++'
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize('case', [
    'closed-3-4',
    'closed-high',
    'old-form-closed',
    'not-a-pipe',
    'two-pipes',
    'garbage',
    'missing-fifo',
])
def test_unusable_jobserver_warns_names_makeflags_and_runs_one_job(sb, tmp_path, case):
    opened = []
    try:
        if case == 'closed-3-4':
            flags, fds = ' -j3 --jobserver-auth=3,4', ()
        elif case == 'closed-high':
            flags, fds = ' -j3 --jobserver-auth=57,58', ()
        elif case == 'old-form-closed':
            flags, fds = ' -j3 --jobserver-fds=57,58', ()
        elif case == 'not-a-pipe':
            f = os.open(os.devnull, os.O_RDWR)
            opened.append(f)
            flags, fds = ' -j3 --jobserver-auth=%d,%d' % (f, f), (f,)
        elif case == 'two-pipes':
            r1, w1 = os.pipe()
            r2, w2 = os.pipe()
            opened += [r1, w1, r2, w2]
            os.write(w1, b'++')
            os.write(w2, b'++')
            flags, fds = ' -j3 --jobserver-auth=%d,%d' % (r1, w2), (r1, w2)
        elif case == 'garbage':
            flags, fds = ' -j3 --jobserver-auth=x,y', ()
        else:
            flags, fds = ' -j3 --jobserver-auth=fifo:%s' % (tmp_path / 'no-such-fifo'), ()
        names = leaves(sb, 4)
        p = run(sb, ['redo', 'leaves'], fds, {'MAKEFLAGS': flags})
        assert p.returncode == 0, p.stderr
        assert started(sb) == sorted(names)
        assert 'Traceback' not in p.stderr, p.stderr
        assert warnings_about_makeflags(p.stderr), p.stderr
        assert max_running(sb) == 1
        assert temporaries(sb) == []
    finally:
        for fd in opened:
            os.close(fd)


# --- tokens go back, whatever happens ----------------------------------------

def test_tokens_are_returned_after_a_failure(sb):
    r, w = os.pipe()
    try:
        os.write(w, b'+' * 3)
        sb.write('default.do', 'work "$1" 4\ncase $1 in bad*) exit 1;; esac\necho "$1"\n')
        sb.write('all.do', 'redo-ifchange ok1 bad1 ok2 bad2 ok3 ok4 ok5\n')
        p = run(sb, ['redo', 'all'], (r, w), {'MAKEFLAGS': ' -j4 --jobserver-auth=%d,%d' % (r, w)})
        assert p.returncode != 0
        assert drain(r) == b'+++'
        os.write(w, b'+++')
        p = run(sb, ['redo', '-k', 'all'], (r, w), {'MAKEFLAGS': ' -j4 --jobserver-auth=%d,%d' % (r, w)})
        assert p.returncode != 0
        assert drain(r) == b'+++'
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['INT', 'TERM'])
def test_tokens_are_returned_after_an_interruption(sb, tmp_path, sig):
    fifo = str(tmp_path / 'jobserver.fifo')
    os.mkfifo(fifo)
    holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(holder, b'+' * 3)
        sb.write('default.do', ': >"$1.started"\nexec sleep 30\n')
        sb.write('all.do', 'redo-ifchange a b c d e f\n')
        e = dict(sb.env)
        e['MAKEFLAGS'] = '-j4 --jobserver-auth=fifo:%s' % fifo
        p = subprocess.Popen(['redo', 'all'], cwd=str(sb.path), env=e, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            end = time.monotonic() + TIMEOUT
            while sum(os.path.exists(sb.path / (t + '.started')) for t in 'abcdef') < 4:
                assert p.poll() is None and time.monotonic() < end, p.stderr.read()
                time.sleep(0.01)
            # all four slots taken: the fifo is empty now
            assert drain(holder) == b''
            if sig == signal.SIGINT:
                os.killpg(p.pid, sig)
            else:
                os.kill(p.pid, sig)
            assert p.wait(10) == 128 + sig
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            p.stderr.close()
        assert drain(holder) == b'+++'
    finally:
        os.close(holder)
    assert temporaries(sb) == []


def test_a_jobserver_fifo_that_is_a_regular_file_is_not_used(sb):
    # fifo:PATH naming a plain file: its bytes are not tokens, and the file
    # is left as it was.
    precious = sb.write('precious.txt', 'ABCDEFGHIJ-important-data\n')
    names = leaves(sb, 3)
    p = run(sb, ['redo', 'leaves'], (), {'MAKEFLAGS': ' -j4 --jobserver-auth=fifo:%s' % precious})
    assert p.returncode == 0, p.stderr
    assert precious.read_text() == 'ABCDEFGHIJ-important-data\n'
    assert len(warnings_about_makeflags(p.stderr)) == 1, p.stderr
    assert 'not a fifo' in p.stderr
    assert max_running(sb) == 1
    assert started(sb) == sorted(names)


def test_a_jobserver_fd_number_out_of_range_is_a_warning(sb):
    names = leaves(sb, 2)
    p = run(sb, ['redo', 'leaves'], (), {'MAKEFLAGS': ' -j4 --jobserver-auth=99999999999999999999,1'})
    assert p.returncode == 0, p.stderr
    assert 'Traceback' not in p.stderr
    assert len(warnings_about_makeflags(p.stderr)) == 1, p.stderr
    assert started(sb) == sorted(names)


@pytest.mark.parametrize('how', [['-j', '1025'], ['-j', '65538'], ['-j', '99999999999999999999'],
                                 ['-j', '\uff11'], 'REDO_JOBS=70000'])
def test_a_job_count_out_of_range_is_a_usage_error(sb, how):
    # More tokens than a pipe holds hung redo, writing them into its own
    # jobserver; a huge number was a traceback.
    sb.write('x.do', 'echo x\n')
    if isinstance(how, str):
        name, _, value = how.partition('=')
        p = run(sb, ['redo', 'x'], (), {name: value})
    else:
        p = run(sb, ['redo'] + how + ['x'], ())
    assert p.returncode == 2, p.stderr
    assert 'Traceback' not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not sb.exists('x')


def test_the_largest_job_count_runs(sb):
    names = leaves(sb, 3)
    p = run(sb, ['redo', '-j', '1024', 'leaves'], ())
    assert p.returncode == 0, p.stderr
    assert started(sb) == sorted(names)


def test_j0_means_one_job_per_cpu(sb):
    sb.write('x.do', 'echo "$MAKEFLAGS"\n')
    p = run(sb, ['redo', '-j', '0', 'x'], ())
    assert p.returncode == 0, p.stderr
    assert ' -j%d ' % min(os.cpu_count() or 1, 1024) in ' %s ' % sb.read('x').strip()
