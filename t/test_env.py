"""SPEC §8: the environment variables a user sets — REDO_JOBS,
REDO_KEEP_GOING, REDO_TOP_DIR, REDO_NO_SYNC, REDO_STOP_IF_MODIFIED,
REDO_LOGS, REDO_SILENT, REDO_TRACE, NO_COLOR, MAKEFLAGS — and the internal
ones redo passes to the .do files it runs (all named REDO_*)."""

import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

from conftest import ROOT
from helpers import no_traceback

SGR = re.compile(r'\x1b\[[0-9;]*m')


def target_names(stderr):
    return [m.group(1) for m in re.finditer(r'(?m)^redo +(\S.*)$', stderr)]


# ---------------------------------------------------------------------------
# REDO_JOBS
# ---------------------------------------------------------------------------

def wait_for(name, limit=2000):
    """sh: wait (bounded) for a file; exit 9 if it never comes."""
    return ('i=0\nwhile [ ! -e %s ]; do i=$((i+1)); [ $i -lt %d ] || exit 9; sleep 0.01; done\n'
            % (name, limit))


def test_redo_jobs_2_runs_two_do_files_at_once(sb):
    """a and b each wait for the other to have started: only a parallel
    build finishes."""
    sb.write('a.do', 'touch a.started\n' + wait_for('b.started') + 'echo a\n')
    sb.write('b.do', 'touch b.started\n' + wait_for('a.started') + 'echo b\n')
    sb.write('all.do', 'redo-ifchange a b\n')
    p = sb.redo('all', env={'REDO_JOBS': '2'})
    assert p.returncode == 0, p.stderr
    assert sb.read('a') == 'a\n' and sb.read('b') == 'b\n'


def overlap_do(me, other):
    """Records `overlap` if the other .do is running while this one is."""
    return ('touch %s.started\n'
            'i=0\nwhile [ $i -lt 30 ]; do\n'
            '  if [ -e %s.started ] && [ ! -e %s.ended ]; then echo overlap >>overlaps; fi\n'
            '  i=$((i+1)); sleep 0.01\ndone\n'
            'touch %s.ended\necho %s\n' % (me, other, other, me, me))


def test_redo_jobs_1_runs_one_do_file_at_a_time(sb):
    sb.write('a.do', overlap_do('a', 'b'))
    sb.write('b.do', overlap_do('b', 'a'))
    sb.write('all.do', 'redo-ifchange a b\n')
    p = sb.redo('all', env={'REDO_JOBS': '1'})
    assert p.returncode == 0, p.stderr
    assert sb.read('a') == 'a\n' and sb.read('b') == 'b\n'
    assert sb.log('overlaps') == []


def test_redo_jobs_is_passed_to_nested_redo(sb):
    sb.write('a.do', overlap_do('a', 'b'))
    sb.write('b.do', overlap_do('b', 'a'))
    sb.write('mid.do', 'redo-ifchange a b\n')
    sb.write('all.do', 'redo-ifchange mid\n')
    p = sb.redo('all', env={'REDO_JOBS': '1'})
    assert p.returncode == 0, p.stderr
    assert sb.log('overlaps') == []


@pytest.mark.parametrize('value', ['abc', '-1', '1.5', ' 2', '2 ', '1_0', '+2', '\uff12'])
def test_redo_jobs_bad_value_is_a_usage_error(sb, value):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    p = sb.redo('x', env={'REDO_JOBS': value})
    no_traceback(p)
    assert p.returncode == 2
    assert 'REDO_JOBS' in p.stderr
    assert sb.log('runs') == []


@pytest.mark.parametrize('how', ['env', 'option'])
def test_jobs_with_thousands_of_digits_is_a_usage_error(sb, how):
    # int() refuses more than 4300 of them.
    sb.write('x.do', 'echo x\n')
    if how == 'env':
        p = sb.redo('x', env={'REDO_JOBS': '9' * 5000})
    else:
        p = sb.redo('-j', '9' * 5000, 'x')
    no_traceback(p)
    assert p.returncode == 2
    assert not sb.exists('x')
    p = sb.redo('x', env={'REDO_JOBS': '0' * 5000 + '2'}, check=True)


