"""SPEC §5: interruption.

Ctrl-C (SIGINT to the process group), SIGTERM and SIGHUP (to redo) end every
running .do and what it started, remove every temporary redo made
(.redo/tmp/*, .redo/out/*, the run directory redo-UID-PID-* in $TMPDIR) and
exit 128+signal, leaving the interrupted targets and their state as they
were.  kill -9 of the whole session at any moment, then a normal build,
gives the right targets.

Every test starts redo in a session of its own, waits for the .do files to
show they have started (marker files, never a sleep alone), then signals.
Timeouts are hang guards, not speed checks.
"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from concurrency import TIMEOUT, kill_session, kill_strays, read_pids, temporaries, wait_gone
from concurrency import procs, sb  # noqa: F401  (fixtures)

EXIT_TIMEOUT = 10     # hang guard for the exit after a signal

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
SIG_IDS = ['INT', 'TERM', 'HUP']


# --- helpers -----------------------------------------------------------------

def state_files(sb):
    """Every target's content and every .redo/*.rec, as bytes by path."""
    out = {}
    for d, dirs, files in os.walk(sb.path):
        dirs[:] = [x for x in dirs if x not in ('tmp', 'out')]
        for f in files:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, sb.path)
            if f.endswith('.rec') or rel in TARGETS:
                with open(p, 'rb') as h:
                    out[rel] = h.read()
    return out


# --- a build interrupted while every .do is busy ------------------------------

TARGETS = ['x1', 'x2', 'x3', 'sub/x4', 'all']

# x1 and sub/x4 write $3, x2 and x3 stdout; all four then run a child in the
# foreground while `hang` exists.  Each writes its own pid to $1.pid and its
# child's to $1.child.
DEFAULT_DO = '''redo-ifchange src
case $1 in
  x1|sub/x4) { echo "$1"; cat src; } >"$3" ;;
  *) echo "$1"; cat src ;;
esac
if [ -e hang ]; then
  echo $$ >"$1.pid"
  sh -c 'echo $$ >"$0.child"; exec sleep 60' "$1"
fi
'''


def write_busy_tree(sb):
    (sb.path / 'sub').mkdir()
    sb.write('default.do', DEFAULT_DO)
    sb.write('all.do', 'redo-ifchange x1 x2 x3 sub/x4\ncat x1 x2 x3 sub/x4\n')


def expected(sb, t):
    return '%s\n%s' % (t, sb.read('src'))


@pytest.mark.parametrize('sig', SIGNALS, ids=SIG_IDS)
def test_signal_ends_every_do_removes_temporaries_keeps_old_state(sb, procs, sig):
    write_busy_tree(sb)
    sb.write('src', 'one\n')
    sb.ifchange('all', check=True)
    before = state_files(sb)
    assert sorted(before) == sorted(TARGETS + ['.redo/%s.rec' % t for t in ('x1', 'x2', 'x3', 'all')]
                                    + ['sub/.redo/x4.rec'])

    sb.write('src', 'two\n')
    sb.write('hang', '')
    # all.do changed: it runs first and asks for the four at once (had
    # only src changed, x1, its first dependency, would be rebuilt alone
    # first: SPEC §4, dependencies in order).
    sb.write('all.do', sb.read('all.do') + '# edited\n')
    p = procs(sb, 'redo-ifchange', '-j4', 'all')
    jobs = ['x1', 'x2', 'x3', 'sub/x4']
    pids = read_pids(sb, [j + '.pid' for j in jobs] + [j + '.child' for j in jobs], p)
    # the .do files are at work: their temporaries exist now
    assert (sb.path / '.redo3.x1').exists() and (sb.path / 'sub/.redo3.x4').exists()
    assert [t for t in temporaries(sb) if t.startswith('TMPDIR/')]

    p.signal(sig)
    assert p.wait(EXIT_TIMEOUT) == 128 + sig, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == [], 'still running after redo exited: %s' % left
    assert temporaries(sb) == []
    assert state_files(sb) == before, 'the interrupted targets or their state changed'
    assert 'Traceback' not in p.stderr, p.stderr

    # and the next build goes on from there
    os.unlink(sb.path / 'hang')
    sb.ifchange('all', check=True)
    for t in ('x1', 'x2', 'x3', 'sub/x4'):
        assert sb.read(t) == expected(sb, t)
    assert sb.read('all') == ''.join(expected(sb, t) for t in ('x1', 'x2', 'x3', 'sub/x4'))
    assert temporaries(sb) == []


