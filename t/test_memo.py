"""The memo of a no-op (redo.py's §9): a `redo-ifchange` that finds what
the last run observed unchanged exits without checking again.  Each test
here is a change a user makes between two builds, and checks that the
build after it does what it would do with no memo at all: the memo may
only ever skip work that had nothing to do.

Every .do file appends its target's name to `log` when it runs."""

import os
import shutil

from helpers import strace


def do(sb, name, body):
    sb.write(name, 'echo "$1" >>"%s/log"\n%s' % (sb.path, body))


def runs(sb):
    """The targets whose .do ran since the last call, sorted."""
    names = sb.log('log')
    if sb.exists('log'):
        os.unlink(sb.path / 'log')
    return sorted(names)


def project(sb):
    """all <- a, b; a <- src-a; b <- src-b; all is virtual."""
    sb.write('src-a', 'A\n')
    sb.write('src-b', 'B\n')
    do(sb, 'a.do', 'redo-ifchange src-a; cat src-a\n')
    do(sb, 'b.do', 'redo-ifchange src-b; cat src-b\n')
    do(sb, 'all.do', 'redo-ifchange a b\n')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['a', 'all', 'b']


def memos(sb, d='.'):
    p = sb.path / d / '.redo' / 'memo'
    return sorted(os.listdir(p)) if p.exists() else []


def test_no_op_after_a_build_reads_no_state_and_writes_nothing(sb):
    project(sb)
    assert len(memos(sb)) == 1
    p, lines = strace(sb, 'openat,open,rename,renameat,renameat2,unlink,unlinkat,mkdir',
                      'redo-ifchange', 'all')
    assert p.returncode == 0, p.stderr
    assert p.stderr == ''
    ours = [x for x in lines if str(sb.path) in x and 'ENOENT' not in x]
    assert not any('.rec' in x or 'summary' in x for x in ours), ours
    assert not any(x.split('(')[0].split()[-1] in ('rename', 'renameat', 'renameat2', 'unlink',
                                                   'unlinkat', 'mkdir') for x in ours), ours
    assert any('/.redo/memo/' in x for x in ours), ours
    assert runs(sb) == []


def test_edited_source_is_seen(sb):
    project(sb)
    sb.write('src-a', 'A2\n')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['a', 'all']
    assert sb.read('a') == 'A2\n'
    sb.ifchange('all', check=True)
    assert runs(sb) == []


def test_edit_with_same_size_and_mtime_put_back_is_seen(sb):
    project(sb)
    st = os.stat(sb.path / 'src-b')
    sb.write('src-b', 'C\n')
    os.utime(sb.path / 'src-b', ns=(st.st_atime_ns, st.st_mtime_ns))
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all', 'b']
    assert sb.read('b') == 'C\n'


