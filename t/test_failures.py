"""Bad input of all kinds, and the failure rules of SPEC §5 that need no
parallelism.

For every kind of bad input: a one-line error naming the file, a non-zero
exit, no Python traceback (§6), and nothing built before is lost (§3: a
failed .do leaves the old target and the old state untouched)."""

import os
import re
import shutil

import pytest

TIMEOUT = 30          # a cycle must be an error, never a hang


def shown(name):
    """The ways a message may show name on one line: as is when it is
    printable, else escaped (as repr does)."""
    forms = {repr(name)[1:-1], name.replace('\n', '\\n').replace('\t', '\\t')}
    if name.isprintable():
        forms.add(name)
    return forms


def names_it(line, name):
    """True if line names name as a whole word (`a` is not named by `all`
    or by `a.do`), as is or escaped."""
    return any(re.search(r'(?<![\w-])(?<!\w\.)%s(?![\w-]|\.\w)' % re.escape(f), line)
               for f in shown(name))


def error_lines(r, *names):
    """The stderr lines, other than the `redo  target` lines that announce a
    start, that name every one of names."""
    return [l for l in r.stderr.splitlines()
            if not re.match(r'redo {2,}', l) and all(names_it(l, n) for n in names)]


def assert_clean_error(r, *names):
    """Non-zero exit, no traceback, and one line that names all of names."""
    assert r.returncode != 0, 'unexpected success\n%s' % r.stderr
    assert 'Traceback' not in r.stderr, r.stderr
    assert error_lines(r, *names), 'no line names %r:\n%s' % (names, r.stderr)


def listing(sb):
    """Every file in the sandbox outside .redo directories, with content."""
    out = {}
    for d, dirs, files in os.walk(sb.path):
        dirs[:] = [x for x in dirs if x != '.redo']
        for f in files:
            p = os.path.join(d, f)
            with open(p, 'rb') as h:
                out[os.path.relpath(p, sb.path)] = h.read()
    return out


def log_do(sb, target, body):
    """target.do that logs its run to `log`, then runs body."""
    sb.write(target + '.do', 'echo %s >>"%s/log"\n%s' % (target, sb.path, body))


# --- bad input: .do files and sources --------------------------------------

def test_missing_do_file_is_an_error_naming_the_target(sb):
    r = sb.redo('nothing')
    assert_clean_error(r, 'nothing')
    assert not sb.exists('nothing')
    r = sb.ifchange('sub/nothing')
    assert_clean_error(r, 'sub/nothing')


def test_missing_do_file_below_the_top_keeps_old_targets(sb):
    sb.write('all.do', 'echo v1\n')
    sb.redo('all', check=True)
    sb.write('all.do', 'redo-ifchange nothing\necho v2\n')
    r = sb.redo('all')
    assert_clean_error(r, 'nothing')
    assert_clean_error(r, 'all')
    assert sb.read('all') == 'v1\n'


