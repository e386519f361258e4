"""SPEC §7: state — per directory in .redo/, recfile text, one file per
target, written by rename; a missing, truncated or garbled file is never
fatal; any file name the OS allows round-trips.

Tests read the state files (to check they are recfile text and that odd
names round-trip) but only write them to garble them."""

import os
import re
import subprocess

import pytest

from helpers import no_traceback, strace


# ---------------------------------------------------------------------------
# A small recfile reader, and the data it is checked against
# ---------------------------------------------------------------------------

FIELD = re.compile(rb'^([A-Za-z%][A-Za-z0-9_]*):(?: (.*))?$', re.S)


def parse_rec(data):
    """bytes -> [[(field, value), ...], ...] following the recfile rules:
    `Field: value` lines, `+ ` continuation lines, blank lines between
    records.  Raises ValueError on anything else."""
    records, rec = [], []
    if data and not data.endswith(b'\n'):
        raise ValueError('no final newline')
    for line in data.split(b'\n')[:-1] if data else []:
        if line == b'':
            if rec:
                records.append(rec)
            rec = []
        elif line.startswith(b'+'):
            if not rec or line[1:2] not in (b' ', b''):
                raise ValueError('bad continuation %r' % line)
            f, v = rec[-1]
            rec[-1] = (f, v + b'\n' + line[2:])
        else:
            m = FIELD.match(line)
            if not m:
                raise ValueError('not a field line: %r' % line)
            rec.append((m.group(1), m.group(2) or b''))
    if rec:
        records.append(rec)
    if not records:
        raise ValueError('empty')
    return records


VALID = [
    b'Format: redo.py/1\nTarget: x.o\nResult: ok\n\nDep: x.c\nIdentity: f644:00\n',
    b'Target: a\n+ b\nResult: ok\n\n\n\nDep: c\n',              # a newline in a value
    b'Field:\nOther: a: b: c\n',                                # empty value, colons
]

INVALID = [
    b'',                                                        # empty
    b'Format: redo.py/1\nTarget: x',                            # truncated mid-line
    b'\xff\xfe\x00\x01garbage\n',                               # binary
    b'just some words\n',                                       # not a field
    b'+ continuation first\n',                                  # continuation without field
    b'Format redo.py/1\n',                                      # no colon
]


def test_state_reader_accepts_valid_and_rejects_invalid_samples():
    """The reader used on redo's own files below is able to say no."""
    for data in VALID:
        parse_rec(data)
    for data in INVALID:
        with pytest.raises(ValueError):
            parse_rec(data)
    assert parse_rec(VALID[1])[0][0] == (b'Target', b'a\nb')


def rec_files(d):
    """The state files of targets in directory d: {Target value: path}."""
    out = {}
    sd = os.path.join(d, '.redo')
    for name in sorted(os.listdir(sd)):
        p = os.path.join(sd, name)
        if not os.path.isfile(p) or name == 'top':
            continue
        with open(p, 'rb') as f:
            data = f.read()
        try:
            recs = parse_rec(data)
        except ValueError:
            continue
        target = dict(recs[0]).get(b'Target')
        if target is not None:
            assert target not in out, 'two state files for %r' % target
            out[target] = p
    return out


def read_recs(path):
    with open(path, 'rb') as f:
        return parse_rec(f.read())


# ---------------------------------------------------------------------------
# Where and how the state is kept
# ---------------------------------------------------------------------------

def test_state_is_in_dot_redo_beside_the_targets(sb):
    sb.write('src', '1\n')
    sb.write('sub/x.do', 'redo-ifchange ../src\ncat ../src\n')
    sb.write('all.do', 'redo-ifchange sub/x\n')
    sb.redo('all', check=True)
    assert set(rec_files(sb.path / 'sub')) == {b'x'}
    assert set(rec_files(sb.path)) == {b'all'}
    # nothing else is written beside the targets
    assert sorted(os.listdir(sb.path / 'sub')) == ['.redo', 'x', 'x.do']
    assert sorted(os.listdir(sb.path)) == ['.redo', 'all.do', 'src', 'sub']


def test_state_is_recfile_text_one_file_per_target(sb):
    sb.write('src', '1\n')
    sb.write('a.do', 'redo-ifchange src b\ncat src b\n')
    sb.write('b.do', 'redo-ifcreate nothere\necho b\n')
    sb.write('c.do', 'echo c\n')
    sb.ifchange('a', 'c', check=True)
    files = rec_files(sb.path)
    assert set(files) == {b'a', b'b', b'c'}
    recs = read_recs(files[b'a'])
    assert len(recs) >= 2                       # the build, then dependencies
    values = [v for rec in recs for f, v in rec]
    assert b'src' in values and b'b' in values
    assert b'nothere' in [v for rec in read_recs(files[b'b']) for f, v in rec]
    for p in files.values():
        with open(p, 'rb') as f:
            f.read().decode('utf-8')            # text