def test_touched_source_rebuilds_nothing_and_memo_comes_back(sb):
    project(sb)
    st = os.stat(sb.path / 'src-a')
    os.utime(sb.path / 'src-a', ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    sb.ifchange('all', check=True)
    assert runs(sb) == []
    p, lines = strace(sb, 'openat,open', 'redo-ifchange', 'all')
    assert p.returncode == 0
    assert not any('.rec' in x for x in lines if 'ENOENT' not in x)


def test_deleted_target_is_built_again(sb):
    project(sb)
    os.unlink(sb.path / 'a')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['a']          # the same content: all need not run
    assert sb.read('a') == 'A\n'


def test_do_file_edited_is_seen(sb):
    project(sb)
    do(sb, 'a.do', 'redo-ifchange src-a; echo new\n')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['a', 'all']
    assert sb.read('a') == 'new\n'


def test_new_do_file_that_would_build_it_is_seen(sb):
    sb.write('src', 'S\n')
    do(sb, 'default.o.do', 'redo-ifchange src; echo default\n')
    do(sb, 'top.do', 'redo-ifchange x.o\n')
    sb.ifchange('top', check=True)
    assert runs(sb) == ['top', 'x.o']
    sb.ifchange('top', check=True)
    assert runs(sb) == []
    do(sb, 'x.o.do', 'echo own\n')
    sb.ifchange('top', check=True)
    assert runs(sb) == ['top', 'x.o']
    assert sb.read('x.o') == 'own\n'


def test_file_asked_for_with_ifcreate_appearing_is_seen(sb):
    do(sb, 'conf.do', 'if [ -e local.conf ]; then redo-ifchange local.conf; cat local.conf\n'
               'else redo-ifcreate local.conf; echo default; fi\n')
    sb.ifchange('conf', check=True)
    sb.ifchange('conf', check=True)
    assert runs(sb) == ['conf']
    sb.write('local.conf', 'x\n')
    sb.ifchange('conf', check=True)
    assert runs(sb) == ['conf']
    assert sb.read('conf') == 'x\n'


def test_virtual_dependency_rebuilt_by_another_command_is_seen(sb):
    # `redo gen` changes nothing but gen's state (it has no file): the
    # memo of `redo-ifchange all` must still see that all depends on it.
    do(sb, 'gen.do', 'true\n')
    do(sb, 'all.do', 'redo-ifchange gen\n')
    sb.ifchange('all', check=True)
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all', 'gen']
    sb.redo('gen', check=True)
    assert runs(sb) == ['gen']
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all']


def test_target_marked_with_redo_rebuild_is_built_again(sb):
    project(sb)
    sb.run('redo-rebuild', 'b', check=True)
    sb.ifchange('all', check=True)
    assert runs(sb) == ['b']          # the same content: all need not run


def test_state_file_written_over_in_place_is_seen(sb):
    # A state file rewritten in place (not renamed) leaves .redo's own
    # times alone: the memo holds each state file's fingerprint too.  Here
    # a's state is made to say its last build failed: a is built again.
    project(sb)
    state = sb.path / '.redo' / 'a.rec'
    text = state.read_bytes()
    assert b'Result: ok\n' in text
    with open(state, 'r+b') as f:
        f.write(text.replace(b'Result: ok\n', b'Result: failed\n'))
        f.truncate()
    sb.ifchange('all', check=True)
    assert runs(sb) == ['a']


def test_always_target_runs_every_time(sb):
    do(sb, 'stamp.do', 'redo-always; date +%N\n')
    do(sb, 'all.do', 'redo-ifchange stamp\n')
    for _ in range(3):
        sb.ifchange('all', check=True)
        assert runs(sb) == ['all', 'stamp']


def test_failed_build_is_tried_again(sb):
    sb.write('ok', '0\n')
    do(sb, 'x.do', 'redo-ifchange ok; read v <ok; [ "$v" = 1 ]; echo yes\n')
    sb.ifchange('x', check=False)
    sb.ifchange('x', check=False)
    assert runs(sb) == ['x', 'x']
    sb.write('ok', '1\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert runs(sb) == ['x']


def test_hand_edited_target_is_warned_about_every_time(sb):
    project(sb)
    sb.write('a', 'by hand\n')
    for i in range(2):
        p = sb.ifchange('all', check=True)
        assert 'modified outside redo' in p.stderr
        assert runs(sb) == (['all'] if i == 0 else [])   # all reads a's new text
    assert sb.read('a') == 'by hand\n'


def test_symlinked_source_pointed_elsewhere_is_seen(sb):
    sb.write('v1', 'one\n')
    sb.write('v2', 'two\n')
    os.symlink('v1', sb.path / 'cur')
    do(sb, 'out.do', 'redo-ifchange cur; cat cur\n')
    sb.ifchange('out', check=True)
    sb.ifchange('out', check=True)
    assert runs(sb) == ['out']
    os.unlink(sb.path / 'cur')
    os.symlink('v2', sb.path / 'cur')
    sb.ifchange('out', check=True)
    assert runs(sb) == ['out']
    assert sb.read('out') == 'two\n'


def test_file_the_link_points_to_edited_is_seen(sb):
    sb.write('v1', 'one\n')
    os.symlink('v1', sb.path / 'cur')
    do(sb, 'out.do', 'redo-ifchange cur; cat cur\n')
    sb.ifchange('out', check=True)
    sb.write('v1', 'uno\n')
    sb.ifchange('out', check=True)
    assert sb.read('out') == 'uno\n'


def test_target_in_a_subdirectory_built_from_there_is_seen(sb):
    sb.write('lib/src', '1\n')
    do(sb, 'lib/lib.a.do', 'redo-ifchange src; cat src\n')
    do(sb, 'all.do', 'redo-ifchange lib/lib.a\n')
    sb.ifchange('all', check=True)
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all', 'lib.a']
    sb.write('lib/src', '2\n')
    sb.ifchange('lib.a', cwd=sb.path / 'lib', check=True)
    assert runs(sb) == ['lib.a']
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all']


def test_debug_still_says_why_after_a_memo(sb):
    project(sb)
    p = sb.ifchange('-d', 'all', check=True)
    assert 'up to date' in p.stderr


def test_other_top_dir_is_another_memo(sb):
    # REDO_TOP_DIR changes where .do files are looked for: a memo made
    # without it does not answer for a run with it.  Here sub/x is built
    # by ../default.do; with the top at sub/, nothing can build it, and
    # the file it is becomes a source (its state goes).
    do(sb, 'default.do', 'echo top-default\n')
    do(sb, 'sub/all.do', 'redo-ifchange x\n')
    sub = sb.path / 'sub'
    sb.ifchange('all', cwd=sub, check=True)
    sb.ifchange('all', cwd=sub, check=True)
    assert runs(sb) == ['all', 'sub/x']
    assert (sub / '.redo' / 'x.rec').exists()
    sb.ifchange('all', cwd=sub, env={'REDO_TOP_DIR': str(sub)}, check=True)
    assert not (sub / '.redo' / 'x.rec').exists()
    assert sb.read('sub/x') == 'top-default\n'


def test_memo_that_cannot_be_written_costs_nothing(sb):
    project(sb)
    shutil.rmtree(sb.path / '.redo' / 'memo')
    (sb.path / '.redo' / 'memo').write_text('not a directory\n')
    sb.write('src-a', 'A3\n')
    p = sb.ifchange('all', check=True)
    assert sorted(p.stderr.splitlines()) == ['redo    a', 'redo  all']
    assert runs(sb) == ['a', 'all']
    sb.ifchange('all', check=True)
    assert runs(sb) == []


def test_garbled_memo_is_ignored(sb):
    project(sb)
    for name in memos(sb):
        (sb.path / '.redo' / 'memo' / name).write_bytes(b'redo.py memo 1\n\x00garbage')
    sb.write('src-b', 'B2\n')
    p = sb.ifchange('all', check=True)
    assert sorted(p.stderr.splitlines()) == ['redo    b', 'redo  all']
    assert runs(sb) == ['all', 'b']


def test_file_asked_for_with_ifcreate_then_built_in_the_same_run_is_seen(sb):
    # u was up to date when checked (no conf); then the same run built
    # conf.  The next run must build u again: conf exists now.
    do(sb, 'u.do', 'if [ -e conf ]; then redo-ifchange conf; cat conf\n'
                   'else redo-ifcreate conf; echo default; fi\n')
    do(sb, 'conf.do', 'echo generated\n')
    do(sb, 'all.do', 'redo-ifchange u\nredo-ifchange conf\n')
    sb.ifchange('u', check=True)
    assert runs(sb) == ['u']
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all', 'conf']
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all', 'u']
    assert sb.read('u') == 'generated\n'


def test_do_file_built_in_the_run_after_its_target_was_checked_is_seen(sb):
    # t was up to date (built by default.do) when checked; then the same
    # run built t.do itself.  The next run must build t with it.
    do(sb, 'default.do', 'echo by-default\n')
    sb.write('t.do.do', 'echo "echo \\$1 >>\\"%s/log\\"; echo own"\n' % sb.path)
    do(sb, 'all.do', 'redo-ifchange t\nredo-ifchange t.do\n')
    sb.ifchange('t', check=True)
    assert runs(sb) == ['t']
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all']
    assert sb.exists('t.do')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all', 't']
    assert sb.read('t') == 'own\n'


def test_memo_holds_where_redo_is_a_symlink(sb, tmp_path_factory):
    # .redo as a symlink to a directory elsewhere (state kept out of the
    # tree): the memo is written and must be usable, and still see a change
    # made in the directory the link points to.
    state = tmp_path_factory.mktemp('state')
    os.symlink(state, sb.path / '.redo')
    project(sb)
    sb.ifchange('all', check=True)
    p, lines = strace(sb, 'openat,open', 'redo-ifchange', 'all')
    assert p.returncode == 0, p.stderr
    assert not any('.rec' in x or 'summary' in x for x in lines if 'ENOENT' not in x), \
        'the memo did not hold: the state was read'
    assert runs(sb) == []
    sb.write('src-a', 'A2\n')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['a', 'all']


def test_memo_left_half_written_by_a_killed_run_goes(sb):
    # A run killed while it wrote its memo leaves NAME.PID.tmp: the next
    # memo written there, or redo-cleanup, removes it (not a live one's).
    project(sb)
    memo_dir = sb.path / '.redo' / 'memo'
    dead = memo_dir / ('0' * 32 + '.999999999.tmp')
    live = memo_dir / ('1' * 32 + '.%d.tmp' % os.getpid())
    dead.write_bytes(b'half')
    live.write_bytes(b'half')
    sb.write('src-a', 'A2\n')
    sb.ifchange('all', check=True)
    assert not dead.exists()
    assert live.exists()
    dead.write_bytes(b'half')
    sb.run('redo-cleanup', check=True)
    assert not dead.exists()
    assert live.exists()


def test_file_a_do_changes_before_another_target_looks_at_it_is_seen(sb):
    # a.do appends to side, which b depends on; a is built before b is
    # checked.  The memo of the last run no longer holds (sub/src changed
    # after side was found unchanged in it): the check must see side as
    # the .do left it, as it would with no memo, not as the memo found it.
    sb.write('sub/src', '1\n')
    sb.write('side', '0\n')
    do(sb, 'a.do', 'redo-ifchange sub/src; cat sub/src; echo more >>side\n')
    do(sb, 'b.do', 'redo-ifchange side; cat side\n')
    do(sb, 'all.do', 'redo-ifchange a b\n')
    env = {'REDO_JOBS': '1'}
    sb.ifchange('all', check=True, env=env)
    assert runs(sb) == ['a', 'all', 'b']
    sb.write('sub/src', '2\n')
    sb.ifchange('all', check=True, env=env)
    assert runs(sb) == ['a', 'all', 'b']
    assert sb.read('b') == sb.read('side')
    sb.ifchange('all', check=True, env=env)
    assert runs(sb) == []


def test_do_file_a_do_writes_before_its_target_is_checked_is_seen(sb):
    # a.do writes c.do (not a target: a file it makes on the side) before
    # c is checked; the memo of the last run found c.do absent.  c must
    # be built with it in this run, as with no memo.
    sb.write('sub/src', '1\n')
    do(sb, 'default.do', 'echo by-default\n')
    do(sb, 'a.do', 'redo-ifchange sub/src; cat sub/src\n'
                   'if [ "$(cat sub/src)" = 2 ]; then echo "echo own" >c.do; fi\n')
    do(sb, 'all.do', 'redo-ifchange a c\n')
    env = {'REDO_JOBS': '1'}
    sb.ifchange('all', check=True, env=env)
    assert sb.read('c') == 'by-default\n'
    sb.write('sub/src', '2\n')
    sb.ifchange('all', check=True, env=env)
    assert sb.read('c') == 'own\n'


def test_memo_cut_short_is_not_used(sb):
    # A memo that lost its end (a crash before its blocks reached the disk)
    # may lack the fingerprints of the .redo directories: it never holds.
    project(sb)
    for name in memos(sb):
        p = sb.path / '.redo' / 'memo' / name
        data = p.read_bytes()
        p.write_bytes(data[:-9])          # the end marker and its length
    p, lines = strace(sb, 'openat,open', 'redo-ifchange', 'all')
    assert p.returncode == 0, p.stderr
    assert any('summary' in x or '.rec' in x for x in lines if 'ENOENT' not in x), \
        'a memo cut short was used'
    assert runs(sb) == []