# ---------------------------------------------------------------------------
# REDO_KEEP_GOING
# ---------------------------------------------------------------------------

def keep_going_tree(sb):
    sb.write('bad.do', 'echo bad >>runs\nexit 1\n')
    sb.write('good.do', 'echo good >>runs\necho good\n')
    sb.write('needs-bad.do', 'redo-ifchange bad\necho never >>runs\n')
    sb.write('all.do', 'redo-ifchange bad good\n')
    sb.write('both.do', 'redo-ifchange needs-bad good\n')


@pytest.mark.parametrize('value', [None, '0'])
def test_keep_going_off_stops_at_first_failure(sb, value):
    keep_going_tree(sb)
    env = {'REDO_JOBS': '1'}
    if value is not None:
        env['REDO_KEEP_GOING'] = value
    p = sb.redo('all', env=env)
    assert p.returncode != 0
    no_traceback(p)
    assert sb.log('runs') == ['bad']
    assert not sb.exists('good')


def test_keep_going_builds_what_does_not_depend_on_the_failure(sb):
    keep_going_tree(sb)
    p = sb.redo('all', 'both', env={'REDO_JOBS': '1', 'REDO_KEEP_GOING': '1'})
    assert p.returncode != 0
    no_traceback(p)
    assert sb.read('good') == 'good\n'
    assert 'never' not in sb.log('runs')
    assert sb.log('runs').count('bad') == 1


# ---------------------------------------------------------------------------
# REDO_TOP_DIR
# ---------------------------------------------------------------------------

def top_tree(sb):
    sb.write('default.do', 'echo outer\n')
    sb.write('proj/sub/keep', '')
    sb.write('proj/all.do', 'redo-ifchange sub/y\n')


def test_redo_top_dir_stops_the_do_search(sb):
    top_tree(sb)
    sb.ifchange('proj/sub/x', check=True)           # found in the parent
    assert sb.read('proj/sub/x') == 'outer\n'
    p = sb.ifchange('proj/sub/z', env={'REDO_TOP_DIR': str(sb.path / 'proj')})
    no_traceback(p)
    assert p.returncode != 0
    assert not sb.exists('proj/sub/z')


def test_redo_top_dir_includes_the_top_itself(sb):
    top_tree(sb)
    sb.write('proj/default.do', 'echo top\n')
    sb.ifchange('proj/sub/x', env={'REDO_TOP_DIR': str(sb.path / 'proj')}, check=True)
    assert sb.read('proj/sub/x') == 'top\n'


def test_redo_top_dir_applies_inside_the_build(sb):
    top_tree(sb)
    p = sb.redo('all', cwd=sb.path / 'proj', env={'REDO_TOP_DIR': str(sb.path / 'proj')})
    assert p.returncode != 0
    assert not sb.exists('proj/sub/y')


def test_redo_top_dir_relative_to_current_directory(sb):
    top_tree(sb)
    p = sb.ifchange('sub/z', cwd=sb.path / 'proj', env={'REDO_TOP_DIR': '.'})
    assert p.returncode != 0
    assert not sb.exists('proj/sub/z')


def test_redo_top_dir_limits_whichdo(sb):
    top_tree(sb)
    p = sb.run('redo-whichdo', 'sub/x.c', cwd=sb.path / 'proj',
               env={'REDO_TOP_DIR': str(sb.path / 'proj')})
    assert p.returncode == 1
    assert p.stdout.split() == ['sub/x.c.do', 'sub/default.c.do', 'sub/default.do',
                                'default.c.do', 'default.do']