def test_state_replaced_by_rename(sb):
    sb.write('x.do', 'echo x\n')
    sb.ifchange('x', check=True)
    path = rec_files(sb.path)[b'x']
    before = os.stat(path).st_ino
    os.link(path, str(sb.path / 'old-state'))  # keeps the old inode alive
    old = (sb.path / 'old-state').read_bytes()
    sb.redo('x', check=True)
    assert os.stat(path).st_ino != before       # a new file, renamed in
    assert (sb.path / 'old-state').read_bytes() == old   # the old one untouched


def test_state_leaves_no_temporary_files(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('y.do', 'echo y >$3\n')
    sb.write('z.do', 'exit 1\n')
    sb.ifchange('x', 'y', check=True)
    sb.ifchange('z', check=False)
    for root, dirs, files in os.walk(sb.path):
        assert not [f for f in files if f.endswith('.tmp')], (root, files)


def test_state_sync_mode_writes_valid_state(sb):
    del sb.env['REDO_NO_SYNC']
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x']
    assert set(rec_files(sb.path)) == {b'x'}


SYNC_CALLS = 'fsync,fdatasync,sync,syncfs,sync_file_range'


@pytest.mark.parametrize('value, synced', [(None, True), ('0', True), ('1', False)],
                         ids=['unset', 'REDO_NO_SYNC=0', 'REDO_NO_SYNC=1'])
def test_state_is_fsynced_unless_redo_no_sync(sb, value, synced):
    if value is None:
        del sb.env['REDO_NO_SYNC']
    else:
        sb.env['REDO_NO_SYNC'] = value
    sb.write('x.do', 'echo x\n')
    p, trace = strace(sb, SYNC_CALLS, 'redo', 'x')
    assert p.returncode == 0, p.stderr
    assert sb.read('x') == 'x\n'
    state = [ln for ln in trace if '/.redo/x.rec>' in ln]
    if synced:
        assert state, '\n'.join(trace)
    else:
        assert trace == [], '\n'.join(trace)


def test_two_crashes_in_a_row_between_state_and_rename_still_rebuild(sb):
    # Killed between writing the state and renaming the output into place,
    # twice: Previous must still be the file that is there (the first
    # build's), not the output the first crashed build never put in place.
    import shutil
    if shutil.which('strace') is None:
        pytest.skip('no strace')
    sb.write('x.do', 'echo one\n')
    sb.ifchange('x', check=True)
    sb.write('x.do', 'echo two\n')
    for _ in range(2):
        # the run's second rename is the output's (the first, the state's)
        p = sb.run('strace', '-qq', '-o', '/dev/null', '-e', 'trace=rename',
                   '-e', 'inject=rename:signal=SIGKILL:when=2', 'redo-ifchange', 'x')
        if p.returncode not in (-9, 137):
            pytest.skip('strace cannot inject here: %s' % p.stderr[-200:])
        assert sb.read('x') == 'one\n'
    p = sb.ifchange('x', check=True)
    assert 'modified outside redo' not in p.stderr, p.stderr
    assert sb.read('x') == 'two\n'


# ---------------------------------------------------------------------------
# Missing, truncated, garbled or foreign state: never fatal, "never built"
# ---------------------------------------------------------------------------

def virtual_tree(sb):
    """all is a target with no output file: its state is all that says it
    was built."""
    sb.write('src', '1\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange src\n')
    sb.ifchange('all', check=True)
    return rec_files(sb.path)[b'all']


def garble(kind, path, sb):
    good = open(path, 'rb').read()
    if kind == 'missing':
        os.unlink(path)
        return
    if kind == 'directory':
        os.unlink(path)
        os.mkdir(path)
        return
    if kind == 'dangling-symlink':
        os.unlink(path)
        os.symlink('nowhere', path)
        return
    data = {
        'empty': b'',
        'truncated-half': good[:len(good) // 2],
        'truncated-first-line': good[:5],
        'truncated-mid-last-line': good.rstrip(b'\n')[:-3],
        'truncated-at-record-boundary': good[:good.rindex(b'\n\nDep: ') + 2],
        'binary': bytes(range(256)) * 4,
        'invalid-utf8': good.replace(b'Target', b'Tar\xffget'),
        'wrong-format': re.sub(rb'(?m)^Format: .*$', b'Format: something-else/9', good),
        'no-format': re.sub(rb'(?m)^Format: .*\n', b'', good),
        'foreign-recfile': b'%rec: Book\n\nTitle: GNU Emacs Manual\nAuthor: RMS\n',
        'other-target': good.replace(b'Target: all', b'Target: someone-else'),
        'field-values-garbled': re.sub(rb'(?m)^(Output|Exit|Started|Seconds|Slot): .*$',
                                       rb'\1: ???', good),
        'unknown-record': good + b'\nWhatIsThis: ?\n',
        'dep-without-identity': re.sub(rb'(?m)^(Identity|Fingerprint): .*\n', b'', good),
        'continuation-first': b'+ x\n' + good,
        'only-blank-lines': b'\n\n\n',
        'nul-bytes': good.replace(b'\n', b'\0'),
        'huge-line': b'Format: ' + b'x' * 200000 + b'\n',
        'INVALID-samples': b''.join(INVALID[1:]),
    }[kind]
    with open(path, 'wb') as f:
        f.write(data)


GARBLINGS = ['missing', 'dangling-symlink', 'empty', 'truncated-half',
             'truncated-first-line',
             'truncated-mid-last-line',
             'truncated-at-record-boundary',
             'binary',
             'invalid-utf8', 'wrong-format', 'no-format', 'foreign-recfile',
             'other-target', 'field-values-garbled', 'unknown-record',
             'dep-without-identity', 'continuation-first', 'only-blank-lines',
             'nul-bytes', 'huge-line', 'INVALID-samples']


@pytest.mark.parametrize('kind', GARBLINGS)
def test_garbled_state_means_rebuild(sb, kind):
    path = virtual_tree(sb)
    garble(kind, path, sb)
    p = sb.ifchange('all')
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert sb.log('runs') == ['all', 'all']
    # and the state written by that rebuild is good again
    sb.ifchange('all', check=True)
    assert sb.log('runs') == ['all', 'all']


def test_state_path_taken_by_a_directory_is_a_clean_error(sb):
    path = virtual_tree(sb)
    garble('directory', path, sb)
    p = sb.ifchange('all')
    no_traceback(p)
    assert len([ln for ln in p.stderr.split('\n') if ln.startswith('redo: ')]) == 1, p.stderr


@pytest.mark.parametrize('kind', ['truncated-half', 'binary', 'wrong-format', 'directory'])
def test_garbled_state_never_fatal_for_listing_commands(sb, kind):
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange src x\n')
    sb.write('src', '1\n')
    sb.ifchange('all', check=True)
    garble(kind, rec_files(sb.path)[b'all'], sb)
    garble(kind, rec_files(sb.path)[b'x'], sb)
    for args in (['redo-targets'], ['redo-sources'], ['redo-ood'], ['redo-dot'],
                 ['redo-affects', 'src'], ['redo-log', '-r', 'all'], ['redo-cleanup']):
        no_traceback(sb.run(*args))


@pytest.mark.parametrize('kind', ['truncated-half', 'binary'])
def test_garbled_state_of_existing_target_means_rebuild(sb, kind):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.ifchange('x', check=True)
    garble(kind, rec_files(sb.path)[b'x'], sb)
    p = sb.ifchange('x')
    no_traceback(p)
    assert p.returncode == 0
    assert sb.log('runs') == ['x', 'x']


def test_missing_state_of_existing_target_is_never_fatal(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.write('a.do', 'redo-ifchange x\ncat x\n')
    sb.ifchange('a', check=True)
    os.unlink(rec_files(sb.path)[b'x'])
    for p in (sb.ifchange('a'), sb.redo('x'), sb.run('redo-ood'), sb.run('redo-dot')):
        no_traceback(p)
        assert p.returncode == 0, p.stderr
    assert sb.read('x') == 'x\n'


def test_whole_state_directory_removed_is_never_fatal(sb):
    sb.write('src', '1\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange src\n')
    sb.ifchange('all', check=True)
    import shutil
    shutil.rmtree(sb.path / '.redo')
    p = sb.ifchange('all')
    no_traceback(p)
    assert p.returncode == 0
    assert sb.log('runs') == ['all', 'all']


# ---------------------------------------------------------------------------
# Any name the OS allows round-trips: build, state, every listing command
# ---------------------------------------------------------------------------

def run_b(sb, *args, cwd=None):
    """As sb.run, with bytes arguments and bytes output."""
    return subprocess.run([a if isinstance(a, bytes) else os.fsencode(a) for a in args],
                          cwd=str(cwd or sb.path), env=sb.env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def has_entry(out, name):
    """name is one whole line of out (names may hold newlines)."""
    return (b'\n' + name + b'\n') in (b'\n' + out)


def sh_quote(b):
    return b"'" + b.replace(b"'", b"'\\''") + b"'"


ODD_NAMES = {
    'space': b'with space',
    'leading-space': b' leading',
    'trailing-space': b'trailing ',
    'unicode': 'ünïcödé-名前'.encode(),
    'quotes': b'it\'s "quoted"',
    'newline': b'new\nline',
    'newline-plus': b'a\n+ b\n+c',
    'leading-dash': b'-dash',
    'double-dash': b'--',
    'tab': b'tab\there',
    'backslash': b'back\\slash',
    'shell-chars': b'$HOME;*?[a]`x`|&',
    'colon-field': b'Target: fake',
    'latin1-bytes': b'caf\xe9',
    'long-200': b'L' * 200,
}


def odd_name_ids():
    return list(ODD_NAMES)


DEFAULT_DO = 'echo run >>"$(dirname "$0")/runs"\nprintf "%s" "$1"\n'


def check_build_round_trip(sb, name):
    """Build a target with an odd name; its state must be read back."""
    sb.write('default.do', DEFAULT_DO)
    # its content is its own name, as the .do got it in $1
    p = run_b(sb, 'redo-ifchange', '--', name)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    with open(os.path.join(os.fsencode(sb.path), name), 'rb') as f:
        assert f.read() == name
    # the state was read back: nothing is rebuilt
    p = run_b(sb, 'redo-ifchange', '--', name)
    assert p.returncode == 0, p.stderr
    assert sb.log('runs') == ['run']
    # its state file names it exactly
    files = rec_files(sb.path)
    assert name in files, list(files)


@pytest.mark.parametrize('key', odd_name_ids())
def test_odd_names_round_trip_through_state(sb, key):
    check_build_round_trip(sb, ODD_NAMES[key])


def test_odd_names_round_trip_through_listing_commands(sb):
    """Every odd name at once (one sandbox, to keep it fast): each is a
    target and, in src/, a source of one dependent; every listing command
    must name each exactly."""
    names = list(ODD_NAMES.values())
    sb.write('default.do', DEFAULT_DO)
    os.makedirs(sb.path / 'src')
    base = os.fsencode(sb.path)
    do = [b'echo all >>runs\n']
    for i, name in enumerate(names):
        with open(os.path.join(base, b'src', name), 'wb') as f:
            f.write(b'1')
        dep = b'dep%02d' % i
        (sb.path / (dep.decode() + '.do')).write_bytes(
            b'echo dep >>runs\nredo-ifchange -- ' + sh_quote(name) + b' '
            + sh_quote(b'src/' + name) + b'\n')
        do.append(b'redo-ifchange ' + dep + b'\n')
    (sb.path / 'all.do').write_bytes(b''.join(do))
    p = run_b(sb, 'redo-ifchange', 'all')
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    bad = []

    def expect(ok, what):
        if not ok:
            bad.append(what)

    targets = run_b(sb, 'redo-targets').stdout
    sources = run_b(sb, 'redo-sources').stdout
    dot = run_b(sb, 'redo-dot')
    assert dot.returncode == 0, dot.stderr
    assert run_b(sb, 'redo-ood').stdout == b''
    for i, name in enumerate(names):
        expect(has_entry(targets, name), ('redo-targets', name))
        expect(has_entry(sources, b'src/' + name), ('redo-sources', name))
        aff = run_b(sb, 'redo-affects', '--', name).stdout
        expect(sorted(aff.split(b'\n')) == [b'', b'all', b'dep%02d' % i], ('redo-affects', name, aff))
        w = run_b(sb, 'redo-whichdo', '--', name)
        expect(w.returncode == 0 and w.stdout.split(b'\n')[-2] == b'default.do',
               ('redo-whichdo', name))
        expect(run_b(sb, 'redo-log', '--', name).returncode == 0, ('redo-log', name))
        if not re.search(rb'["\\\n]', name):
            expect(b'"' + name + b'"' in dot.stdout, ('redo-dot', name))
    # a change to one odd-named source: exactly its dependent is out of date
    for i, name in enumerate(names):
        with open(os.path.join(base, b'src', name), 'wb') as f:
            f.write(b'2')
        ood = run_b(sb, 'redo-ood').stdout
        expect(sorted(ood.split(b'\n')) == sorted([b'', b'all', b'dep%02d' % i]), ('redo-ood', name, ood))
        with open(os.path.join(base, b'src', name), 'wb') as f:
            f.write(b'1')
        if i >= 3:
            break
    assert bad == []
    # every source changed: every dependent rebuilds, no odd-named target does
    for name in names:
        with open(os.path.join(base, b'src', name), 'wb') as f:
            f.write(b'3')
    p = run_b(sb, 'redo-ifchange', 'all')
    assert p.returncode == 0, p.stderr
    assert sb.log('runs').count('dep') == 2 * len(names)
    assert sb.log('runs').count('run') == len(names)
    # and redo-cleanup keeps all of it built
    assert run_b(sb, 'redo-cleanup').returncode == 0
    p = run_b(sb, 'redo-ifchange', 'all')
    no_traceback(p)
    assert sb.log('runs').count('all') == 2


def test_long_name_250_bytes_round_trips(sb):
    check_build_round_trip(sb, b'M' * 250)


def test_long_name_255_bytes_round_trips(sb):
    check_build_round_trip(sb, b'N' * 255)


def test_odd_name_with_its_own_do_file(sb):
    name = 'my file ü.txt'
    sb.write(name + '.do', 'echo "[$1][$2]"\n')
    sb.ifchange(name, check=True)
    assert sb.read(name) == '[%s][%s]\n' % (name, name)
    sb.write('default.txt.do', 'echo "[$1][$2]"\n')
    sb.ifchange('other ü.txt', check=True)
    assert sb.read('other ü.txt') == '[other ü.txt][other ü]\n'


def test_odd_name_in_odd_directory(sb):
    d = 'dir with "odd"\nname'
    sb.write(d + '/x.do', 'echo x >>runs\nredo-ifchange ../src\ncat ../src\n')
    sb.write('src', '1\n')
    sb.write('all.do', 'redo-ifchange %s\n' % sh_quote((d + '/x').encode()).decode())
    sb.ifchange('all', check=True)
    sb.ifchange('all', check=True)
    assert sb.log('%s/runs' % d) == ['x']
    p = run_b(sb, 'redo-targets')
    assert has_entry(p.stdout, (d + '/x').encode()), p.stdout


def deep_dir(base, length):
    """The path of a directory (not made) under base whose absolute path is
    length bytes long."""
    p = str(base)
    while len(p) < length:
        take = min(200, length - len(p) - 1)
        if length - len(p) - 1 - take == 1:
            take -= 1                 # no component of length 0 next
        p += '/' + 'd' * take
    assert len(p) == length
    return p


PATH_MAX = 4096


def near_path_max(sb):
    """A project built in a short directory, then moved to one so deep that
    the state files fit under PATH_MAX but not their temporaries (name.rec
    + .PID.tmp) nor the summary's."""
    sb.write('proj/src', 'one\n')
    sb.write('proj/x.do', 'echo x >>runs\nredo-ifchange src\ncat src\n')
    sb.ifchange('x', cwd=sb.path / 'proj', check=True)
    deep = deep_dir(sb.path, PATH_MAX - 1 - len('/.redo/x.rec') - 5)
    os.makedirs(os.path.dirname(deep))
    os.rename(sb.path / 'proj', deep)
    return deep


def test_near_path_max_a_no_op_succeeds(sb):
    # Nothing needs writing but the cache and refreshed stamps: both
    # best-effort.
    deep = near_path_max(sb)
    os.unlink(deep + '/.redo/summary')
    st = os.stat(deep + '/src')
    os.utime(deep + '/src', ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10 ** 9))
    for args in (['redo-ifchange', 'x'], ['redo-ood'], ['redo-ifchange', 'x']):
        p = sb.run(*args, cwd=deep)
        assert (p.returncode, p.stdout, p.stderr) == (0, '', ''), args
    assert sb.read(deep + '/runs') == 'x\n'


def test_near_path_max_a_build_that_cannot_keep_its_state_is_one_clear_error(sb):
    deep = near_path_max(sb)
    sb.write(deep + '/src', 'two\n')
    p = sb.run('redo-ifchange', 'x', cwd=deep)
    no_traceback(p)
    assert p.returncode == 1, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith('redo: ')]
    assert len(errors) == 1 and 'File name too long' in errors[0], p.stderr
    assert sb.read(deep + '/x') == 'one\n'       # the old target stays


# --- the summary: a cache of parsed state files, never the truth ------------

def summary_piece(obj):
    """A piece of a summary file as redo writes it: length, marshal."""
    import marshal
    data = obj if isinstance(obj, bytes) else marshal.dumps(obj)
    return len(data).to_bytes(8, 'little') + data


@pytest.mark.parametrize('garbage', [
    b'', b'not marshal at all', b'\x00' * 64, None,
    b'redo.py summary 2\n', b'redo.py summary 2\n\xff\xff\xff\xff\xff\xff\xff\x7f',
    b'redo.py summary 2\n' + summary_piece(b'not marshal data'),
    b'redo.py summary 2\n' + summary_piece(b'N.'),
    # well-formed pieces of the wrong shape
    b'redo.py summary 2\n' + summary_piece({'t': 5, 'all': ('x',)}),
    b'redo.py summary 2\n' + summary_piece({'t': ('fp', b'x'), 'all': ()}),
    b'redo.py summary 2\n' + summary_piece([1, 2])])
def test_summary_garbled_or_missing_is_only_a_cache(sb, garbage):
    sb.write('src', 'one\n')
    sb.write('t.do', 'echo t >>runs\nredo-ifchange src\ncat src\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange t\ncat t\n')
    sb.ifchange('all', check=True)
    summary = sb.path / '.redo' / 'summary'
    assert summary.exists()
    if garbage is None:
        summary.unlink()
    else:
        summary.write_bytes(garbage)
    p = sb.ifchange('all')
    assert p.returncode == 0 and 'Traceback' not in p.stderr, p.stderr
    assert sb.log('runs') == ['all', 't']          # nothing rebuilt
    sb.write('src', 'two\n')
    sb.ifchange('all', check=True)
    assert sb.log('runs') == ['all', 't', 't', 'all']
    assert sb.read('all') == 'two\n'


def test_summary_of_an_older_state_is_not_trusted(sb):
    # A summary saved before the last build describes the old state files:
    # their fingerprints no longer match, so the state files decide.
    sb.write('src', 'one\n')
    sb.write('t.do', 'echo t >>runs\nredo-ifchange src\ncat src\n')
    sb.ifchange('t', check=True)
    old = (sb.path / '.redo' / 'summary').read_bytes()
    sb.write('src', 'two\n')
    sb.ifchange('t', check=True)
    (sb.path / '.redo' / 'summary').write_bytes(old)
    sb.ifchange('t', check=True)
    assert sb.log('runs') == ['t', 't']
    assert sb.read('t') == 'two\n'


@pytest.mark.parametrize('which', ['summary', 't.rec'])
def test_a_fifo_in_redo_dir_does_not_hang_a_run(sb, which):
    # Opening a fifo for reading waits for a writer, for good: redo reads
    # only regular files there.
    sb.write('src', 'one\n')
    sb.write('t.do', 'echo t >>runs\nredo-ifchange src\ncat src\n')
    sb.ifchange('t', check=True)
    path = sb.path / '.redo' / which
    path.unlink()
    os.mkfifo(path)
    p = sb.run('redo-ifchange', 't', timeout=20)
    assert 'Traceback' not in p.stderr
    assert p.returncode == 0, p.stderr
    assert sb.read('t') == 'one\n'
    sb.run('redo-ood', timeout=20, check=True)
    sb.run('redo-targets', timeout=20, check=True)


@pytest.mark.parametrize('how', ['loop', 'unreadable'])
def test_a_redo_dir_that_cannot_be_listed_is_an_error(sb, how):
    # Its targets must not pass for sources (up to date, exit 0).
    if how == 'unreadable' and os.geteuid() == 0:
        pytest.skip('root reads any directory')
    sb.write('src', 'v1\n')
    sb.write('a.do', 'redo-ifchange src\ncat src\n')
    sb.redo('a', check=True)
    sb.write('src', 'v2\n')
    redo_dir = sb.path / '.redo'
    if how == 'loop':
        redo_dir.rename(sb.path / 'saved')
        os.symlink('.redo', redo_dir)
    else:
        os.chmod(redo_dir, 0o311)
    try:
        p = sb.ifchange('a')
        assert p.returncode != 0, p.stderr
        assert 'Traceback' not in p.stderr
        assert '.redo' in p.stderr
        assert sb.read('a') == 'v1\n'
    finally:
        if how != 'loop':
            os.chmod(redo_dir, 0o755)