def test_missing_source_is_an_error_naming_it(sb):
    sb.write('a.do', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'one\n')
    sb.ifchange('a', check=True)
    os.unlink(sb.path / 'src')
    r = sb.ifchange('a')
    assert_clean_error(r, 'src')
    assert sb.read('a') == 'one\n'
    # and once the source is back, the target builds again
    sb.write('src', 'two\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'two\n'


def test_failing_do_names_target_do_and_status(sb):
    sb.write('a.do', 'echo v1\n')
    sb.write('b.do', 'redo-ifchange a\ncat a\n')
    sb.ifchange('b', check=True)
    before = listing(sb)
    sb.write('a.do', 'echo partial\nexit 3\n')
    r = sb.ifchange('b')
    assert_clean_error(r, 'a', 'a.do', '3')
    after = listing(sb)
    del after['a.do'], before['a.do']
    assert after == before
    assert sb.read('a') == 'v1\n' and sb.read('b') == 'v1\n'


def test_failing_do_leaves_old_state_so_fixing_it_rebuilds(sb):
    sb.write('src', 'one\n')
    log_do(sb, 'a', 'redo-ifchange src\ntest ! -e broken\ncat src\n')
    log_do(sb, 'b', 'redo-ifchange a\ncat a\n')
    sb.ifchange('b', check=True)
    sb.write('broken', '')
    sb.write('src', 'two\n')
    os.unlink(sb.path / 'log')
    assert_clean_error(sb.ifchange('b'), 'a')
    # a failed, so b is out of date: its .do runs, asks for a, and fails
    # in turn (SPEC §5: the caller decides).
    assert sb.log('log') == ['a', 'b']
    assert sb.read('a') == 'one\n' and sb.read('b') == 'one\n'
    os.unlink(sb.path / 'broken')
    sb.ifchange('b', check=True)
    assert sb.read('b') == 'two\n'


def test_failing_do_keeps_the_old_dependencies_in_its_state(sb):
    # SPEC §3: the old state, untouched (but for "failed"): what the failed
    # run asked for is not recorded over what the last build used.
    sb.write('s1', '1\n')
    sb.write('newdep', 'n\n')
    sb.write('c.do', 'redo-ifchange s1\ncat s1\n')
    sb.ifchange('c', check=True)
    before = [ln for ln in sb.read('.redo/c.rec').splitlines() if ln.startswith(('Dep:', 'End:'))]
    sb.write('c.do', 'redo-ifchange s1 newdep\nexit 1\n')
    assert sb.ifchange('c').returncode == 1
    after = [ln for ln in sb.read('.redo/c.rec').splitlines() if ln.startswith(('Dep:', 'End:'))]
    assert after == before
    assert 'Result: failed' in sb.read('.redo/c.rec')
    assert 'newdep' not in sb.run('redo-sources', check=True).stdout.split()


def test_do_killed_by_a_signal_is_an_error(sb):
    sb.write('a.do', 'echo v1\n')
    sb.ifchange('a', check=True)
    sb.write('a.do', 'echo v2\nkill -9 $$\n')
    r = sb.ifchange('a')
    assert_clean_error(r, 'a', 'a.do')
    assert sb.read('a') == 'v1\n'


def test_do_writing_both_outputs_is_an_error(sb):
    sb.write('a.do', 'echo v1\n')
    sb.ifchange('a', check=True)
    before = listing(sb)
    sb.write('a.do', 'echo to3 >$3\necho tostdout\n')
    r = sb.redo('a')
    assert_clean_error(r, 'a')
    after = listing(sb)
    del after['a.do'], before['a.do']
    assert after == before          # old a, and no temporary left behind
    assert sb.read('a') == 'v1\n'


def test_do_writing_dollar1_is_an_error(sb):
    sb.write('a.do', 'echo mine >$1\n')
    r = sb.redo('a')
    assert_clean_error(r, 'a')
    assert_clean_error(sb.redo('a'), 'a')        # still an error next time


def test_do_with_a_bad_interpreter_line_is_an_error(sb):
    sb.write('a.do', 'echo v1\n')
    sb.ifchange('a', check=True)
    sb.write('a.do', '#!/nonexistent/interpreter\necho v2\n', mode=0o755)
    r = sb.redo('a')
    assert_clean_error(r, 'a')
    assert sb.read('a') == 'v1\n'


def test_do_that_is_a_directory_is_an_error(sb):
    (sb.path / 'a.do').mkdir()
    r = sb.redo('a')
    assert_clean_error(r, 'a')
    assert not sb.exists('a')


def test_target_directory_that_is_a_file_fails_cleanly(sb):
    sb.write('default.do', 'echo built\n')
    sb.write('f', 'a file\n')
    r = sb.redo('f/x')
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr, r.stderr
    assert sb.read('f') == 'a file\n'


def test_target_directory_that_is_a_file_names_the_target(sb):
    sb.write('default.do', 'echo built\n')
    sb.write('f', 'a file\n')
    sb.write('all.do', 'redo-ifchange f/x\n')
    r = sb.redo('all')
    assert_clean_error(r, 'f/x')


def test_unwritable_directory_fails_cleanly(sb):
    if os.geteuid() == 0:
        pytest.skip('root writes to read-only directories')
    sb.write('default.do', 'echo built\n')
    sb.write('ro/keep', 'k\n')
    os.chmod(sb.path / 'ro', 0o555)
    try:
        r = sb.redo('ro/x')
        assert_clean_error(r, 'ro')
    finally:
        os.chmod(sb.path / 'ro', 0o755)
    assert sb.read('ro/keep') == 'k\n'


# --- bad input: the state --------------------------------------------------

def _garble(data, how):
    if how == 'empty':
        return b''
    if how == 'truncated':
        return data[:len(data) // 2]
    if how == 'cut-mid-line':
        return data[:data.index(b'\n', 20) - 3] if b'\n' in data[20:] else data[:5]
    if how == 'random-bytes':
        return bytes((i * 37 + 11) % 256 for i in range(400))
    if how == 'not-utf8':
        return data.replace(b'src', b'\xff\xfe\xfd', 1) + b'\xc3\x28\n'
    if how == 'nul-in-name':
        assert b'src' in data
        return data.replace(b'src', b's\0rc')
    if how == 'numbers-garbled':
        return re.sub(rb'\d', b'x', data)
    if how == 'fields-swapped':
        return b'\n'.join(reversed(data.split(b'\n')))
    if how == 'continuation-first':
        return b'+ oops\n' + data
    if how == 'unknown-records':
        return data + b'\nWhat: is this\nNo: idea\n'
    if how == 'blank-lines-only':
        return b'\n\n\n'
    if how == 'run-garbled':
        return re.sub(rb'(?m)^Run: .*$', b'Run: garbage', data)
    if how in ('seconds-nan', 'seconds-inf'):
        return re.sub(rb'(?m)^Seconds: .*$', b'Seconds: ' + how[8:].encode(), data)
    raise AssertionError(how)


GARBLINGS = ['empty', 'truncated', 'cut-mid-line', 'random-bytes', 'not-utf8',
             'nul-in-name',
             'numbers-garbled', 'fields-swapped', 'continuation-first',
             'unknown-records', 'blank-lines-only', 'run-garbled', 'seconds-nan', 'seconds-inf']


def _state_files(sb):
    out = []
    for d, dirs, files in os.walk(sb.path):
        if os.path.basename(d) == '.redo':
            out += [os.path.join(d, f) for f in files]
    return out


@pytest.mark.parametrize('how', GARBLINGS)
def test_garbled_state_is_never_fatal(sb, how):
    sb.write('src', 'one\n')
    sb.write('a.do', 'redo-ifchange src\necho a\n')
    sb.write('all.do', 'redo-ifchange a\ncat a\n')
    sb.redo('all', check=True)
    files = _state_files(sb)
    assert files
    touched = 0
    for f in files:
        with open(f, 'rb') as h:
            data = h.read()
        if how == 'nul-in-name' and b'src' not in data:
            continue
        with open(f, 'wb') as h:
            h.write(_garble(data, how))
        touched += 1
    assert touched
    for cmd in (['redo-log', '-r', 'all'], ['redo-log', '--trace', '-']):
        r = sb.run(*cmd)
        assert 'Traceback' not in r.stderr, '%s:\n%s' % (cmd, r.stderr)
        assert not re.search(r'(?i)\b(inf|infinity|nan)s?\b', r.stdout), r.stdout
    for cmd in (['redo-ifchange', 'all'], ['redo-ood'], ['redo-targets'],
                ['redo-sources'], ['redo-dot'], ['redo-affects', 'src'],
                ['redo', 'all'], ['redo-ifchange', 'all']):
        r = sb.run(*cmd)
        assert 'Traceback' not in r.stderr, '%s:\n%s' % (cmd, r.stderr)
        assert r.returncode == 0, '%s: exit %d\n%s' % (cmd, r.returncode, r.stderr)
    assert sb.read('all') == 'a\n' and sb.read('a') == 'a\n'
    assert sb.read('src') == 'one\n'


def test_a_target_with_a_garbled_state_file_is_listed_out_of_date(sb):
    sb.write('a.do', 'echo a\n')
    sb.write('all.do', 'redo-ifchange a\n')
    sb.redo('all', check=True)
    sb.write('.redo/a.rec', 'garbage\n')
    assert sb.run('redo-targets', check=True).stdout.split() == ['a', 'all']
    assert sb.run('redo-ood', check=True).stdout.split() == ['a', 'all']
    for cmd in (['redo-sources'], ['redo-dot'], ['redo-affects', 'a'], ['redo-log', '--trace', '-']):
        r = sb.run(*cmd)
        assert 'Traceback' not in r.stderr and r.returncode == 0, (cmd, r.stderr)


def test_state_file_replaced_by_directory_is_never_fatal(sb):
    sb.write('a.do', 'echo a\n')
    sb.ifchange('a', check=True)
    for f in _state_files(sb):
        os.unlink(f)
        os.mkdir(f)
    for cmd in (['redo-ifchange', 'a'], ['redo-ood'], ['redo-targets'], ['redo-log', 'a']):
        r = sb.run(*cmd)
        assert 'Traceback' not in r.stderr, '%s:\n%s' % (cmd, r.stderr)
    assert sb.read('a') == 'a\n'


def test_state_directory_removed_is_never_fatal(sb):
    sb.write('a.do', 'echo a\n')
    sb.write('all.do', 'redo-ifchange a\ncat a\n')
    sb.redo('all', check=True)
    shutil.rmtree(sb.path / '.redo')
    r = sb.ifchange('all', check=True)
    assert 'Traceback' not in r.stderr
    assert sb.read('all') == 'a\n'
    # a target deleted as well is simply built again
    os.unlink(sb.path / 'all')
    sb.ifchange('all', check=True)
    assert sb.read('all') == 'a\n'


def test_state_directory_that_is_a_file_fails_cleanly(sb):
    sb.write('a.do', 'echo a\n')
    sb.write('.redo', 'not a directory\n')
    r = sb.redo('a')
    assert 'Traceback' not in r.stderr, r.stderr
    if r.returncode != 0:
        assert_clean_error(r, '.redo')
    else:
        assert sb.read('a') == 'a\n'


# --- bad input: odd file names ----------------------------------------------

ODD_NAMES = ['sp ace', 'ünïcödé', 'q\'uo"te', 'new\nline', '-dash', 'tab\there',
             ' lead', 'trail ', '$(echo no)', '*star?']


@pytest.mark.parametrize('name', ODD_NAMES)
def test_odd_file_name_builds(sb, name):
    sb.write('default.do', 'printf "%s\\n" "$1"\n')
    sb.ifchange('./' + name, check=True)
    assert sb.read(name) == name + '\n'
    assert sb.run('redo-ood', check=True).stdout == ''


@pytest.mark.parametrize('name', ODD_NAMES)
def test_odd_file_name_failure_is_one_line_naming_it(sb, name):
    sb.write('default.do', 'printf "%s\\n" "$1"\n')
    sb.ifchange('./' + name, check=True)
    sb.write('default.do', 'echo partial\nexit 4\n')
    r = sb.redo('./' + name)
    assert_clean_error(r, name)
    assert sb.read(name) == name + '\n'


@pytest.mark.parametrize('name', ODD_NAMES)
def test_odd_file_name_missing_source_names_it(sb, name):
    sb.write('all.do', 'redo-ifchange "./$(cat name)"\n')
    sb.write('name', name)
    r = sb.redo('all')
    assert_clean_error(r, name)
    r = sb.redo('./' + name)
    assert_clean_error(r, name)


# --- bad input: arguments ----------------------------------------------------

@pytest.mark.parametrize('args,env,named', [
    (['redo', '-Q'], {}, '-Q'),
    (['redo', '--no-such-option'], {}, '--no-such-option'),
    (['redo', '-j', 'abc'], {}, 'abc'),
    (['redo', '-j'], {}, '-j'),
    (['redo-ifchange', '--jobs'], {}, '--jobs'),
    (['redo', 'x'], {'REDO_JOBS': 'abc'}, 'REDO_JOBS'),
    (['redo', ''], {}, 'empty'),
    (['redo-ifchange', 'a', ''], {}, 'empty'),
    (['redo-ifcreate', 'x'], {}, 'redo-ifcreate'),
    (['redo-always'], {}, 'redo-always'),
    (['redo-stamp'], {}, 'redo-stamp'),
    (['redo-whichdo'], {}, 'redo-whichdo'),
    (['redo-log', 'nosuch'], {}, 'nosuch'),
])
def test_bad_arguments_are_one_line_errors(sb, args, env, named):
    sb.write('a.do', 'echo a\n')
    sb.write('x.do', 'echo x\n')
    r = sb.run(*args, env=env, input='')
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert named in lines[0], r.stderr
    assert not sb.exists('a') and not sb.exists('x')


@pytest.mark.parametrize('args', [
    ['-Q'],
    [''],
])
def test_error_messages_name_the_command_as_called(sb, args):
    r = sb.redo(*args)
    assert r.returncode != 0
    assert 'redo-redo' not in r.stderr, r.stderr


# --- §5 failures: the first failure stops the build -------------------------



def test_first_failure_stops_the_build(sb):
    log_do(sb, 'a', 'exit 1\n')
    log_do(sb, 'b', 'echo b\n')
    log_do(sb, 'c', 'echo c\n')
    log_do(sb, 'all', 'redo-ifchange a b c\n')
    r = sb.redo('-j1', 'all')
    assert_clean_error(r, 'a')
    assert sb.log('log') == ['all', 'a']
    assert not sb.exists('b') and not sb.exists('c') and not sb.exists('all')


def test_first_failure_stops_the_build_at_top_level(sb):
    log_do(sb, 'a', 'echo a\n')
    log_do(sb, 'b', 'exit 1\n')
    log_do(sb, 'c', 'echo c\n')
    r = sb.redo('-j1', 'a', 'b', 'c')
    assert_clean_error(r, 'b')
    assert sb.log('log') == ['a', 'b']
    assert sb.exists('a') and not sb.exists('c')


def test_failure_exit_status_propagates_through_levels(sb):
    sb.write('deep.do', 'exit 7\n')
    sb.write('mid.do', 'redo-ifchange deep\necho mid\n')
    sb.write('all.do', 'redo-ifchange mid\necho all\n')
    r = sb.redo('all')
    assert_clean_error(r, 'deep', '7')
    assert not sb.exists('mid') and not sb.exists('all')


def test_do_that_ignores_a_failed_dependency_succeeds(sb):
    # SPEC §5: failures belong to the caller.  sh -e is not in force after
    # `||`: the .do goes on and exits 0, and so does the run; the failure
    # is still said.
    sb.write('bad.do', 'exit 1\n')
    sb.write('all.do', 'redo-ifchange bad || true\necho all\n')
    r = sb.redo('all')
    assert r.returncode == 0, r.stderr
    assert 'bad failed' in r.stderr
    assert 'Traceback' not in r.stderr


@pytest.mark.parametrize('how', [['-k'], ['--keep-going'], {'REDO_KEEP_GOING': '1'}])
def test_keep_going_builds_what_does_not_depend_on_the_failure(sb, how):
    args = how if isinstance(how, list) else []
    env = how if isinstance(how, dict) else None
    log_do(sb, 'a', 'echo a\n')
    log_do(sb, 'bad', 'exit 1\n')
    log_do(sb, 'c', 'echo c\n')
    log_do(sb, 'd', 'redo-ifchange bad\necho d\n')
    log_do(sb, 'e', 'redo-ifchange c\necho e\n')
    log_do(sb, 'all', 'redo-ifchange a bad c d e\n')
    r = sb.redo('-j1', *args, 'all', env=env)
    assert_clean_error(r, 'bad')
    for t in ('a', 'c', 'e'):
        assert sb.read(t) == t + '\n'
    for t in ('bad', 'd', 'all'):
        assert not sb.exists(t)
    assert sb.log('log').count('bad') == 1


def test_keep_going_at_top_level(sb):
    sb.write('bad.do', 'exit 1\n')
    sb.write('good.do', 'echo good\n')
    r = sb.redo('-k', '-j1', 'bad', 'good')
    assert_clean_error(r, 'bad')
    assert sb.read('good') == 'good\n'


def test_without_keep_going_the_same_build_stops(sb):
    log_do(sb, 'a', 'echo a\n')
    log_do(sb, 'bad', 'exit 1\n')
    log_do(sb, 'c', 'echo c\n')
    log_do(sb, 'all', 'redo-ifchange a bad c\n')
    r = sb.redo('-j1', 'all')
    assert_clean_error(r, 'bad')
    assert sb.exists('a') and not sb.exists('c')


# --- §5 failures: dependency cycles -----------------------------------------

def cycle_named(stderr, names):
    """True if stderr names the cycle: x -> y -> ... -> x, in any rotation."""
    for i in range(len(names)):
        rot = names[i:] + names[:i]
        if ' -> '.join(rot + [rot[0]]) in stderr:
            return True
    return False


@pytest.mark.parametrize('jobs', ['-j1', '-j4'])
@pytest.mark.parametrize('call', ['redo-ifchange', 'redo'])
def test_target_depending_on_itself_is_a_cycle(sb, jobs, call):
    sb.write('a.do', '%s a\necho a\n' % call)
    r = sb.redo(jobs, 'a', timeout=TIMEOUT)
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr
    assert cycle_named(r.stderr, ['a']), r.stderr
    assert not sb.exists('a')


@pytest.mark.parametrize('jobs', ['-j1', '-j4'])
def test_two_target_cycle_is_named(sb, jobs):
    sb.write('a.do', 'redo-ifchange b\necho a\n')
    sb.write('b.do', 'redo-ifchange a\necho b\n')
    r = sb.redo(jobs, 'a', timeout=TIMEOUT)
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr
    assert cycle_named(r.stderr, ['a', 'b']), r.stderr


@pytest.mark.parametrize('jobs', ['-j1', '-j4'])
def test_longer_cycle_is_named(sb, jobs):
    sb.write('a.do', 'redo-ifchange b\necho a\n')
    sb.write('b.do', 'redo-ifchange c\necho b\n')
    sb.write('c.do', 'redo-ifchange a\necho c\n')
    r = sb.redo(jobs, 'a', timeout=TIMEOUT)
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr
    assert cycle_named(r.stderr, ['a', 'b', 'c']), r.stderr
    for t in 'abc':
        assert not sb.exists(t)
    # a second run: the same error again, not a hang, not a success
    r = sb.ifchange('b', timeout=TIMEOUT)
    assert r.returncode != 0
    assert cycle_named(r.stderr, ['a', 'b', 'c']), r.stderr


def test_cycle_below_the_top_is_named(sb):
    sb.write('all.do', 'redo-ifchange x\n')
    sb.write('x.do', 'redo-ifchange y\n')
    sb.write('y.do', 'redo-ifchange z\n')
    sb.write('z.do', 'redo-ifchange y\n')
    r = sb.redo('all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr
    assert cycle_named(r.stderr, ['y', 'z']), r.stderr


def test_cycle_in_subdirectories_is_named(sb):
    sb.write('d1/a.do', 'redo-ifchange ../d2/b\necho a\n')
    sb.write('d2/b.do', 'redo-ifchange ../d1/a\necho b\n')
    r = sb.redo('d1/a', timeout=TIMEOUT)
    assert r.returncode != 0
    assert cycle_named(r.stderr, ['d1/a', 'd2/b']), r.stderr


def test_cycle_with_keep_going_ends(sb):
    sb.write('a.do', 'redo-ifchange b\necho a\n')
    sb.write('b.do', 'redo-ifchange a\necho b\n')
    sb.write('good.do', 'echo good\n')
    sb.write('all.do', 'redo-ifchange a good\n')
    r = sb.redo('-k', '-j2', 'all', timeout=TIMEOUT)
    assert r.returncode != 0
    assert cycle_named(r.stderr, ['a', 'b']), r.stderr
    assert sb.read('good') == 'good\n'


def test_cycle_that_appears_when_a_do_changes(sb):
    sb.write('a.do', 'redo-ifchange b\necho a\n')
    sb.write('b.do', 'echo b\n')
    sb.redo('a', check=True)
    sb.write('b.do', 'redo-ifchange a\necho b2\n')
    r = sb.ifchange('a', timeout=TIMEOUT)
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr
    assert cycle_named(r.stderr, ['a', 'b']), r.stderr
    assert sb.read('a') == 'a\n' and sb.read('b') == 'b\n'
    r = sb.run('redo-ood', timeout=TIMEOUT)
    assert r.returncode == 0 and 'Traceback' not in r.stderr
    # the cycle removed, the build works again
    sb.write('b.do', 'echo b3\n')
    sb.ifchange('a', check=True, timeout=TIMEOUT)
    assert sb.read('b') == 'b3\n'


def test_stdout_that_cannot_be_kept_is_a_failed_build(sb):
    # Writing stdout (a file, .redo/out/NAME) fails (here: past the file
    # size limit, as on a full disk): the .do fails, exit 1, nothing left.
    sb.write('big.do', 'head -c 200000 /dev/zero\n')
    sb.write('small.do', 'echo small\n')
    p = sb.run('sh', '-c', 'ulimit -f 50 && exec redo -k big small')
    assert p.returncode == 1, p.stderr
    assert 'Traceback' not in p.stderr
    assert 'big failed' in p.stderr
    assert sb.read('small') == 'small\n'
    assert not sb.exists('big')
    assert not sb.exists('.redo/out/big')


@pytest.mark.parametrize('target', ['.redo', '.redo/x', 'sub/.redo/y'])
def test_nothing_in_redo_own_state_directory_is_built(sb, target):
    sb.write('default.do', 'echo built >>"$OLDPWD/runs" 2>/dev/null; echo hi\n')
    sb.write('sub/keep', '')
    p = sb.redo(target)
    assert p.returncode == 1, p.stderr
    assert "redo keeps its state there" in p.stderr and 'Traceback' not in p.stderr
    assert not sb.exists('.redo/.redo') and not sb.exists('.redo/x')
    if target != '.redo':     # which exists now, as all's state directory
        sb.write('all.do', 'redo-ifchange %s\n' % target)
        p = sb.redo('all')
        assert p.returncode == 1
        assert '(needed by all)' in p.stderr


def test_a_project_below_a_directory_named_redo_builds(sb):
    sb.write('.redo/proj/all.do', 'echo hi\n')
    p = sb.redo('all', cwd=sb.path / '.redo' / 'proj')
    assert p.returncode == 0, p.stderr
    assert sb.read('.redo/proj/all') == 'hi\n'


def test_a_lock_file_that_is_a_symlink_to_a_file_works(sb, tmp_path):
    # As a symlink farm (cp -rs, stow) of a tree with .redo makes.
    sb.write('y.do', 'echo hi\n')
    (sb.path / '.redo').mkdir()
    elsewhere = tmp_path / 'locks'
    elsewhere.mkdir()
    (elsewhere / 'y.lock').touch()
    os.symlink(elsewhere / 'y.lock', sb.path / '.redo' / 'y.lock')
    p = sb.run('redo', 'y', timeout=20)
    assert p.returncode == 0, p.stderr
    assert sb.read('y') == 'hi\n'
