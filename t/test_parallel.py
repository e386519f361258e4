"""SPEC §5: parallel builds and other processes.

-j N / --jobs N / REDO_JOBS (at most N .do files at work, nested calls
included; a .do waiting for its dependencies holds no slot; -j1 strictly
sequential), locking between independent runs, cycles found whatever the
path, failure and -k in parallel, and the big shapes: huge argument lists,
very deep chains, very wide trees.

Nothing here measures wall-clock time.  Concurrency is measured by the .do
files themselves: each stretch of work a .do does is bracketed by `S name`
and `E name` lines appended to $PLOG (the `work` tool of concurrency.py),
and the log is replayed to find the most stretches that were ever running
at once.  A stretch can also wait (boundedly) until some stretch has seen
WANT of them running at once, so that reaching a limit does not depend on
timing.
"""

import os
import re
import shutil
import signal
import time

import pytest

from concurrency import (TIMEOUT, kill_session, leaf_do, max_running, started, stretches,
                         temporaries, wait_for)
from concurrency import procs, sb  # noqa: F401  (fixtures)


# --- helpers -----------------------------------------------------------------

def cycle_named(stderr, names):
    """True if a line of stderr names a cycle through exactly `names`,
    written x -> y -> ... -> x (in any rotation)."""
    for line in stderr.splitlines():
        if 'cycle' not in line:
            continue
        for m in re.finditer(r"[^\s:]+(?: -> [^\s:]+)+", line):
            parts = [p.strip('\'"`') for p in m.group(0).split(' -> ')]
            if parts[0] == parts[-1] and sorted(parts[:-1]) == sorted(names):
                return True
    return False


# --- -j N: the limit, counted across the whole run -------------------------

TREE = {
    # target: what it asks for, one list per redo-ifchange it runs
    'all': [['g1', 'g2', 'l1'], ['l2']],
    'g1': [['a1', 'a2', 'a3', 'a4']],
    'g2': [['b1', 'b2'], ['b3', 'b4', 'g1']],
}


def write_tree(sb, want=None):
    """TREE: a .do of a target with dependencies works, asks for them,
    works again between and after the calls; leaves just work."""
    for t, calls in TREE.items():
        body = 'work %s.0\n' % t
        for i, deps in enumerate(calls):
            body += 'redo-ifchange %s\nwork %s.%d\n' % (' '.join(deps), t, i + 1)
        body += 'cat %s\n' % ' '.join(d for c in calls for d in c)
        sb.write(t + '.do', body)
    leaf_do(sb, want=want)


def tree_leaves():
    deps = {d for calls in TREE.values() for c in calls for d in c}
    return sorted(deps - set(TREE))


@pytest.mark.parametrize('how', [['-j3'], ['-j', '3'], ['--jobs', '3'], ['--jobs=3'],
                                 {'REDO_JOBS': '3'}], ids=str)
def test_at_most_n_jobs_and_n_are_reached(sb, how):
    write_tree(sb, want=3)
    args = how if isinstance(how, list) else []
    env = how if isinstance(how, dict) else None
    sb.ifchange(*args, 'all', env=env, check=True)
    assert max_running(sb) == 3
    assert sorted(sb.read('g1').split()) == ['a1', 'a2', 'a3', 'a4']
    assert sorted(started(sb)) == sorted(tree_leaves() + ['all.0', 'all.1', 'all.2', 'g1.0', 'g1.1',
                                                           'g2.0', 'g2.1', 'g2.2'])
    assert temporaries(sb) == []


@pytest.mark.parametrize('n', [2, 5])
def test_limit_holds_for_a_wide_fan_out(sb, n):
    leaf_do(sb, want=n)
    names = ['x%d' % i for i in range(4 * n)]
    sb.write('all.do', 'redo-ifchange %s\n' % ' '.join(names))
    sb.redo('-j%d' % n, check=True)
    assert max_running(sb) == n
    assert sorted(started(sb)) == sorted(names)


def test_default_is_the_number_of_cpus(sb):
    # The CPUs of the machine, or those this process may run on.
    counts = {os.cpu_count()}
    if hasattr(os, 'sched_getaffinity'):
        counts.add(len(os.sched_getaffinity(0)))
    leaf_do(sb, want=max(counts))
    names = ['x%d' % i for i in range(2 * max(counts) + 1)]
    sb.write('all.do', 'redo-ifchange %s\n' % ' '.join(names))
    sb.redo(check=True)
    assert max_running(sb) in counts