def test_an_interrupted_build_leaves_the_log_of_the_build_before(sb, procs):
    # redo-log shows the state's build: its stderr, not the interrupted
    # one's (which the state does not describe).
    sb.write('t.do', 'echo "stderr of build $(cat n)" >&2\n'
                     '[ ! -e slow ] || { echo $$ >t.pid; sleep 30; }\ncat n\n')
    sb.write('n', '1\n')
    sb.redo('t', check=True)
    sb.write('n', '2\n')
    sb.write('slow', '')
    p = procs(sb, 'redo', 't')
    read_pids(sb, ['t.pid'], p)
    p.signal(signal.SIGINT)
    assert p.wait(EXIT_TIMEOUT) == 128 + signal.SIGINT, p.stderr
    r = sb.run('redo-log', 't', check=True)
    assert r.stdout.splitlines()[1:] == ['  stderr of build 1'], r.stdout
    assert sb.read('t') == '1\n'
    os.unlink(sb.path / 'slow')
    sb.redo('t', check=True)
    r = sb.run('redo-log', 't', check=True)
    assert r.stdout.splitlines()[1:] == ['  stderr of build 2'], r.stdout


@pytest.mark.parametrize('sig', SIGNALS, ids=SIG_IDS)
def test_signal_while_a_do_waits_for_its_dependencies(sb, procs, sig):
    # -j1 and a chain a -> b -> c: a and b wait (in redo-ifchange), c runs.
    sb.write('a.do', 'echo $$ >a.pid\nredo-ifchange b\necho a\n')
    sb.write('b.do', 'echo $$ >b.pid\nredo-ifchange c\necho b\n')
    sb.write('c.do', 'echo $$ >c.pid\necho partial >"$3"\nsh -c \'echo $$ >c.child; exec sleep 60\'\n')
    p = procs(sb, 'redo', '-j1', 'a')
    pids = read_pids(sb, ['a.pid', 'b.pid', 'c.pid', 'c.child'], p)
    p.signal(sig)
    assert p.wait(EXIT_TIMEOUT) == 128 + sig, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == []
    assert temporaries(sb) == []
    for t in 'abc':
        assert not sb.exists(t)
        assert not sb.exists('.redo/%s.rec' % t)




@pytest.mark.parametrize('sig', [signal.SIGINT,
                                 signal.SIGTERM, signal.SIGHUP], ids=SIG_IDS)
def test_signal_ends_background_children_of_a_do(sb, procs, sig):
    sb.write('x.do', 'sleep 60 &\necho $! >x.child\nwait\necho x\n')
    sb.write('y.do', 'sh -c \'sleep 60 & echo $! >y.child; wait\' &\nwait\necho y\n')
    p = procs(sb, 'redo', '-j2', 'x', 'y')
    pids = read_pids(sb, ['x.child', 'y.child'], p)
    p.signal(sig)
    assert p.wait(EXIT_TIMEOUT) == 128 + sig, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == [], 'background children still running: %s' % left
    assert temporaries(sb) == []


def test_a_do_that_ignores_the_signal_is_killed(sb, procs):
    # The .do and its foreground child ignore SIGTERM: after the grace
    # period redo kills them.
    sb.write('x.do', 'trap "" INT TERM HUP\necho $$ >x.pid\n'
                     'sh -c \'echo $$ >x.child; while :; do sleep 1; done\'\n')
    p = procs(sb, 'redo', 'x')
    pids = read_pids(sb, ['x.pid', 'x.child'], p)
    p.signal(signal.SIGTERM)
    assert p.wait(EXIT_TIMEOUT) == 128 + signal.SIGTERM, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == []
    assert temporaries(sb) == []


