"""What test_parallel.py, test_jobserver.py and test_interrupt.py share: the
tools their .do files run (`work`, `await`), a sandbox with the project in
proj/ and TMPDIR in tmp/, the replay of the `work` log, the check for
leftover temporaries, and the handling of redo runs started in sessions of
their own.

The fixtures `sb` and `procs` are used by importing them into a test module
(`from concurrency import procs, sb`); that `sb` builds on the `sb` of
conftest.py.
"""

import os
import signal
import subprocess
import time

import pytest

TIMEOUT = 60          # a hang guard only, never a speed check

WORK = r'''#!/bin/sh
# work NAME [WANT]: one stretch of work of a .do, logged as "S NAME" and
# "E NAME" lines in $PLOG.  With WANT, it lingers (a few seconds at most)
# until some stretch has seen WANT of them running at once.
f=$PRUN/$(printf '%s' "$1" | tr / _)
echo "S $1" >>"$PLOG"
: >"$f"
if [ -n "${2-}" ]; then
  i=0
  while [ ! -e "$PRUN/.reached" ] && [ $i -lt 300 ]; do
    if [ "$(ls "$PRUN" | wc -l)" -ge "$2" ]; then : >"$PRUN/.reached"; break; fi
    sleep 0.01
    i=$((i+1))
  done
fi
sleep "${PSLEEP:-0.02}"
rm -f "$f"
echo "E $1" >>"$PLOG"
'''

AWAIT = r'''#!/bin/sh
# await FILE...: waits (about 30 s at most) until every FILE exists.
i=0
for f; do
  while [ ! -e "$f" ]; do
    i=$((i+1))
    [ $i -lt 3000 ] || { echo "await: gave up waiting for $f" >&2; exit 1; }
    sleep 0.01
  done
done
'''


@pytest.fixture
def sb(sb, tmp_path):
    """The Sandbox, with the project in proj/, TMPDIR in tmp/ (so that a
    leftover run directory is seen exactly) and the tools above on PATH;
    `work` logs to sb.plog."""
    sb.path = tmp_path / 'proj'
    sb.path.mkdir()
    sb.tmpdir = tmp_path / 'tmp'
    sb.tmpdir.mkdir()
    sb.env['TMPDIR'] = str(sb.tmpdir)
    tools = tmp_path / 'tools'
    tools.mkdir()
    for name, text in (('work', WORK), ('await', AWAIT)):
        (tools / name).write_text(text)
        os.chmod(tools / name, 0o755)
    sb.env['PATH'] = '%s:%s' % (tools, sb.env['PATH'])
    sb.env['PLOG'] = str(tmp_path / 'plog')
    sb.env['PRUN'] = str(tmp_path / 'prun')
    (tmp_path / 'prun').mkdir()
    sb.plog = tmp_path / 'plog'
    return sb


# --- the work log ------------------------------------------------------------

def stretches(sb):
    """The S/E lines of $PLOG as (kind, name) pairs, in order."""
    if not sb.plog.exists():
        return []
    return [tuple(l.split(' ', 1)) for l in sb.plog.read_text().splitlines()]


def max_running(sb, only=None):
    """The most stretches (whose names satisfy `only`) running at once."""
    running = set()
    peak = 0
    for kind, name in stretches(sb):
        if only is not None and not only(name):
            continue
        if kind == 'S':
            assert name not in running, 'stretch %s started twice' % name
            running.add(name)
            peak = max(peak, len(running))
        else:
            running.remove(name)
    assert not running, 'stretches that never ended: %s' % running
    return peak


def started(sb):
    """The names of the stretches that started, sorted."""
    return sorted(name for kind, name in stretches(sb) if kind == 'S')


def leaf_do(sb, name='default.do', want=None):
    """A .do building any target as one stretch of work; its content is
    its own name."""
    sb.write(name, 'work "$1"%s\necho "$1"\n' % ((' %d' % want) if want else ''))