@pytest.mark.parametrize('top', ['.', 'proj', 'elsewhere'])
def test_redo_top_dir_and_a_redo_top_marker_whichever_is_met_first(sb, top):
    # SPEC §3: the search goes up to $REDO_TOP_DIR or to a directory holding
    # .redo/top, whichever it meets first.
    top_tree(sb)
    sb.write('proj/sub/.redo/top', '')
    sb.write('elsewhere/keep', '')
    env = {'REDO_TOP_DIR': str(sb.path / top)}
    p = sb.ifchange('proj/sub/z', env=env)
    no_traceback(p)
    assert p.returncode != 0
    assert not sb.exists('proj/sub/z')
    p = sb.run('redo-whichdo', 'z', cwd=sb.path / 'proj' / 'sub', env=env)
    assert p.returncode == 1
    assert p.stdout.split() == ['z.do', 'default.do']


# ---------------------------------------------------------------------------
# REDO_NO_SYNC
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('value', [None, '0', '1'])
def test_redo_no_sync_either_way_keeps_state(sb, value):
    if value is None:
        del sb.env['REDO_NO_SYNC']
    else:
        sb.env['REDO_NO_SYNC'] = value
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x']


# ---------------------------------------------------------------------------
# REDO_STOP_IF_MODIFIED
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('value, fails', [('1', True), ('0', False), (None, False)])
def test_redo_stop_if_modified(sb, value, fails):
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.ifchange('x', check=True)
    sb.write('x', 'edited\n')
    sb.write('x.do', 'echo x >>runs\necho rebuilt\n')
    env = {} if value is None else {'REDO_STOP_IF_MODIFIED': value}
    p = sb.ifchange('x', env=env)
    no_traceback(p)
    assert (p.returncode != 0) == fails, p.stderr
    assert 'x' in p.stderr
    assert sb.read('x') == 'edited\n'
    assert sb.log('runs') == ['x']


# ---------------------------------------------------------------------------
# REDO_LOGS
# ---------------------------------------------------------------------------

def test_redo_logs_0_stderr_passes_but_is_not_kept(sb):
    sb.write('x.do', 'echo LOGGED-LINE >&2\necho x\n')
    p = sb.redo('x', env={'REDO_LOGS': '0'}, check=True)
    assert 'LOGGED-LINE' in p.stderr
    q = sb.run('redo-log', 'x')
    no_traceback(q)
    assert 'LOGGED-LINE' not in q.stdout
    assert not [f for r, d, fs in os.walk(sb.path) for f in fs if f.endswith('.log')]


def test_redo_logs_default_keeps_stderr(sb):
    sb.write('x.do', 'echo LOGGED-LINE >&2\necho x\n')
    sb.redo('x', check=True)
    assert 'LOGGED-LINE' in sb.run('redo-log', 'x', check=True).stdout


def test_redo_logs_0_replaces_the_old_log(sb):
    sb.write('x.do', 'echo OLD-LINE >&2\necho x\n')
    sb.redo('x', check=True)
    sb.write('x.do', 'echo NEW-LINE >&2\necho x\n')
    sb.redo('x', env={'REDO_LOGS': '0'}, check=True)
    q = sb.run('redo-log', 'x')
    assert 'OLD-LINE' not in q.stdout


# ---------------------------------------------------------------------------
# REDO_SILENT
# ---------------------------------------------------------------------------

def test_redo_silent_hides_target_lines_only(sb):
    sb.write('a.do', 'echo from-a >&2\necho a\n')
    sb.write('all.do', 'redo-ifchange a\n')
    p = sb.redo('all', env={'REDO_SILENT': '1'}, check=True)
    assert target_names(p.stderr) == []
    assert 'from-a' in p.stderr
    assert sb.read('a') == 'a\n'
    p = sb.redo('all', check=True)
    assert target_names(p.stderr) == ['all']


def test_redo_silent_still_reports_failures(sb):
    sb.write('x.do', 'exit 3\n')
    p = sb.redo('x', env={'REDO_SILENT': '1'})
    assert p.returncode != 0
    assert 'x.do' in p.stderr


# ---------------------------------------------------------------------------
# REDO_TRACE
# ---------------------------------------------------------------------------