def test_a_background_child_that_ignores_the_signal_is_killed(sb, procs):
    sb.write('x.do', 'sh -c \'trap "" INT TERM HUP; echo $$ >x.child; '
                     'while :; do sleep 1; done\' &\nwait\n')
    p = procs(sb, 'redo', 'x')
    pids = read_pids(sb, ['x.child'], p)
    p.signal(signal.SIGTERM)
    assert p.wait(EXIT_TIMEOUT) == 128 + signal.SIGTERM, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == []


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['INT', 'TERM'])
def test_signal_reaches_a_redo_started_apart_by_a_do(sb, procs, sig):
    # a.do starts a redo of its own (REDO_RUN gone); that one's run
    # directory and jobs go too.
    sb.write('a.do', 'env -u REDO_RUN -u REDO_PID redo-ifchange sub/b\necho a\n')
    sb.write('sub/b.do', 'echo $$ >b.pid\necho part >"$3"\nsh -c \'echo $$ >b.child; exec sleep 60\'\n')
    p = procs(sb, 'redo', 'a')
    pids = read_pids(sb, ['sub/b.pid', 'sub/b.child'], p)
    assert len([n for n in os.listdir(sb.tmpdir) if n.startswith('redo')]) == 2
    p.signal(sig)
    assert p.wait(EXIT_TIMEOUT) == 128 + sig, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == []
    assert temporaries(sb) == []


LAZY_REAPER = r"""
import ctypes, os, subprocess, sys
# Orphans of what it starts become its children (PR_SET_CHILD_SUBREAPER),
# and it never reaps them: their zombies stay, as with an init that reaps
# only now and then.  It waits for its own child alone.
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit(99)
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
open('outer.pid', 'w').write('%d\n' % p.pid)
sys.exit(p.wait())
"""


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux (/proc, prctl)')
def test_zombies_left_for_a_lazy_init_do_not_hold_up_the_exit(sb, procs):
    # As above, under an ancestor that adopts orphans and does not reap
    # them: what b.do started is a zombie once its parent dies.  The inner
    # redo does not wait for those zombies (the outer one's grace period
    # would end first, and kill it before it removes its run directory).
    sb.write('a.do', 'env -u REDO_RUN -u REDO_PID redo-ifchange sub/b\necho a\n')
    sb.write('sub/b.do', 'echo $$ >b.pid\necho part >"$3"\nsh -c \'echo $$ >b.child; exec sleep 60\'\n')
    sb.write('lazy.py', LAZY_REAPER)
    p = procs(sb, sys.executable, 'lazy.py', 'redo', 'a')
    pids = read_pids(sb, ['outer.pid', 'sub/b.pid', 'sub/b.child'], p)
    start = time.monotonic()
    os.kill(pids[0], signal.SIGTERM)
    assert p.wait(EXIT_TIMEOUT) == 128 + signal.SIGTERM, p.stderr
    # Waiting for the zombies would last the whole grace period (1.5 s)
    # before the SIGKILLs; everything here ends at once on SIGTERM.
    assert time.monotonic() - start < 1.2
    left = wait_gone(pids[1:])
    kill_strays(left)
    assert left == []
    assert temporaries(sb) == []


def test_signal_while_waiting_for_another_runs_lock(sb, procs):
    # B waits for x, which A builds: Ctrl-C ends B at once and cleanly; A
    # goes on and finishes.
    sb.write('x.do', ': >x.started\nawait go\necho x\n')
    sb.write('y.do', ': >y.started\nredo-ifchange x\ncat x\n')
    a = procs(sb, 'redo-ifchange', 'x', tag='a')
    end = time.monotonic() + TIMEOUT
    while not sb.exists('x.started'):
        assert a.p.poll() is None and time.monotonic() < end, a.stderr
        time.sleep(0.01)
    b = procs(sb, 'redo-ifchange', 'y', tag='b')
    # b has started y.do, which now asks for x (locked by a)
    while not sb.exists('y.started'):
        assert b.p.poll() is None and time.monotonic() < end, b.stderr
        time.sleep(0.01)
    time.sleep(0.1)
    assert b.p.poll() is None, b.stderr
    assert [n for n in os.listdir(sb.tmpdir) if n.startswith('redo-%d-%d-' % (os.getuid(), b.pid))]
    b.signal(signal.SIGINT)
    assert b.wait(EXIT_TIMEOUT) == 130, b.stderr
    assert [n for n in os.listdir(sb.tmpdir) if n.startswith('redo-%d-%d-' % (os.getuid(), b.pid))] == []
    assert a.p.poll() is None
    (sb.path / 'go').touch()
    assert a.wait(TIMEOUT) == 0, a.stderr
    assert sb.read('x') == 'x\n' and not sb.exists('y')
    assert temporaries(sb) == []