def test_j1_is_strictly_sequential(sb):
    # Also a deadlock test: with one slot, every .do that waits for its
    # dependencies must give the slot back, at every level.
    write_tree(sb)
    sb.write('deep.do', 'work deep.0\nredo-ifchange mid\nwork deep.1\necho deep\n')
    sb.write('mid.do', 'work mid.0\nredo mid2\nwork mid.1\necho mid\n')
    sb.write('mid2.do', 'work mid2.0\nredo-ifchange c1 c2 c3\nwork mid2.1\necho mid2\n')
    sb.ifchange('-j1', 'all', 'deep', check=True)
    log = stretches(sb)
    for i in range(0, len(log), 2):
        assert log[i][0] == 'S' and log[i + 1] == ('E', log[i][1]), log
    assert max_running(sb) == 1
    assert len(log) == 2 * (len(tree_leaves()) + 8 + 9)


def test_j1_puts_each_target_in_place_before_the_next_starts(sb):
    # Under -j1 a .do may rely on the order of the arguments: b.do reads
    # a without asking for it.  (With more jobs a slot is handed on as soon
    # as a .do exits, before its target is put in place.)
    # a is big, so that putting it in place (its hash) takes a while.
    sb.write('a.do', 'head -c 20000000 /dev/zero >"$3"\n')
    sb.write('b.do', 'wc -c <a | tr -d " " >"$3"\n')
    sb.write('all.do', 'redo-ifchange a b\n')
    for i in range(2):
        sb.redo('-j1', 'all', check=True)
        assert sb.read('b') == '20000000\n'
        sb.run('rm', '-rf', 'a', 'b', '.redo', check=True)


# --- shells started ahead ------------------------------------------------------
# The shell of the .do that gets the next slot is started while the slots
# are taken, and waits (running nothing of the .do) until its slot comes.
# These tests find such a shell by its REDO_TARGET.

AHEAD = r"""ahead() {  # the pids of the shells started ahead for target $1, waiting up to 10 s
  i=0
  while [ $i -lt 1000 ]; do
    for e in /proc/[0-9]*/environ; do
      if tr '\0' '\n' <"$e" 2>/dev/null | grep -qx "REDO_TARGET=$PWD/$1"; then
        p=${e#/proc/}; echo "${p%/environ}"; return 0
      fi
    done
    i=$((i+1)); sleep 0.01
  done
  echo "no shell started ahead for $1" >&2; return 1
}
"""

needs_two_cpus = pytest.mark.skipif((os.cpu_count() or 1) < 2 or not os.path.isdir('/proc/self'),
                                    reason='needs 2 CPUs and /proc')


def shells_for(path):
    """The live processes whose environment has REDO_TARGET=path."""
    found = []
    for n in os.listdir('/proc'):
        if n.isdigit():
            try:
                with open('/proc/%s/environ' % n, 'rb') as f:
                    env = f.read().split(b'\0')
            except OSError:
                continue
            if os.fsencode('REDO_TARGET=%s' % path) in env:
                found.append(int(n))
    return found


