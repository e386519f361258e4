"""SPEC §6: what the user sees — per-target lines, failures and their chain,
colour and the progress line on a terminal, the .do's stderr (live, and
kept for redo-log), -d, and never a traceback for what a user can cause."""

import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

from helpers import no_traceback_anywhere

SGR = re.compile(r'\x1b\[[0-9;]*m')          # colour / bold
ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')  # any CSI sequence


def target_lines(stderr):
    """[(indent, name)] of the `redo  name` lines."""
    out = []
    for ln in stderr.split('\n'):
        m = re.match(r'^redo( +)(\S.*)$', ln)
        if m:
            out.append((len(m.group(1)), m.group(2)))
    return out


def run_pty(sb, args, env=None, timeout=30):
    """Runs a command with stderr on a pseudo-terminal; returns
    (exit status, what it wrote to the terminal, as text with \\r\\n -> \\n)."""
    master, slave = pty.openpty()
    e = dict(sb.env)
    e.update(env or {})
    p = subprocess.Popen(list(args), cwd=str(sb.path), env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if not r:
                if p.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:          # EIO: every writer has closed the pty
                break
            if not data:
                break
            chunks.append(data)
        else:
            p.kill()
            raise AssertionError('timed out')
    finally:
        os.close(master)
    status = p.wait(timeout=timeout)
    return status, b''.join(chunks).decode('utf-8', 'replace').replace('\r\n', '\n')


def render(raw):
    """What a terminal shows at the end: handles \\r, \\n and ESC[K; other
    escape sequences are dropped."""
    raw = SGR.sub('', raw)
    screen, line, col = [], [], 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if raw.startswith('\x1b[K', i):
            del line[col:]
            i += 3
            continue
        m = ANSI.match(raw, i)
        if m:
            i = m.end()
            continue
        if ch == '\n':
            screen.append(''.join(line))
            line, col = [], 0
        elif ch == '\r':
            col = 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    return screen, ''.join(line)


def tree(sb):
    """top -> mid -> leaf; each .do appends its name to runs."""
    sb.write('top.do', 'echo top >>runs\nredo-ifchange mid\necho top\n')
    sb.write('mid.do', 'echo mid >>runs\nredo-ifchange leaf\necho mid\n')
    sb.write('leaf.do', 'echo leaf >>runs\necho leaf\n')


# ---------------------------------------------------------------------------
# One line per target, indented by depth
# ---------------------------------------------------------------------------

def test_target_line_per_target_on_stderr(sb):
    tree(sb)
    p = sb.redo('top', check=True)
    assert sorted(name for _, name in target_lines(p.stderr)) == ['leaf', 'mid', 'top']
    assert 'redo  top' in p.stderr.split('\n')
    assert p.stdout == ''


def test_target_lines_indented_by_depth(sb):
    tree(sb)
    p = sb.redo('top', check=True)
    indent = dict((name, n) for n, name in target_lines(p.stderr))
    assert indent['top'] < indent['mid'] < indent['leaf']


def test_target_line_only_when_target_is_built(sb):
    tree(sb)
    sb.redo('top', check=True)
    p = sb.ifchange('top', check=True)
    assert target_lines(p.stderr) == []


def test_target_line_path_relative_to_current_directory(sb):
    sb.write('sub/x.o.do', 'echo x\n')
    p = sb.redo('sub/x.o', check=True)
    assert target_lines(p.stderr) == [(2, 'sub/x.o')]
    sb.write('other/keep', '')
    p = sb.redo('../sub/x.o', cwd=sb.path / 'other', check=True)
    assert target_lines(p.stderr) == [(2, '../sub/x.o')]


def test_target_line_starts_before_do_output(sb):
    sb.write('x.do', 'echo FROM-X >&2\n')
    p = sb.redo('x', check=True)
    lines = p.stderr.split('\n')
    assert lines.index('redo  x') < lines.index('FROM-X')


# ---------------------------------------------------------------------------
# Failures: the target, the .do, its exit status and the chain
# ---------------------------------------------------------------------------

def test_failure_names_target_do_status_and_chain(sb):
    tree(sb)
    sb.write('leaf.do', 'exit 7\n')
    p = sb.redo('top', check=False)
    no_traceback_anywhere(p)
    msg = [ln for ln in p.stderr.split('\n') if 'leaf.do' in ln]
    assert msg, p.stderr
    ln = msg[0]
    assert re.search(r'\b7\b', ln), ln
    assert re.search(r'\bleaf\b', ln.replace('leaf.do', '')), ln
    assert 'top' in ln and 'mid' in ln, ln
    assert ln.index('top') < ln.index('mid'), ln


def test_failure_chain_names_intermediate_directories(sb):
    sb.write('all.do', 'redo-ifchange sub/x\n')
    sb.write('sub/x.do', 'redo-ifchange ../lib/y\n')
    sb.write('lib/y.do', 'exit 3\n')
    p = sb.redo('all', check=False)
    no_traceback_anywhere(p)
    ln = [x for x in p.stderr.split('\n') if 'y.do' in x][0]
    assert 'lib/y' in ln and 'sub/x' in ln and 'all' in ln, ln


def test_failure_of_missing_source_names_chain(sb):
    sb.write('.redo/top', '')
    tree(sb)
    sb.write('leaf.do', 'redo-ifchange nosuchfile\necho leaf\n')
    p = sb.redo('top', check=False)
    no_traceback_anywhere(p)
    ln = [x for x in p.stderr.split('\n') if 'nosuchfile' in x]
    assert ln, p.stderr
    assert 'leaf' in ln[0] and 'mid' in ln[0] and 'top' in ln[0], ln[0]
    assert not sb.exists('top')


def test_failure_stops_and_exits_nonzero(sb):
    tree(sb)
    sb.write('leaf.do', 'echo leaf >>runs\nexit 1\n')
    p = sb.redo('top', check=False)
    assert p.returncode == 1
    assert not sb.exists('mid') and not sb.exists('top')


# ---------------------------------------------------------------------------
# Colour: only on a terminal, never with NO_COLOR or TERM=dumb
# ---------------------------------------------------------------------------

def colour_tree(sb):
    sb.write('ok.do', 'echo ok\n')
    sb.write('bad.do', 'exit 2\n')
    sb.write('all.do', 'redo-ifchange ok bad\n')


def test_no_colour_when_stderr_is_not_a_terminal(sb):
    colour_tree(sb)
    env = {k: v for k, v in sb.env.items() if k != 'NO_COLOR'}
    env['TERM'] = 'xterm'
    p = subprocess.run(['redo', 'all'], cwd=str(sb.path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert '\x1b' not in p.stderr, repr(p.stderr)


def tty_env(sb, **extra):
    sb.env.pop('NO_COLOR', None)
    env = {'TERM': 'xterm'}
    env.update(extra)
    return env


def test_colour_on_terminal_is_allowed(sb):
    """The control for the two tests below: on a terminal, colour may show."""
    colour_tree(sb)
    status, raw = run_pty(sb, ['redo', '--no-progress', 'all'], tty_env(sb))
    assert status != 0
    assert 'redo  all' in SGR.sub('', raw)


@pytest.mark.parametrize('extra', [{'NO_COLOR': '1'}, {'NO_COLOR': '0'}, {'TERM': 'dumb'}],
                         ids=['NO_COLOR', 'NO_COLOR=0', 'TERM=dumb'])
def test_no_colour_with_no_color_or_dumb_terminal(sb, extra):
    colour_tree(sb)
    status, raw = run_pty(sb, ['redo', '--no-progress', 'all'], tty_env(sb))
    if not SGR.search(raw):
        pytest.skip('no colour on a terminal at all: nothing to turn off')
    sb.write('ok.do', 'echo ok2\n')
    status, raw = run_pty(sb, ['redo', '--no-progress', 'all'], tty_env(sb, **extra))
    assert status != 0
    assert 'redo  all' in raw
    assert not SGR.search(raw), repr(raw)


# ---------------------------------------------------------------------------
# The progress line: on a terminal only, never mixed into the .do's output
# ---------------------------------------------------------------------------

SLOW_DO = ('printf "AAA" >&2\n'
           'sleep 0.7\n'
           'printf "BBB\\n" >&2\n'
           'echo PLAIN-LINE >&2\n'
           'echo out\n')


def status_segments(raw):
    """Pieces of terminal output that are neither a `redo  x` line nor a .do's
    own output: the progress line (the .do output here has no digits)."""
    segs = re.split(r'[\r\n]', ANSI.sub('', raw))
    return [s for s in segs if re.search(r'\d', s)]


def test_progress_line_on_a_terminal(sb):
    sb.write('slow.do', SLOW_DO)
    sb.write('all.do', 'redo-ifchange slow\n')
    status, raw = run_pty(sb, ['redo', 'all'], tty_env(sb, NO_COLOR='1'))
    assert status == 0, raw
    assert status_segments(raw), repr(raw)


@pytest.mark.parametrize('how', ['--no-progress', 'TERM=dumb', 'not-a-tty', 'REDO_LOGS=0'])
def test_no_progress_line_when_asked_or_not_a_terminal(sb, how):
    # With REDO_LOGS=0 the .do writes to the terminal itself: a progress
    # line would mix into it.
    sb.write('slow.do', SLOW_DO)
    if how == 'not-a-tty':
        p = sb.redo('slow', env={'TERM': 'xterm'}, check=True)
        raw = p.stderr
    else:
        args = ['redo', 'slow'] + (['--no-progress'] if how == '--no-progress' else [])
        env = tty_env(sb, NO_COLOR='1')
        if how == 'TERM=dumb':
            env['TERM'] = 'dumb'
        if how == 'REDO_LOGS=0':
            env['REDO_LOGS'] = '0'
        status, raw = run_pty(sb, args, env)
        assert status == 0, raw
    assert status_segments(raw) == [], repr(raw)
    assert '\r' not in raw


def test_progress_line_never_mixes_into_do_output(sb):
    sb.write('slow.do', SLOW_DO)
    sb.write('all.do', 'redo-ifchange slow\n')
    status, raw = run_pty(sb, ['redo', 'all'], tty_env(sb, NO_COLOR='1'))
    assert status == 0, raw
    screen, last = render(raw)
    assert 'AAABBB' in screen, screen
    assert 'PLAIN-LINE' in screen, screen
    assert 'redo  all' in screen and 'redo    slow' in screen, screen
    assert last == ''                  # the progress line is gone at the end


# ---------------------------------------------------------------------------
# The .do's stderr: live, and kept for redo-log
# ---------------------------------------------------------------------------

def test_do_stderr_passes_through(sb):
    sb.write('x.do', 'echo to-stderr >&2\necho to-stdout\n')
    p = sb.redo('x', check=True)
    assert 'to-stderr' in p.stderr.split('\n')
    assert 'to-stdout' not in p.stderr
    assert sb.read('x') == 'to-stdout\n'


def test_do_stderr_passes_through_live(sb):
    """The .do waits for a file that the test creates only after it has
    seen the .do's first stderr line: buffering until the end would fail."""
    sb.write('x.do', 'echo LIVE-MARK >&2\n'
                     'i=0\nwhile [ ! -e go ]; do\n'
                     '  i=$((i+1)); [ $i -lt 2000 ] || exit 9; sleep 0.01\ndone\n'
                     'echo done\n')
    e = dict(sb.env)
    p = subprocess.Popen(['redo', 'x'], cwd=str(sb.path), env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for ln in p.stderr:
            seen.append(ln)
            if 'LIVE-MARK' in ln:
                sb.write('go', '')
                break
        rest = p.stderr.read()
        assert p.wait(timeout=60) == 0, ''.join(seen) + rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert sb.read('x') == 'done\n'


def test_do_stderr_without_newlines_passes_through_too(sb):
    """Progress drawn with \\r and never a newline: once much of it has
    come, it is passed on (and kept whole in the log), not held until the
    line ends."""
    sb.write('x.do', 'head -c 200000 /dev/zero | tr "\\0" y >&2\n'
                     'i=0\nwhile [ ! -e go ]; do\n'
                     '  i=$((i+1)); [ $i -lt 2000 ] || exit 9; sleep 0.01\ndone\n'
                     'echo " end" >&2; echo done\n')
    p = subprocess.Popen(['redo', 'x'], cwd=str(sb.path), env=dict(sb.env),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        seen = b''
        while seen.count(b'y') < 100000:
            chunk = p.stderr.read1(65536)
            assert chunk, seen[-200:]
            seen += chunk
        sb.write('go', '')
        seen += p.stderr.read()
        assert p.wait(timeout=60) == 0, seen[-500:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert seen.count(b'y') == 200000 and b'y end\n' in seen
    assert (sb.path / '.redo' / 'x.log').read_bytes() == b'y' * 200000 + b' end\n'


def test_do_stderr_kept_for_redo_log(sb):
    sb.write('x.do', 'echo first-build >&2\necho x\n')
    sb.redo('x', check=True)
    p = sb.run('redo-log', 'x', check=True)
    assert 'first-build' in p.stdout
    sb.write('x.do', 'echo second-build >&2\necho x\n')
    sb.redo('x', check=True)
    p = sb.run('redo-log', 'x', check=True)
    assert 'second-build' in p.stdout
    assert 'first-build' not in p.stdout


def test_do_stderr_of_failed_build_kept_for_redo_log(sb):
    sb.write('x.do', 'echo why-it-failed >&2\nexit 5\n')
    sb.redo('x', check=False)
    p = sb.run('redo-log', 'x')
    no_traceback_anywhere(p)
    assert 'why-it-failed' in p.stdout


def test_do_stderr_partial_last_line_passes_through(sb):
    sb.write('x.do', 'printf "no-newline" >&2\n')
    p = sb.redo('x', check=True)
    assert 'no-newline' in p.stderr


# ---------------------------------------------------------------------------
# -d / --debug
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('flag', ['-d', '--debug'])
def test_debug_explains_why_out_of_date(sb, flag):
    sb.write('src', '1\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    p = sb.ifchange(flag, 'x', check=True)
    first = [ln for ln in p.stderr.split('\n') if 'x' in ln and not ln.startswith('redo  ')]
    assert first, p.stderr                       # never built
    sb.write('src', '2\n')
    p = sb.ifchange(flag, 'x', check=True)
    why = [ln for ln in p.stderr.split('\n') if re.search(r'\bsrc\b', ln)]
    assert why and re.search(r'\bx\b', why[0]), p.stderr


def test_debug_explains_up_to_date(sb):
    sb.write('src', '1\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.ifchange('x', check=True)
    quiet = sb.ifchange('x', check=True)
    assert quiet.stderr == ''
    p = sb.ifchange('-d', 'x', check=True)
    assert re.search(r'\bx\b', p.stderr), p.stderr


def test_debug_off_by_default(sb):
    sb.write('src', '1\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.ifchange('x', check=True)
    sb.write('src', '2\n')
    p = sb.ifchange('x', check=True)
    assert 'src' not in p.stderr


# ---------------------------------------------------------------------------
# No traceback, ever, for what a user can cause
# ---------------------------------------------------------------------------

def short_error(p):
    """Non-zero exit, no traceback, and a short error on stderr."""
    assert p.returncode != 0, p.stderr
    no_traceback_anywhere(p)
    msgs = [ln for ln in p.stderr.split('\n') if ln and not ln.startswith('redo  ')]
    assert 1 <= len(msgs) <= 3, p.stderr
    return msgs


def test_no_traceback_missing_do_and_missing_file(sb):
    sb.write('.redo/top', '')
    msgs = short_error(sb.ifchange('missing'))
    assert any('missing' in m for m in msgs)


def test_no_traceback_missing_source_of_a_do(sb):
    sb.write('.redo/top', '')
    sb.write('x.do', 'redo-ifchange missing.c\ncat missing.c\n')
    msgs = short_error(sb.ifchange('x'))
    assert any('missing.c' in m for m in msgs)


def test_no_traceback_garbled_state_file(sb):
    sb.write('x.do', 'echo x\n')
    sb.ifchange('x', check=True)
    (sb.path / '.redo' / 'x.rec').write_bytes(b'\xff\x00garbage: \n+ \n::\n')
    p = sb.redo('x')
    no_traceback_anywhere(p)
    for cmd in ('redo-ood', 'redo-targets', 'redo-sources', 'redo-dot'):
        no_traceback_anywhere(sb.run(cmd))


def test_no_traceback_state_directory_cannot_be_made(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('.redo', 'a file where the directory would go\n')
    msgs = short_error(sb.ifchange('x'))
    assert any('.redo' in m for m in msgs)


@pytest.mark.skipif(os.geteuid() == 0, reason='root can write anywhere')
def test_no_traceback_unwritable_directory(sb):
    sb.write('ro/x.do', 'echo x\n')
    os.chmod(sb.path / 'ro', 0o555)
    try:
        short_error(sb.ifchange('ro/x'))
    finally:
        os.chmod(sb.path / 'ro', 0o755)


def test_no_traceback_target_under_a_regular_file(sb):
    sb.write('default.do', 'echo x\n')
    sb.write('f', 'plain file\n')
    short_error(sb.ifchange('f/x'))


def test_no_traceback_name_too_long_for_the_os(sb):
    sb.write('default.do', 'echo x\n')
    short_error(sb.ifchange('n' * 300))


def test_no_traceback_long_name_near_the_limit(sb):
    sb.write('default.do', 'echo x\n')
    p = sb.ifchange('n' * 250)
    no_traceback_anywhere(p)


def test_no_traceback_current_directory_deleted(sb):
    (sb.path / 'd').mkdir()
    p = sb.run('sh', '-c', 'cd d && rmdir ../d && exec redo-ifchange x')
    short_error(p)


def test_no_traceback_temporary_directory_missing(sb):
    sb.write('x.do', 'echo x\n')
    short_error(sb.redo('x', env={'TMPDIR': str(sb.path / 'no' / 'such')}))


@pytest.mark.parametrize('args', [
    ['redo', '--bogus'], ['redo', '-j'], ['redo', '-j', 'abc'], ['redo', ''],
    ['redo-ifchange', ''], ['redo-whichdo'], ['redo-whichdo', 'a', 'b'],
    ['redo-log', 'never-built'], ['redo-ifcreate', 'f'], ['redo-always'],
    ['redo-stamp'], ['redo-log', '--trace'],
], ids=lambda a: ' '.join(a) or "''")
def test_no_traceback_bad_command_line(sb, args):
    short_error(sb.run(*args, input=''))


@pytest.mark.parametrize('var, value', [('REDO_JOBS', 'abc'), ('REDO_JOBS', '-3')])
def test_no_traceback_bad_environment(sb, var, value):
    sb.write('x.do', 'echo x\n')
    short_error(sb.redo('x', env={var: value}))


def test_no_traceback_do_is_a_directory(sb):
    (sb.path / 'x.do').mkdir()
    p = sb.ifchange('x')
    assert p.returncode != 0
    no_traceback_anywhere(p)


def test_no_traceback_when_stdout_is_closed_early(sb):
    for i in range(50):
        sb.write('t%02d.do' % i, 'echo\n')
    sb.redo(*['t%02d' % i for i in range(50)], check=True)
    p = sb.run('sh', '-c', 'redo-targets | head -c 1 >/dev/null; redo-dot | head -c 1 >/dev/null')
    no_traceback_anywhere(p)


# --- standard fds closed by the caller ----------------------------------------

def test_a_build_with_stderr_closed_runs_and_keeps_its_state_clean(sb):
    # With fd 2 closed, a file redo opens could take its number and get the
    # messages meant for the terminal: they must go nowhere instead.
    for i in range(20):
        sb.write('t%02d.do' % i, 'echo %d\n' % i)
    sb.write('all.do', 'redo-ifchange %s\n' % ' '.join('t%02d' % i for i in range(20)))
    p = sb.run('sh', '-c', 'redo all 2>&-')
    assert p.returncode == 0
    assert [sb.read('t%02d' % i) for i in range(20)] == ['%d\n' % i for i in range(20)]
    for f in (sb.path / '.redo').iterdir():
        if f.is_file():
            assert b'redo ' not in f.read_bytes().replace(b'redo.py', b''), f
    p = sb.run('sh', '-c', 'redo-ifchange all; redo-ood', check=True)
    assert p.stdout == '' and p.stderr == ''


SHELLS = {'dash': ['dash'], 'bash': ['bash'], 'ksh': ['ksh'], 'busybox': ['busybox', 'sh']}


@pytest.mark.parametrize('closed', ['2>&-', '>&- 2>&-'])
@pytest.mark.parametrize('shell', [
    # bash runs a script on the lowest free fd, here 2 (or 1), and leaves it
    # open (read-only) when it execs: redo must not take it for its stderr.
    'dash', 'bash', 'ksh', 'busybox'])
def test_a_build_with_stderr_closed_runs_whichever_shell_is_bin_sh(sb, shell, closed):
    # SPEC §1: /bin/sh may be dash, bash, ksh or busybox sh.  The shell runs
    # the commands (their #! is /bin/sh); here it is started by hand on them.
    argv = SHELLS[shell]
    if shutil.which(argv[0]) is None:
        pytest.skip('no %s here' % argv[0])
    sb.write('x.do', 'echo x\n')
    sb.write('all.do', 'redo-ifchange x\necho all\n')
    p = sb.run('sh', '-c', '"$@" ' + closed, 'sh', *argv, str(sb.bindir / 'redo'), 'all')
    assert p.returncode == 0
    assert sb.read('all') == 'all\n' and sb.read('x') == 'x\n'


def test_stdout_open_for_reading_only_is_refused_as_a_closed_one(sb):
    sb.write('x.do', 'echo x\n')
    sb.redo('x', check=True)
    sb.write('ro', '')
    for how in ('>&-', '1<ro'):
        p = sb.run('sh', '-c', 'redo-targets ' + how)
        assert p.returncode == 2, (how, p.stderr)
        assert 'standard output' in p.stderr


def test_a_stderr_that_fails_midway_leaves_the_build_to_finish(sb):
    # The reader of redo's stderr goes away: redo writes nothing more, and
    # does not stop half way, leaving its scripts running on their own.
    sb.write('all.do', 'redo-ifchange x1 x2 x3\n')
    sb.write('default.do', 'echo "start $1" >&2; sleep 0.3; echo "mid $1" >&2\n'
                           'echo "$1 one" >$3; sleep 0.3; echo "$1 two" >>$3\n')
    p = sb.run('sh', '-c', '{ redo -j2 all 2>&1; echo $? >status; } | head -c 1 >/dev/null')
    assert p.returncode == 0
    assert sb.read('status') == '0\n'
    for i in (1, 2, 3):
        assert sb.read('x%d' % i) == 'x%d one\nx%d two\n' % (i, i)
    assert sb.run('redo-ood', check=True).stdout == ''


def test_a_build_with_stdin_and_stdout_closed_runs(sb):
    sb.write('x.do', 'cat >"$3"; echo ok >&2\n')
    p = sb.run('sh', '-c', 'redo x <&- >&-')
    assert p.returncode == 0, p.stderr
    assert sb.read('x') == ''
    assert 'ok' in p.stderr


@pytest.mark.parametrize('cmd', ['redo-targets', 'redo-sources', 'redo-ood',
                                 'redo-whichdo x', 'redo-dot', 'redo-log x',
                                 'redo-log --trace - x', 'redo-affects s',
                                 'redo --version', 'redo-ood --help'])
def test_output_to_a_closed_stdout_is_an_error(sb, cmd):
    sb.write('s', 's\n')
    sb.write('x.do', 'redo-ifchange s; echo x\n')
    sb.redo('x', check=True)
    p = sb.run('sh', '-c', cmd + ' >&-')
    assert p.returncode == 2
    assert short_error(p) == ['%s: standard output is closed' % cmd.split()[0]]


def test_redo_stamp_with_stdin_closed_is_an_error(sb):
    p = sb.run('sh', '-c', 'redo-stamp <&-')
    assert p.returncode == 2
    assert short_error(p) == ['redo-stamp: standard input is closed']


# ---------------------------------------------------------------------------
# §6 parallel output: every line can be told apart by target
# ---------------------------------------------------------------------------

TWO_TALKERS = ('a', 'b')


def two_talkers(sb):
    # a and b write lines in turn, each waiting for the other's line.
    sb.write('default.do', 'for i in 1 2 3; do\n'
                           '  echo "$1 line $i" >&2\n'
                           '  touch "$1.$i"\n'
                           '  other=a; [ "$1" = a ] && other=b\n'
                           '  n=0; while [ ! -e "$other.$i" ] && [ $n -lt 200 ]; do sleep 0.01; n=$((n+1)); done\n'
                           'done\n')
    sb.write('all.do', 'redo-ifchange a b\n')


def owners_of(stderr):
    """(line, the target it is told to be from) for each .do line: a label
    `name: ` where lines change hands, or a `redo  name` line above."""
    owner, out = None, []
    for l in stderr.splitlines():
        if l.startswith('redo '):
            owner = l.split()[-1]
            continue
        name, sep, rest = l.partition(': ')
        if sep and name in TWO_TALKERS:
            owner, l = name, rest
        out.append((l, owner))
    return out


def test_spec6_parallel_lines_are_labelled_by_target(sb):
    two_talkers(sb)
    r = sb.redo('-j2', 'all', check=True)
    lines = [(l, o) for l, o in owners_of(r.stderr) if ' line ' in l]
    assert len(lines) == 6
    for l, o in lines:
        assert l.startswith(o + ' line '), (l, o, r.stderr)
    assert ': a line' not in sb.run('redo-log', 'a', check=True).stdout


def test_spec6_sequential_lines_are_plain(sb):
    sb.write('x.do', 'echo "x says" >&2\n')
    r = sb.redo('-j1', 'x', check=True)
    assert 'x says' in r.stderr.splitlines()


@pytest.mark.parametrize('how', [['-O'], ['--output', 'group'], ['--output=group'],
                                 {'REDO_OUTPUT': 'group'}])
def test_spec6_grouped_output_keeps_each_target_together(sb, how):
    two_talkers(sb)
    args = how if isinstance(how, list) else []
    env = how if isinstance(how, dict) else None
    r = sb.redo('-j2', *args, 'all', env=env, check=True)
    lines = [l for l in r.stderr.splitlines() if ' line ' in l]
    assert len(lines) == 6
    owners = [o for l, o in owners_of(r.stderr) if ' line ' in l]
    assert owners in (['a'] * 3 + ['b'] * 3, ['b'] * 3 + ['a'] * 3), lines
    assert [l for l in lines if l.startswith(('a: ', 'b: '))], 'each block after its label'


def test_spec6_plain_output_on_request(sb):
    sb.write('x.do', 'echo "x says" >&2\n')
    r = sb.redo('-j2', '--output', 'plain', 'x', check=True)
    assert 'x says' in r.stderr.splitlines()


def test_spec6_bad_output_mode_is_a_usage_error(sb):
    r = sb.redo('--output', 'loud', 'x')
    assert r.returncode == 2
    assert 'must be lines, group or plain' in r.stderr


def test_spec6_bad_output_mode_in_the_environment_names_it(sb):
    r = sb.redo('x', env={'REDO_OUTPUT': 'loud'})
    assert r.returncode == 2
    assert 'REDO_OUTPUT=loud' in r.stderr