def test_signal_after_a_failure_while_a_job_still_runs(sb, procs):
    # f fails; h still runs, so redo waits for it; Ctrl-C ends the wait.
    sb.write('f.do', 'await h.pid\nexit 1\n')
    sb.write('h.do', 'echo $$ >h.pid\nsh -c \'echo $$ >h.child; exec sleep 60\'\n')
    sb.write('all.do', 'redo-ifchange h f\n')
    p = procs(sb, 'redo', '-j2', 'all')
    pids = read_pids(sb, ['h.pid', 'h.child'], p)
    end = time.monotonic() + TIMEOUT
    while 'f.do' not in p.stderr:
        assert p.p.poll() is None and time.monotonic() < end, p.stderr
        time.sleep(0.01)
    assert p.p.poll() is None       # h runs on: the build is not over
    p.signal(signal.SIGINT)
    assert p.wait(EXIT_TIMEOUT) == 130, p.stderr
    left = wait_gone(pids)
    kill_strays(left)
    assert left == []
    assert temporaries(sb) == []


# --- at random moments ----------------------------------------------------------

SOURCES = ['s%d' % i for i in range(8)]
LEAVES = ['l%d' % i for i in range(8)]          # l_i from s_i
MIDS = {'m0': ['l0', 'l1', 'l2'], 'm1': ['l3', 'l4'], 'm2': ['l5', 'l6', 'l7'], 'm3': ['l1', 'l6']}
ALL_TARGETS = LEAVES + sorted(MIDS) + ['all', 'sub/top']


def write_random_tree(sb):
    """Each .do takes a few ms, writes its output in pieces (to $3 or to
    stdout, half and half) and logs its run to `runs`."""
    sb.write('default.do', 'echo "$1" >>runs\n'
                           'case $1 in\n'
                           '  l[0-3]) redo-ifchange "s${1#l}"; echo "leaf $1" >"$3"; sleep 0.003; '
                           'tr a-z A-Z <"s${1#l}" >>"$3" ;;\n'
                           '  l*) redo-ifchange "s${1#l}"; echo "leaf $1"; sleep 0.003; tr a-z A-Z <"s${1#l}" ;;\n'
                           'esac\n')
    for m, deps in MIDS.items():
        sb.write(m + '.do', 'echo %s >>runs\nredo-ifchange %s\necho "mid %s"\nsleep 0.002\ncat %s\n'
                 % (m, ' '.join(deps), m, ' '.join(deps)))
    # all.do rebuilds whenever a source changed, and lasts 50 ms: a build
    # is still running 40 ms after its first .do started, whatever the
    # speed of the machine (test_sigint_at_random_moments aims there).
    sb.write('all.do', 'echo all >>runs\nredo-ifchange %s\nsleep 0.05\n{ echo all; cat %s; } >"$3"\n'
             % (' '.join(MIDS), ' '.join(sorted(MIDS))))
    sb.write('sub/top.do', 'echo sub/top >>../runs\nredo-ifchange ../all ../m3\ncat ../all ../m3 | wc -l\n')


def expected_contents(sb):
    want = {}
    for i, l in enumerate(LEAVES):
        want[l] = 'leaf %s\n%s' % (l, sb.read('s%d' % i).upper())
    for m, deps in MIDS.items():
        want[m] = 'mid %s\n%s' % (m, ''.join(want[d] for d in deps))
    want['all'] = 'all\n' + ''.join(want[m] for m in sorted(MIDS))
    lines = (want['all'] + want['m3']).count('\n')
    want['sub/top'] = '%d\n' % lines
    return want


def mutate(sb, rng, gen):
    """Changes 0 to 3 sources."""
    for s in rng.sample(SOURCES, rng.randint(0, 3)):
        sb.write(s, '%s gen %d %s\n' % (s, gen, rng.choice(['x', 'yy', 'zzz'])))