def temporaries(sb):
    """What redo's temporaries left: run directories in TMPDIR, files in
    .redo/tmp and .redo/out anywhere in the project, $3 beside a target
    (.redo3.NAME), and half-written state files (.redo/*.tmp)."""
    left = ['TMPDIR/' + n for n in os.listdir(sb.tmpdir) if n.startswith('redo')]
    for d, dirs, files in os.walk(sb.path):
        left += [os.path.join(d, n) for n in dirs + files if n.startswith(('.redo3.', '.redo-old.'))]
        base, parent = os.path.basename(d), os.path.basename(os.path.dirname(d))
        if base in ('tmp', 'out') and parent == '.redo':
            left += [os.path.join(d, n) for n in dirs + files]
        if base == '.redo':
            left += [os.path.join(d, n) for n in files if n.endswith('.tmp')]
    return left


# --- processes ---------------------------------------------------------------

def alive(pid):
    """True if pid is a process that has not ended (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def wait_gone(pids, timeout=3):
    """The pids still alive after up to timeout seconds (a hang guard:
    redo has exited already; its SIGKILLs may take a moment to land)."""
    end = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.02)


def session_pids(sid):
    """The live processes of session sid."""
    pids = []
    for n in os.listdir('/proc'):
        if not n.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % n) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != 'Z' and int(fields[3]) == sid:
            pids.append(int(n))
    return pids


def kill_strays(pids):
    """SIGKILL to each of pids (those already gone are passed over)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def kill_session(sid):
    """SIGKILL to every process of session sid, until none is left (a
    second at most)."""
    for _ in range(50):
        pids = session_pids(sid)
        if not pids:
            return
        kill_strays(pids)
        time.sleep(0.02)


class Proc:
    """A redo command started in its own session, stdout and stderr kept
    in files beside the project."""

    def __init__(self, sb, *args, env=None, tag=None, cwd=None):
        e = dict(sb.env)
        e.update(env or {})
        tag = tag or 'p%d' % id(self)
        self.out = sb.path.parent / (tag + '.out')
        self.err = sb.path.parent / (tag + '.err')
        with open(self.out, 'w') as o, open(self.err, 'w') as r:
            self.p = subprocess.Popen(list(args), cwd=str(cwd or sb.path), env=e, stdin=subprocess.DEVNULL,
                                      stdout=o, stderr=r, start_new_session=True)
        self.pid = self.p.pid

    def wait(self, timeout=TIMEOUT):
        """The exit status; a hang is a failure (and everything is killed)."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('did not exit within %s s: %s\n%s' % (timeout, self.p.args, self.stderr))

    def kill(self):
        kill_session(self.pid)
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def signal(self, sig):
        """Ctrl-C goes to the whole process group, as a terminal sends it;
        SIGTERM and SIGHUP to redo alone, as kill(1) and a closed session
        do."""
        if sig == signal.SIGINT:
            os.killpg(self.pid, sig)
        else:
            os.kill(self.pid, sig)

    @property
    def stderr(self):
        return self.err.read_text()


@pytest.fixture
def procs():
    """Starts Procs; whatever is left of them is killed at the end."""
    started = []

    def start(*a, **kw):
        p = Proc(*a, **kw)
        started.append(p)
        return p
    yield start
    for p in started:
        kill_session(p.pid)
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait(5)


def wait_for(path, proc=None, timeout=TIMEOUT):
    """Polls until path exists (fails early if proc has exited)."""
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc is not None and proc.p.poll() is not None:
            raise AssertionError('%s exited (%d) before %s appeared\n%s'
                                 % (proc.p.args, proc.p.returncode, path, proc.stderr))
        assert time.monotonic() < end, 'timed out waiting for %s' % path
        time.sleep(0.01)


def read_pids(sb, names, proc, timeout=TIMEOUT):
    """Waits until each file in names holds a pid (written by a running
    .do); returns the pids."""
    end = time.monotonic() + timeout
    pids = []
    for name in names:
        while True:
            try:
                text = (sb.path / name).read_text()
            except FileNotFoundError:
                text = ''
            if text.endswith('\n') and text.strip().isdigit():
                pids.append(int(text))
                break
            if proc.p.poll() is not None:
                raise AssertionError('redo exited (%d) before %s was written\n%s'
                                     % (proc.p.returncode, name, proc.stderr))
            assert time.monotonic() < end, 'timed out waiting for ' + name
            time.sleep(0.01)
    return pids