def test_redo_trace_traces_every_do(sb):
    sb.write('all.do', 'redo-ifchange dep\necho TOPMARK\n')
    sb.write('dep.do', 'echo DEPMARK\n')
    p = sb.redo('all', env={'REDO_TRACE': '1'}, check=True)
    assert '+ echo TOPMARK' in p.stderr
    assert '+ echo DEPMARK' in p.stderr
    assert sb.read('all') == 'TOPMARK\n' and sb.read('dep') == 'DEPMARK\n'


def test_redo_trace_off_by_default(sb):
    sb.write('all.do', 'echo TOPMARK\n')
    p = sb.redo('all', check=True)
    assert 'TOPMARK' not in p.stderr


# ---------------------------------------------------------------------------
# NO_COLOR
# ---------------------------------------------------------------------------

def run_on_tty(sb, args, env):
    master, slave = pty.openpty()
    p = subprocess.Popen(args, cwd=str(sb.path), env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b''
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                if p.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        os.close(master)
    p.wait(timeout=60)
    return out.decode('utf-8', 'replace')


def test_no_color_on_a_terminal(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('bad.do', 'exit 1\n')
    env = {k: v for k, v in sb.env.items() if k != 'NO_COLOR'}
    env['TERM'] = 'xterm'
    coloured = run_on_tty(sb, ['redo', '--no-progress', 'x', 'bad'], env)
    if not SGR.search(coloured):
        pytest.skip('no colour on a terminal at all: nothing for NO_COLOR to turn off')
    env['NO_COLOR'] = '1'
    plain = run_on_tty(sb, ['redo', '--no-progress', 'x', 'bad'], env)
    assert 'redo  x' in plain
    assert not SGR.search(plain), repr(plain)


def colour_env(sb, **extra):
    env = {k: v for k, v in sb.env.items() if k not in ('NO_COLOR', 'CLICOLOR_FORCE')}
    env['TERM'] = 'xterm'
    env.update(extra)
    return env


def test_no_color_set_but_empty_allows_colour(sb):
    # no-color.org: only a NO_COLOR that is set and not empty turns it off.
    sb.write('x.do', 'echo x\n')
    sb.write('bad.do', 'exit 1\n')
    if not SGR.search(run_on_tty(sb, ['redo', '--no-progress', 'x', 'bad'], colour_env(sb))):
        pytest.skip('no colour on a terminal at all')
    out = run_on_tty(sb, ['redo', '--no-progress', 'x', 'bad'], colour_env(sb, NO_COLOR=''))
    assert SGR.search(out), repr(out)


def test_clicolor_force_gives_colour_where_stderr_is_not_a_terminal(sb):
    sb.write('bad.do', 'exit 1\n')
    p = subprocess.run(['redo', 'bad'], cwd=str(sb.path), env=colour_env(sb, CLICOLOR_FORCE='1'),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert SGR.search(p.stderr), repr(p.stderr)
    for env in ({'CLICOLOR_FORCE': '0'}, {'CLICOLOR_FORCE': ''},
                {'CLICOLOR_FORCE': '1', 'NO_COLOR': '1'}, {}):
        p = subprocess.run(['redo', 'bad'], cwd=str(sb.path), env=colour_env(sb, **env),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and 'bad' in p.stderr
        assert not SGR.search(p.stderr), (env, p.stderr)


def test_clicolor_force_on_a_dumb_terminal_too(sb):
    sb.write('bad.do', 'exit 1\n')
    out = run_on_tty(sb, ['redo', '--no-progress', 'bad'],
                     colour_env(sb, TERM='dumb', CLICOLOR_FORCE='yes'))
    assert SGR.search(out), repr(out)


# ---------------------------------------------------------------------------
# Boolean variables: one set of words for all
# ---------------------------------------------------------------------------

TRUE_WORDS = ['1', 'yes', 'true', 'on', 'YES', 'True', 'ON']
FALSE_WORDS = ['0', 'no', 'false', 'off', 'NO', 'False', 'Off']


@pytest.mark.parametrize('word', TRUE_WORDS + FALSE_WORDS + [''])
def test_redo_logs_reads_the_boolean_words(sb, word):
    sb.write('x.do', 'echo LOGGED-LINE >&2\necho x\n')
    p = sb.redo('x', env={'REDO_LOGS': word}, check=True)
    assert 'LOGGED-LINE' in p.stderr
    kept = 'LOGGED-LINE' in sb.run('redo-log', 'x', check=True).stdout
    assert kept == (word not in FALSE_WORDS), word      # empty: the default, kept


@pytest.mark.parametrize('word', TRUE_WORDS + FALSE_WORDS + [''])
def test_redo_silent_reads_the_boolean_words(sb, word):
    sb.write('x.do', 'echo x\n')
    p = sb.redo('x', env={'REDO_SILENT': word}, check=True)
    assert ('redo  x' not in p.stderr) == (word in TRUE_WORDS), (word, p.stderr)


@pytest.mark.parametrize('name', ['REDO_KEEP_GOING', 'REDO_SILENT', 'REDO_LOGS',
                                  'REDO_NO_SYNC', 'REDO_STOP_IF_MODIFIED', 'REDO_TRACE',
                                  'REDO_VERBOSE', 'REDO_DEBUG', 'REDO_SHUFFLE',
                                  'REDO_NO_PROGRESS'])
def test_a_boolean_variable_with_another_word_is_a_usage_error(sb, name):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    p = sb.redo('x', env={name: 'maybe'})
    no_traceback(p)
    assert p.returncode == 2
    assert p.stderr == ('redo: %s=maybe: not a boolean: use 1, yes, true, on or '
                        '0, no, false, off\n' % name)
    assert sb.log('runs') == []


def test_readme_documents_the_boolean_words():
    text = (ROOT / 'README').read_text()
    section = text.split('\nEnvironment\n', 1)[1]
    assert '1, yes, true, on' in ' '.join(section.split())
    assert '0, no, false, off' in ' '.join(section.split())


# ---------------------------------------------------------------------------
# REDO_NO_PROGRESS, and -j / REDO_JOBS errors alike
# ---------------------------------------------------------------------------

def test_redo_no_progress_is_as_the_option(sb):
    sb.write('slow.do', 'sleep 0.6\necho out\n')
    env = colour_env(sb, NO_COLOR='1')
    shown = run_on_tty(sb, ['redo', 'slow'], env)
    if '\r' not in shown:
        pytest.skip('no progress line on this terminal')
    env['REDO_NO_PROGRESS'] = '1'
    quiet = run_on_tty(sb, ['redo', 'slow'], env)
    assert 'redo  slow' in quiet
    assert '\r' not in quiet.replace('\r\n', '\n'), repr(quiet)


@pytest.mark.parametrize('value', ['-1', 'abc', '1025', '9' * 5000])
def test_jobs_option_and_variable_give_the_same_message(sb, value):
    sb.write('x.do', 'echo x\n')
    by_option = sb.redo('-j', value, 'x')
    by_env = sb.redo('x', env={'REDO_JOBS': value})
    assert by_option.returncode == by_env.returncode == 2
    assert by_option.stderr.replace('-j ' + value, 'N') == \
        by_env.stderr.replace('REDO_JOBS=' + value, 'N'), (by_option.stderr, by_env.stderr)
    assert len(by_option.stderr.splitlines()) == 1


# ---------------------------------------------------------------------------
# MAKEFLAGS: the GNU make jobserver
# ---------------------------------------------------------------------------

needs_make = pytest.mark.skipif(shutil.which('make') is None, reason='no make')


@needs_make
def test_makeflags_redo_under_make_j(sb):
    sb.write('Makefile', 'all:\n\t+redo-ifchange x y\n')
    sb.write('x.do', 'echo x\n')
    sb.write('y.do', 'echo y\n')
    p = sb.run('make', '-s', '-j2')
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert sb.read('x') == 'x\n' and sb.read('y') == 'y\n'


@pytest.mark.parametrize('flags', ['-j2 --jobserver-auth=98,99', '-j2 --jobserver-auth=fifo:/nonexistent/fifo',
                                   '--jobserver-auth=', 'garbage -- x=y'])
def test_makeflags_unusable_jobserver_is_not_fatal(sb, flags):
    sb.write('x.do', 'echo x\n')
    p = sb.redo('x', env={'MAKEFLAGS': flags})
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert sb.read('x') == 'x\n'


def test_makeflags_exported_to_do_files(sb):
    sb.write('x.do', 'printf "%s" "$MAKEFLAGS"\n')
    sb.redo('x', env={'REDO_JOBS': '2'}, check=True)
    assert re.search(r'--jobserver-(auth|fds)=\S+', sb.read('x')), sb.read('x')


# ---------------------------------------------------------------------------
# What redo passes to the .do files: only REDO_* variables are new
# ---------------------------------------------------------------------------

def test_internal_variables_start_with_redo(sb):
    sb.write('x.do', 'env -0 >$3\n')
    sb.redo('x', check=True)
    seen = {}
    for item in (sb.path / 'x').read_bytes().split(b'\0'):
        if item:
            k, _, v = item.decode('utf-8', 'surrogateescape').partition('=')
            seen[k] = v
    given = sb.env
    new = {k for k in seen if seen[k] != given.get(k)}
    allowed = {'PWD', 'OLDPWD', 'SHLVL', '_', 'PATH', 'MAKEFLAGS', 'MFLAGS'}
    assert {k for k in new - allowed if not k.startswith('REDO_')} == set()
    # PATH: redo's own directory first, the user's PATH kept after it
    assert seen['PATH'].endswith(given['PATH'])
    # and nothing the user set is lost
    assert set(given) - {'PWD', 'OLDPWD'} <= set(seen)


def test_internal_variables_are_documented_in_the_readme(sb):
    # Whatever options are given, each REDO_* variable a .do sees (at any
    # depth) is named in the README.
    readme = (ROOT / 'README').read_text()
    sb.write('x.do', 'env | sed -n "s/^\\(REDO_[A-Za-z0-9_]*\\)=.*/\\1/p" >>"%s/vars"\n'
                     'redo-ifchange y\n' % sb.path)
    sb.write('y.do', 'env | sed -n "s/^\\(REDO_[A-Za-z0-9_]*\\)=.*/\\1/p" >>"%s/vars"\n' % sb.path)
    sb.redo('x', check=True)
    sb.redo('-j2', '-k', '-d', '-xx', '-vv', '-s', 'x', check=True)
    sb.redo('x', env={'REDO_LOGS': '0', 'REDO_STOP_IF_MODIFIED': '1', 'REDO_TOP_DIR': '.',
                      'REDO_TRACE': '1', 'REDO_SILENT': '1', 'REDO_KEEP_GOING': '1'}, check=True)
    seen = set(sb.log('vars'))
    assert {'REDO_TARGET', 'REDO_RUN'} <= seen, seen
    undocumented = sorted(v for v in seen if not re.search(r'(?<![A-Z_])%s(?![A-Z_])' % v, readme))
    assert undocumented == [], seen


# ---------------------------------------------------------------------------
# REDO_PYTHON: the interpreter the launcher starts (smoke test on both)
# ---------------------------------------------------------------------------

def test_redo_python_runs_everything_with_that_interpreter(sb, any_python):
    sb.env['REDO_PYTHON'] = any_python
    sb.write('src', '1\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\necho x >&2\n')
    sb.write('all.do', 'redo-ifchange x\nredo-ifcreate nothere\nredo-always\n'
                       'printf "%s" "$REDO_PYTHON" >python.seen\n')
    sb.redo('all', check=True)
    assert sb.read('x') == '1\n'
    assert os.path.realpath(sb.read('python.seen')) == os.path.realpath(any_python)
    for cmd in ('redo-targets', 'redo-sources', 'redo-ood', 'redo-dot', 'redo-log'):
        p = sb.run(cmd, *(['x'] if cmd == 'redo-log' else []), check=True)
        no_traceback(p)
    assert sb.run('redo-targets', check=True).stdout.split() == ['all', 'x']