def check_final_build(sb):
    r = sb.ifchange('-j3', 'sub/top', timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    for t, text in expected_contents(sb).items():
        assert sb.read(t) == text, t
    os.unlink(sb.path / 'runs')
    r = sb.ifchange('sub/top', timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert sb.log('runs') == [], 'rebuilt after a clean build: %s' % sb.log('runs')


def timed_build(sb):
    """How long a build of everything takes here (to aim the kills)."""
    for s in SOURCES:
        sb.write(s, '%s first\n' % s)
    t = time.monotonic()
    sb.ifchange('-j3', 'sub/top', check=True, timeout=TIMEOUT)
    return time.monotonic() - t


@pytest.mark.slow
def test_kill_9_at_random_moments_then_a_clean_build(sb):
    # 20 builds of a small tree, each after changing some sources, each
    # killed (SIGKILL to every process of its session) at a random moment:
    # half of them counted from the start, half from the start of the
    # first .do.  Then a normal build must give exactly the right
    # contents, and the one after it must rebuild nothing.
    write_random_tree(sb)
    span = timed_build(sb)
    rng = random.Random(20261122)
    hit = 0
    for gen in range(20):
        for s in rng.sample(SOURCES, rng.randint(1, 3)):
            sb.write(s, '%s gen %d %s\n' % (s, gen, rng.choice(['x', 'yy', 'zzz'])))
        if rng.random() < 0.25:                   # sometimes everything changes
            for s in SOURCES:
                sb.write(s, '%s all %d\n' % (s, gen))
        cmd = rng.choice([['redo-ifchange', '-j3', 'sub/top'], ['redo', '-j2', 'all'],
                          ['redo-ifchange', '-j1', 'm0', 'm2', 'sub/top']])
        runs = len(sb.log('runs'))
        p = subprocess.Popen(cmd, cwd=str(sb.path), env=dict(sb.env), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            if gen % 2:
                end = time.monotonic() + TIMEOUT
                while len(sb.log('runs')) == runs and p.poll() is None:
                    assert time.monotonic() < end, 'no .do started'
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, span / 3))
            else:
                time.sleep(rng.uniform(0, span))
            if p.poll() is None:
                hit += 1
        finally:
            kill_session(p.pid)
            p.wait(10)
    assert hit >= 10, 'only %d of 20 kills hit a running build' % hit
    check_final_build(sb)


@pytest.mark.slow
def test_sigint_at_random_moments_always_leaves_a_clean_state(sb):
    # Ctrl-C at a random moment once a .do has started: exit 130 (or 0 if
    # the build was over), no temporaries, and every target either as it
    # was or as it should be now; at the end a clean build is right.
    write_random_tree(sb)
    span = timed_build(sb)
    rng = random.Random(7)
    hit = 0
    for gen in range(12):
        for s in rng.sample(SOURCES, rng.randint(1, 4)):
            sb.write(s, '%s gen %d %s\n' % (s, gen, rng.choice(['x', 'yy', 'zzz'])))
        old = {t: sb.read(t) for t in ALL_TARGETS}
        runs = len(sb.log('runs'))
        p = subprocess.Popen(['redo-ifchange', '-j3', 'sub/top'], cwd=str(sb.path), env=dict(sb.env),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            end = time.monotonic() + TIMEOUT
            while len(sb.log('runs')) == runs and p.poll() is None:
                assert time.monotonic() < end, 'no .do started'
                time.sleep(0.002)
            time.sleep(rng.uniform(0, min(span / 2, 0.04)))
            try:
                os.killpg(p.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                _, err = p.communicate(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise AssertionError('redo did not exit after SIGINT')
        finally:
            kill_session(p.pid)
        err = err.decode(errors='replace')
        assert 'Traceback' not in err, err
        # 130, or killed by SIGINT itself (what a shell shows as 130 too): a
        # signal that lands while Python exits meets the default handler
        assert p.returncode in (0, 130, -signal.SIGINT), (p.returncode, err)
        if p.returncode != 0:
            hit += 1
        assert temporaries(sb) == [], 'after SIGINT number %d' % gen
        want = expected_contents(sb)
        for t in ALL_TARGETS:
            # each target is either as it was or as it should be now
            assert sb.read(t) in (old[t], want[t]), t
    assert hit >= 10, 'only %d of 12 signals hit a running build' % hit
    check_final_build(sb)


def test_ctrl_c_at_start_up_prints_no_traceback(sb):
    # Ctrl-C at 30 random moments in the first part of a run (mostly Python
    # starting up): wherever it lands, no traceback.
    sb.write('x.do', 'echo x\n')
    sb.write('src', 'src\n')
    t = time.monotonic()
    sb.ifchange('src', check=True)
    span = time.monotonic() - t
    rng = random.Random(3)
    errors = []
    for i in range(30):
        p = subprocess.Popen(['redo', 'x'], cwd=str(sb.path), env=dict(sb.env),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(rng.uniform(0, span * 0.6))
        try:
            os.killpg(p.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            _, err = p.communicate(timeout=EXIT_TIMEOUT)
        finally:
            kill_session(p.pid)
        errors.append(err.decode(errors='replace'))
    assert not [e for e in errors if 'Traceback' in e], [e for e in errors if 'Traceback' in e][0]
    assert temporaries(sb) == []


def test_run_directory_of_a_killed_run_is_removed_by_the_next(sb):
    # A run killed with -9 cannot clean up: the next run that starts .do
    # scripts removes its run directory (its process is gone), not that of
    # a live process, and .do outputs left half-written are replaced.
    dead = subprocess.Popen(['true'])
    dead.wait()
    live = os.getpid()
    uid = os.getuid()
    gone = sb.tmpdir / ('redo-%d-%d-abcdef' % (uid, dead.pid))
    kept = sb.tmpdir / ('redo-%d-%d-abcdef' % (uid, live))
    for d in (gone, kept):
        (d / 'bin').mkdir(parents=True)
        (d / 'req').write_text('')
    (sb.path / '.redo' / 'out').mkdir(parents=True)
    (sb.path / '.redo' / 'out' / 'x').write_text('half of an old output')
    sb.write('x.do', 'echo x >"$3"\n')
    sb.redo('x', check=True)
    assert not gone.exists()
    assert kept.exists()
    assert sb.read('x') == 'x\n'
    assert not (sb.path / '.redo' / 'out' / 'x').exists()


def test_interruption_is_said_with_what_was_running(sb, procs):
    # SPEC §5: Ctrl-C says the build was interrupted, and what was running.
    sb.write('t.do', 'echo $$ >t.pid\nsleep 30\n')
    p = procs(sb, 'redo', 't')
    read_pids(sb, ['t.pid'], p)
    p.signal(signal.SIGINT)
    assert p.wait(EXIT_TIMEOUT) == 130
    assert 'interrupted by SIGINT; stopped t, left as before' in p.stderr, p.stderr


def test_interruption_names_a_do_reaped_with_it(tmp_path):
    """A Ctrl-C that the loop reads after the SIGCHLD of another .do (both
    in one read of its signal pipe) still finds the .do the Ctrl-C ended
    running: it is named as stopped, not reaped first and forgotten."""
    from conftest import REDO_PY
    code = r'''
import importlib.machinery, importlib.util, os, signal, sys, time
loader = importlib.machinery.SourceFileLoader('redo_mod', sys.argv[1])
redo = importlib.util.module_from_spec(importlib.util.spec_from_loader('redo_mod', loader))
loader.exec_module(redo)
loop = redo.Loop()
seen = []
loop.connect(None, None, None, None, None,
             lambda s: seen.append((s, sorted(j.pid for j in loop.running()))))
loop.open()
class Job:
    waiter = None
pid = os.posix_spawn('/bin/sh', ['sh', '-c', 'exit 0'], dict(os.environ))
job = Job()
job.pid = pid
loop.add_child(job)
for _ in range(500):        # dead, not yet reaped
    with open('/proc/%d/stat' % pid) as f:
        if f.read().rpartition(')')[2].split()[0] == 'Z':
            break
    time.sleep(0.01)
os.write(loop.sig_w, bytes([signal.SIGCHLD, signal.SIGINT]))
loop.on_signals(loop.sig_r)
print(seen == [(signal.SIGINT, [pid])], job.status, seen)
'''
    p = subprocess.run([sys.executable, '-c', code, str(REDO_PY)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith('True 0'), p.stdout