@needs_two_cpus
def test_a_shell_is_started_ahead_when_every_slot_is_taken(sb):
    # -j2: a and b hold both slots; n's shell is started meanwhile, and
    # waits, running nothing, until a slot is free.
    sb.write('a.do', AHEAD + 'ahead n >ahead.tmp\nmv ahead.tmp ahead.pid\n'
             '[ ! -e log ] || cat log >&2\necho a\n')
    sb.write('b.do', 'while [ ! -e ahead.pid ]; do sleep 0.01; done\necho b\n')
    sb.write('n.do', 'echo n >>log\necho n\n')
    r = sb.redo('-j2', 'a', 'b', 'n', timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert int(sb.read('ahead.pid')) > 0
    assert sb.log('log') == ['n']


@needs_two_cpus
def test_a_shell_started_ahead_that_is_killed_is_replaced(sb):
    # -j1 on 2 CPUs: while s builds, n's shell waits for its turn; s kills
    # it.  n is still built, by a shell of its own, once.
    sb.write('s.do', AHEAD + 'p=$(ahead n)\nkill -9 "$p"\n: >killed\necho s\n')
    sb.write('n.do', 'echo n >>log\necho n\n')
    sb.write('all.do', 'redo-ifchange s n\ncat s n\n')
    r = sb.redo('-j1', 'all', timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert sb.exists('killed')
    assert sb.read('all') == 's\nn\n'
    assert sb.log('log') == ['n']


@needs_two_cpus
@pytest.mark.parametrize('end', ['failure', 'SIGTERM', 'SIGINT'])
def test_shells_started_ahead_run_nothing_and_are_gone_when_the_run_ends(sb, procs, end):
    # -j1 on 2 CPUs: f runs while n1's shell waits; then f fails, or redo
    # is interrupted.  n1 and n2 never run, and no shell is left for them.
    sb.write('f.do', AHEAD + 'ahead n1 >ahead.pid\n: >f.started\n'
                     'if [ "$END" = failure ]; then await fail.now; exit 1; fi\nsleep 30\n')
    sb.write('default.do', 'echo "$1" >>log\necho "$1"\n')
    sb.write('all.do', 'redo-ifchange f n1 n2\n')
    a = procs(sb, 'redo', '-j1', 'all', env={'END': end})
    wait_for(sb.path / 'f.started', a)
    waiting = int(sb.read('ahead.pid'))
    assert waiting in shells_for(str(sb.path / 'n1'))
    if end == 'failure':
        sb.write('fail.now', '')
    else:
        a.signal(getattr(signal, end))
    assert a.wait() != 0
    deadline = time.monotonic() + 5
    while shells_for(str(sb.path / 'n1')) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert shells_for(str(sb.path / 'n1')) == []
    assert shells_for(str(sb.path / 'n2')) == []
    assert not sb.exists('log'), sb.read('log')
    assert temporaries(sb) == []


def test_waiting_parent_holds_no_slot(sb):
    # -j2: p waits for c1..c4, so both slots go to its children.
    leaf_do(sb, want=2)
    sb.write('p.do', 'work p.0\nredo-ifchange c1 c2 c3 c4\nwork p.1\necho p\n')
    sb.write('all.do', 'redo-ifchange p\n')
    sb.redo('-j2', check=True)
    assert max_running(sb, lambda n: n.startswith('c')) == 2
    assert max_running(sb) == 2


def test_nested_calls_with_their_own_j_share_the_limit(sb):
    # A .do that asks for -j8 or runs `redo` is still part of this run.
    leaf_do(sb, want=2)
    sb.write('p.do', 'redo-ifchange -j8 a1 a2 a3 a4\nredo --jobs 8 b1 b2 b3\necho p\n')
    sb.write('q.do', 'REDO_JOBS=8 redo-ifchange c1 c2 c3 c4\necho q\n')
    sb.write('all.do', 'redo-ifchange p q d1 d2\n')
    sb.redo('-j2', check=True)
    assert max_running(sb) == 2
    assert len(started(sb)) == 13


def test_parallel_commands_from_one_do(sb):
    # One .do may run several redo-ifchange at once (`&`); they are served
    # together and share the limit.
    leaf_do(sb, want=3)
    sb.write('all.do', 'redo-ifchange a1 a2 & redo-ifchange b1 b2 & redo-ifchange c1 c2 &\n'
                       'wait\nredo-ifchange a1 b1 c1 a2 b2 c2\ncat a1 b1 c1\n')
    sb.redo('-j3', check=True)
    assert max_running(sb) == 3
    assert sb.read('all') == 'a1\nb1\nc1\n'
    assert sorted(started(sb)) == ['a1', 'a2', 'b1', 'b2', 'c1', 'c2']


@pytest.mark.parametrize('call', ['redo-ifchange p$i.o &', '(redo-ifchange p$i.o; :) &'])
def test_many_calls_at_once_from_one_do_are_each_served(sb, call):
    # The calls share the .do's $$: each must still get a request name of
    # its own for as long as it waits (one reused a name taken by a call
    # still waiting, and a target was neither built nor recorded, or the
    # run hung).
    sb.write('default.o.do', 'sleep 0.05; echo $1\n')
    sb.write('all.do', 'for i in $(seq 16); do %s done\nwait\n' % call)
    for _ in range(3):
        for f in sb.path.glob('p*.o'):
            f.unlink()
        shutil.rmtree(sb.path / '.redo', ignore_errors=True)
        p = sb.redo('-j4', 'all', timeout=30)
        assert p.returncode == 0, p.stderr
        assert 'File exists' not in p.stderr and 'lost contact' not in p.stderr, p.stderr
        assert sorted(f.name for f in sb.path.glob('p*.o')) == sorted('p%d.o' % i for i in range(1, 17))
        deps = [ln for ln in sb.read('.redo/all.rec').splitlines() if ln.startswith('Dep:')]
        assert len(deps) == 17, deps         # all.do and the 16


NESTED_RUN = {
    # a .do that starts a redo of its own, not a client of this run
    # (REDO_RUN gone), but with the jobserver in MAKEFLAGS
    'top.do': 'redo-ifchange n a1 a2 a3\n',
    'n.do': 'env -u REDO_RUN -u REDO_PID redo-ifchange sub/x1 sub/x2 sub/x3 sub/x4\necho n\n',
}


def write_nested_run(sb, want):
    for name, text in NESTED_RUN.items():
        sb.write(name, text)
    leaf_do(sb, want=want)
    leaf_do(sb, 'sub/default.do', want=want)


def test_a_redo_started_apart_by_a_do_shares_the_slots(sb):
    write_nested_run(sb, want=2)
    sb.redo('-j2', 'top', check=True)
    assert max_running(sb) == 2
    assert sorted(started(sb)) == ['a1', 'a2', 'a3', 'x1', 'x2', 'x3', 'x4']
    assert temporaries(sb) == []


def test_a_redo_started_apart_by_a_do_shares_the_slots_under_redo_jobs(sb):
    write_nested_run(sb, want=3)
    sb.redo('top', env={'REDO_JOBS': '2'}, check=True)
    assert max_running(sb) <= 2


# --- independent runs on the same tree ----------------------------------------

def test_two_runs_build_a_shared_target_once(sb, procs):
    sb.write('x.do', 'echo x >>log\n: >x.started\nawait go\necho x\n')
    sb.write('y.do', 'echo y >>log\necho y\n')
    sb.write('z.do', 'redo-ifchange x y\ncat x y\n')
    a = procs(sb, 'redo-ifchange', '-j1', 'x', tag='a')
    wait_for(sb.path / 'x.started', a)
    b = procs(sb, 'redo-ifchange', '-j3', 'y', 'z', 'x', tag='b')
    wait_for(sb.path / 'y', b)
    time.sleep(0.2)
    # b has all it needs but x, which a is building: it must wait.
    assert b.p.poll() is None, b.stderr
    assert a.p.poll() is None, a.stderr
    (sb.path / 'go').touch()
    assert a.wait() == 0, a.stderr
    assert b.wait() == 0, b.stderr
    assert sb.log('log').count('x') == 1 and sb.log('log').count('y') == 1
    assert sb.read('z') == 'x\ny\n'
    assert temporaries(sb) == []


MANY_LEAVES = ['l%d' % i for i in range(12)]
MANY_MIDS = {'m%d' % i: MANY_LEAVES[3 * i:3 * i + 3] for i in range(4)}


def write_many(sb):
    sb.write('default.do', 'echo "$1" >>log\nsleep 0.02\necho "$1"\n')
    for m, deps in MANY_MIDS.items():
        sb.write(m + '.do', 'echo %s >>log\nredo-ifchange %s\ncat %s\n' % (m, ' '.join(deps), ' '.join(deps)))
    sb.write('all.do', 'echo all >>log\nredo-ifchange %s\ncat %s\n'
             % (' '.join(MANY_MIDS), ' '.join(MANY_MIDS)))


def test_many_runs_at_once_build_each_target_once(sb, procs):
    write_many(sb)
    runs = [['redo-ifchange', '-j1', 'all'],
            ['redo-ifchange', '-j3', 'm1', 'm2', 'l0'],
            ['redo-ifchange', '-j2', 'l11', 'm3', 'all', 'l5'],
            ['redo-ifchange', 'm0', 'm3', 'l7'],
            ['redo-ifchange', '-j4', 'l3', 'l2', 'l1', 'all'],
            ['redo-ifchange', '-j2', '../m2', '../l4', '../all']]     # from sub/
    (sb.path / 'sub').mkdir()
    ps = [procs(sb, *r, tag='r%d' % i, cwd=sb.path / 'sub' if r[-1] == '../all' else None)
          for i, r in enumerate(runs)]
    for p in ps:
        assert p.wait() == 0, p.stderr
    log = sb.log('log')
    assert sorted(log) == sorted(['all'] + list(MANY_MIDS) + MANY_LEAVES), log
    assert sb.read('all') == ''.join(l + '\n' for l in MANY_LEAVES)
    assert temporaries(sb) == []
    sb.ifchange('all', check=True)
    assert len(sb.log('log')) == len(log)


@pytest.mark.parametrize('what', ['session', 'coordinator'])
def test_a_killed_run_leaves_no_lock_behind(sb, procs, what):
    # kill -9 of the whole session, or of redo alone (its .do lives on):
    # the next run is not blocked by anything the dead one held.
    sb.write('x.do', 'echo x >>log\n: >x.started\n[ -e hang ] && sleep 60\necho x\n')
    sb.write('all.do', 'redo-ifchange x\ncat x\n')
    sb.write('hang', '')
    a = procs(sb, 'redo-ifchange', 'all', tag='a')
    wait_for(sb.path / 'x.started', a)
    if what == 'session':
        kill_session(a.pid)
    else:
        os.kill(a.pid, signal.SIGKILL)
    a.p.wait(10)
    os.unlink(sb.path / 'hang')
    b = procs(sb, 'redo-ifchange', 'all', tag='b')
    assert b.wait() == 0, b.stderr
    assert sb.read('all') == 'x\n'
    assert sb.log('log') == ['x', 'x']


# --- cycles -------------------------------------------------------------------

@pytest.mark.parametrize('cycle', [['a'], ['a', 'b'], ['a', 'sub/b', 'c']], ids='-'.join)
def test_cycle_in_one_run_is_named(sb, cycle):
    for i, t in enumerate(cycle):
        nxt = cycle[(i + 1) % len(cycle)]
        sb.write(t + '.do', 'redo-ifchange %s\necho %s\n'
                 % (os.path.relpath(nxt, os.path.dirname(t) or '.'), t))
    sb.write('all.do', 'redo-ifchange %s\n' % cycle[0])
    r = sb.redo('all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert cycle_named(r.stderr, cycle), r.stderr
    assert 'Traceback' not in r.stderr
    assert temporaries(sb) == []


def test_cycle_through_a_target_asked_for_twice(sb):
    # all -> a, all -> b; a -> b -> a: both paths meet the same cycle.
    sb.write('a.do', 'redo-ifchange b\necho a\n')
    sb.write('b.do', 'redo-ifchange c a\necho b\n')
    sb.write('c.do', 'echo c\n')
    sb.write('all.do', 'redo-ifchange a b c\n')
    r = sb.redo('-j4', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert cycle_named(r.stderr, ['a', 'b']), r.stderr


def test_cycle_across_parallel_jobs_is_named(sb):
    # a and b run at once; each then waits for the other.
    sb.write('a.do', ': >a.started\nawait b.started\nredo-ifchange b\necho a\n')
    sb.write('b.do', ': >b.started\nawait a.started\nredo-ifchange a\necho b\n')
    sb.write('all.do', 'redo-ifchange a b\n')
    r = sb.redo('-j2', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert cycle_named(r.stderr, ['a', 'b']), r.stderr
    assert temporaries(sb) == []


@pytest.mark.parametrize('names', [['a', 'b'], ['a', 'b', 'c']], ids='-'.join)
def test_cycle_across_independent_runs_is_named(sb, procs, names):
    # One run per target, started by hand at the same time; once all have
    # started, each needs the next (a -> b -> a, or a -> b -> c -> a).
    # None may wait forever; the cycle is named.
    started = ' '.join(n + '.started' for n in names)
    for i, t in enumerate(names):
        sb.write(t + '.do', ': >%s.started\nawait %s\nredo-ifchange %s\necho %s\n'
                 % (t, started, names[(i + 1) % len(names)], t))
    ps = [procs(sb, 'redo-ifchange', t, tag=t) for t in names]
    codes = [p.wait() for p in ps]
    assert any(codes), codes
    stderr = ''.join(p.stderr for p in ps)
    assert cycle_named(stderr, names), stderr
    assert 'Traceback' not in stderr
    assert temporaries(sb) == []


@pytest.mark.slow
def test_cycle_through_a_nested_redo_is_named(sb, procs):
    sb.write('a.do', 'env -u REDO_RUN -u REDO_PID redo-ifchange b\necho a\n')
    sb.write('b.do', 'redo-ifchange a\necho b\n')
    p = procs(sb, 'redo-ifchange', 'a')
    rc = p.wait(timeout=8)
    assert rc != 0
    assert cycle_named(p.stderr, ['a', 'b']), p.stderr


def test_cycle_through_a_nested_redo_further_up_is_named(sb, procs):
    # The redo that b.do starts apart wants a, whose lock waits for b.
    sb.write('a.do', 'redo-ifchange b\necho a\n')
    sb.write('b.do', 'env -u REDO_RUN -u REDO_PID redo-ifchange a\necho b\n')
    p = procs(sb, 'redo-ifchange', 'a')
    rc = p.wait(timeout=8)
    assert rc != 0
    assert cycle_named(p.stderr, ['a', 'b']), p.stderr
    assert not sb.exists('a') and not sb.exists('b')


def test_a_stale_redo_target_is_no_cycle(sb, procs):
    # REDO_TARGET=x left in the environment of something a .do once
    # started (a daemon): its redo must wait for the run that holds `all`
    # (waiting for x), not report a cycle.
    sb.write('all.do', 'redo-ifchange asrc x\necho all\n')
    sb.write('x.do', 'redo-ifchange src\nsleep 1\ncat src\n')
    sb.write('src', '1\n')
    sb.write('asrc', '1\n')
    sb.redo('all', check=True)
    sb.write('src', '2\n')
    sb.write('asrc', '2\n')
    other = procs(sb, 'redo-ifchange', 'all')
    lock = sb.path / '.redo' / 'all.lock'
    end = time.monotonic() + TIMEOUT
    while not (lock.exists() and lock.read_bytes().endswith(b'/x')):
        assert time.monotonic() < end, 'all never waited for x'
        time.sleep(0.01)
    p = sb.ifchange('all', env={'REDO_TARGET': str(sb.path / 'x')})
    assert 'cycle' not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr
    assert other.wait(timeout=TIMEOUT) == 0
    assert sb.read('x') == '2\n'


@pytest.mark.slow
def test_more_than_a_thousand_calls_waiting_at_once_from_one_do(sb):
    # Each keeps its request name until done: the names must not run out.
    sb.write('default.o.do', 'echo $1\n')
    sb.write('all.do', 'i=0; while [ $i -lt 1100 ]; do i=$((i+1)); redo-ifchange p$i.o & done\n'
                       'wait\n')
    p = sb.redo('-j2', 'all', timeout=300)
    assert p.returncode == 0 and 'cannot reach' not in p.stderr, p.stderr[-2000:]
    assert len(list(sb.path.glob('p*.o'))) == 1100


# --- failures in parallel -----------------------------------------------------

def test_first_failure_stops_new_work_and_running_jobs_finish(sb):
    # -j2: s and f run at once; f fails while s runs.  s finishes and is
    # built; no n starts once f has failed (whatever order redo chose: an
    # n that starts then finds f.failed); the run exits non-zero naming f.
    sb.write('s.do', 'echo s >>log\n: >s.started\nawait f.failed\nsleep 0.3\necho s >>log\necho s\n')
    sb.write('f.do', 'echo f >>log\nawait s.started\n: >f.failed\nexit 3\n')
    sb.write('default.do', 'if [ -e f.failed ]; then echo "$1-after" >>log; else echo "$1" >>log; fi\n'
                           'echo "$1"\n')
    sb.write('all.do', 'redo-ifchange s f n1 n2 n3 n4\n')
    r = sb.redo('-j2', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert [l for l in r.stderr.splitlines() if 'f.do' in l and 'failed' in l], r.stderr
    log = sb.log('log')
    assert [x for x in log if x.endswith('-after')] == [], log
    assert log.count('s') == 2 and log.count('f') == 1, log
    assert sb.read('s') == 's\n'
    assert not sb.exists('f') and not sb.exists('all')
    assert temporaries(sb) == []


@pytest.mark.parametrize('fault', ['echo x >"$1"\n', 'echo x >"$3"\necho y\n'],
                         ids=['writes $1', 'writes $3 and stdout'])
def test_a_do_that_exits_0_but_fails_stops_new_work_too(sb, fault):
    # -j2: f exits 0 but broke a rule, which is found when its target is
    # put in place; its slot must not start n1 meanwhile.  s runs until f
    # has been judged, so that only f's slot could start anything.
    sb.write('s.do', ': >s.started\nawait f.ended\nsleep 0.3\necho s\n')
    sb.write('f.do', 'await s.started\n' + fault + ': >f.ended\n')
    sb.write('default.do', 'echo "$1" >>log\necho "$1"\n')
    sb.write('all.do', 'redo-ifchange s f n1 n2\n')
    r = sb.redo('-j2', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert [l for l in r.stderr.splitlines() if 'f.do' in l and 'wrote to' in l], r.stderr
    assert not sb.exists('log'), sb.read('log')
    assert sb.read('s') == 's\n'


@pytest.mark.parametrize('how', [['-k'], ['--keep-going'], {'REDO_KEEP_GOING': '1'}], ids=str)
def test_keep_going_in_parallel(sb, how):
    args = how if isinstance(how, list) else []
    env = how if isinstance(how, dict) else None
    sb.write('bad1.do', 'echo bad1 >>log\nexit 1\n')
    sb.write('bad2.do', 'echo bad2 >>log\nredo-ifchange g1\nexit 2\n')
    sb.write('dep1.do', 'echo dep1 >>log\nredo-ifchange g2 bad1\necho dep1\n')
    sb.write('dep2.do', 'echo dep2 >>log\nredo-ifchange dep1\necho dep2\n')
    sb.write('default.do', 'echo "$1" >>log\nsleep 0.05\necho "$1"\n')
    sb.write('mid.do', 'echo mid >>log\nredo-ifchange g3 g4\ncat g3 g4\n')
    sb.write('all.do', 'redo-ifchange bad1 dep2 g5 bad2 mid g6\n')
    r = sb.redo('-j3', *args, 'all', env=env, timeout=TIMEOUT)
    assert r.returncode != 0
    for bad in ('bad1', 'bad2'):
        assert [l for l in r.stderr.splitlines() if bad + '.do' in l], r.stderr
    for t in ('g1', 'g2', 'g3', 'g4', 'g5', 'g6'):
        assert sb.read(t) == t + '\n'
    assert sb.read('mid') == 'g3\ng4\n'
    for t in ('bad1', 'bad2', 'dep1', 'dep2', 'all'):
        assert not sb.exists(t)
    log = sb.log('log')
    assert sorted(log) == sorted(set(log)), log      # nothing twice
    assert temporaries(sb) == []


def test_many_failures_at_once(sb):
    # Eight .do files fail at the same moment (-j4): every failure that ran
    # is named, nothing hangs, and with -k the good targets are built.
    sb.write('default.do', 'work "$1" 4\ncase $1 in bad*) exit 1;; esac\necho "$1"\n')
    bad = ['bad%d' % i for i in range(8)]
    good = ['good%d' % i for i in range(4)]
    sb.write('all.do', 'redo-ifchange %s\n' % ' '.join(bad + good))
    r = sb.redo('-j4', '-k', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert max_running(sb) == 4
    for t in bad:
        assert [l for l in r.stderr.splitlines() if t in l and 'failed' in l], r.stderr
        assert not sb.exists(t)
    for t in good:
        assert sb.read(t) == t + '\n'
    assert temporaries(sb) == []


def test_failures_at_once_without_keep_going(sb):
    # -j4 and six targets that fail: the four that run fail at once, each
    # is named, and the other two never start.
    sb.write('default.do', 'work "$1" 4\nexit 1\n')
    bad = ['bad%d' % i for i in range(6)]
    sb.write('all.do', 'redo-ifchange %s\n' % ' '.join(bad))
    r = sb.redo('-j4', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    ran = started(sb)
    assert len(ran) == 4, ran
    for t in ran:
        assert [l for l in r.stderr.splitlines() if t in l and 'failed' in l], r.stderr
    assert temporaries(sb) == []


def test_a_hanging_target_does_not_hold_up_the_others(sb, procs):
    # -j2: h hangs; the six others are all built through the other slot
    # meanwhile; once h is released the run ends well.
    sb.write('h.do', ': >h.started\nawait release\necho h\n')
    leaf_do(sb)
    others = ['o%d' % i for i in range(6)]
    sb.write('all.do', 'redo-ifchange h %s\n' % ' '.join(others))
    p = procs(sb, 'redo', '-j2', 'all')
    wait_for(sb.path / 'h.started', p)
    for o in others:
        wait_for(sb.path / o, p)
    assert p.p.poll() is None
    assert max_running(sb) == 1
    (sb.path / 'release').touch()
    assert p.wait() == 0, p.stderr
    assert sb.read('h') == 'h\n'
    assert temporaries(sb) == []


# --- big shapes ---------------------------------------------------------------

@pytest.mark.slow
def test_huge_argument_list(sb):
    # 20000 dependencies in one redo-ifchange: 19600 sources in src/ and 400
    # targets in gen/, mixed; then the same list again through xargs.
    names = []
    (sb.path / 'src').mkdir()
    for i in range(20000):
        if i % 50 == 7:
            names.append('gen/t%05d' % i)
        else:
            names.append('src/s%05d' % i)
            (sb.path / names[-1]).write_text('%d\n' % i)
    targets = [n for n in names if n.startswith('gen/')]
    sb.write('gen/default.do', 'echo "$1"\n')
    sb.write('list', ''.join(n + '\n' for n in names))
    sb.write('all.do', 'redo-ifchange %s\necho ok\n' % ' '.join(names))
    sb.write('viaxargs.do', 'xargs redo-ifchange <list\nredo-ifchange list\necho ok\n')
    sb.redo('-j4', 'all', 'viaxargs', check=True, timeout=300)
    for t in targets:
        assert sb.read(t) == os.path.basename(t) + '\n'
    r = sb.run('redo-sources', check=True)
    assert len([l for l in r.stdout.splitlines() if l.startswith('src/')]) == 19600
    r = sb.run('redo-ood', check=True)
    assert r.stdout == ''
    # one changed source, deep in the list: both are out of date again
    sb.write('src/s15001', 'changed\n')
    r = sb.run('redo-ood', check=True)
    assert sorted(r.stdout.split()) == ['all', 'viaxargs']
    r = sb.ifchange('all', 'viaxargs', check=True)
    assert 'gen/' not in r.stderr
    assert temporaries(sb) == []


@pytest.mark.slow
def test_very_deep_chain(sb):
    # t0 -> t1 -> ... -> t2999 -> src, 3000 levels.  Built from the bottom in
    # six runs of 500 levels, then checked whole in one run (3000 tasks
    # waiting on each other: no recursion limit), then a change at the
    # bottom rebuilds up to t2989, whose content does not change (early
    # cut-off), in one run that again goes through all 3000 levels.
    depth = 3000
    sb.write('default.do', 'n=${1#t}\n'
                           'echo $n >>runs\n'
                           'if [ $n -eq %d ]; then redo-ifchange src; echo "$n $(cat src)"; exit; fi\n'
                           'redo-ifchange t$((n+1))\n'
                           'read m x <t$((n+1))\n'
                           'if [ $n -eq 2989 ]; then x=cut; fi\n'
                           'echo "$n $x"\n' % (depth - 1))
    sb.write('src', 'one\n')
    for start in range(depth - 500, -1, -500):
        sb.ifchange('t%d' % start, check=True, timeout=300)
    assert sorted(map(int, sb.log('runs'))) == list(range(depth))
    assert sb.read('t0') == '0 cut\n'
    assert sb.read('t2990') == '2990 one\n'
    os.unlink(sb.path / 'runs')
    r = sb.ifchange('t0', check=True, timeout=300)
    assert r.stderr == '' and sb.log('runs') == []
    sb.write('src', 'two\n')
    r = sb.ifchange('t0', check=True, timeout=300)
    assert sorted(map(int, sb.log('runs'))) == list(range(2989, depth))
    assert len(r.stderr.splitlines()) == depth - 2989, r.stderr
    assert sb.read('t2990') == '2990 two\n' and sb.read('t0') == '0 cut\n'
    r = sb.redo('t2985', check=True, timeout=300)
    assert sb.read('t2985') == '2985 cut\n'
    assert temporaries(sb) == []


@pytest.mark.slow
def test_very_wide_tree(sb):
    # all -> 20 directories -> 40 targets each (800 leaves), -j6.
    sb.write('default.do', 'echo "$1" >>"$PLOG.leaves"\necho "$1"\n')
    dirs = ['d%02d' % i for i in range(20)]
    xs = ' '.join('x%d' % i for i in range(40))
    for d in dirs:
        sb.write(d + '/all.do', 'redo-ifchange %s\ncat %s >$3\n' % (xs, xs))
    tops = ' '.join(d + '/all' for d in dirs)
    sb.write('all.do', 'redo-ifchange %s\ncat %s\n' % (tops, tops))
    sb.redo('-j6', 'all', check=True, timeout=300)
    leaves = (sb.path.parent / 'plog.leaves').read_text().split()
    expected = ['%s/x%d' % (d, i) for d in dirs for i in range(40)]
    assert sorted(leaves) == sorted(expected)
    assert sb.read('all') == ''.join(x + '\n' for x in expected)
    r = sb.ifchange('all', check=True)
    assert r.stderr == ''
    assert temporaries(sb) == []


def test_target_another_run_built_while_a_do_waited_is_no_change(sb, procs):
    # A's m.do waits; meanwhile another run builds l, a target A has not
    # seen a state for (A listed .redo before).  When m.do then asks for l,
    # A must take l for the target it is, not for a source that changed
    # while m.do ran: the next check finds m up to date.
    sb.write('l.do', 'echo l >>log\necho built\n')
    sb.write('m.do', 'echo m >>log\n: >m.waiting\n'
             'while [ ! -e go ]; do sleep 0.01; done\nredo-ifchange l\ncat l\n')
    a = procs(sb, 'redo-ifchange', 'm', tag='a')
    wait_for(sb.path / 'm.waiting', a)
    time.sleep(0.05)                  # l's file and state come after m's start
    sb.ifchange('l', check=True)
    sb.write('go', '')
    assert a.wait() == 0, a.stderr
    assert sb.read('m') == 'built\n'
    sb.ifchange('m', check=True)
    assert sb.log('log') == ['m', 'l']


def test_a_call_waiting_on_a_target_that_a_redo_builds_again_succeeds(sb):
    """t8's redo-ifchange waits for t2 and slow; t2 is built, then r's
    `redo t2` builds it again while slow still runs: t8's call succeeds
    (t2 was built for it), rather than failing without a word because
    t2 was being built again when slow ended."""
    sb.write('slow.do', 'sleep 0.6; echo slow\n')
    sb.write('t2.do', '[ -e t2.once ] && sleep 1.2\ntouch t2.once\necho t2\n')
    sb.write('t8.do', 'redo-ifchange t2 slow; echo t8\n')
    sb.write('r.do', 'sleep 0.3; redo t2; echo r\n')
    sb.write('all.do', 'redo-ifchange t8 r\n')
    p = sb.redo('-j4', 'all')
    assert p.returncode == 0, p.stderr
    assert sb.read('t8') == 't8\n' and sb.read('t2') == 't2\n'


def test_spec5_call_whose_run_died_before_its_answer_fifo_opened_never_hangs(sb, procs):
    # redo is killed (kill -9: nothing cleaned up) while its .do goes on;
    # the .do's next call finds the run's files and a live REDO_PID (here
    # its own pid: the window between the check and the open, held open).
    # Opening the answer's fifo must not wait for a writer that is gone.
    # (A fifo of its own, the next try, cannot be made here: that open
    # waits for the run, which may be gone; it is the rarer case.)
    sb.write('x.do', 'echo x\n')
    sb.write('bin/mkfifo', 'exit 1\n', mode=0o755)
    sb.write('all.do', ': >started\nwhile [ ! -e go ]; do sleep 0.01; done\nPATH=$PWD/bin:$PATH\n'
             'if REDO_PID=$$ redo-ifchange x 2>err; then echo ok; else echo "status $?"; fi >result.tmp\n'
             'mv result.tmp result\n')
    a = procs(sb, 'redo-ifchange', 'all', tag='a')
    wait_for(sb.path / 'started', a)
    os.kill(a.pid, signal.SIGKILL)
    a.p.wait(10)
    sb.write('go', '')
    wait_for(sb.path / 'result')
    assert sb.read('result') == 'status 2\n'
    assert 'redo-ifchange: ' in sb.read('err')
