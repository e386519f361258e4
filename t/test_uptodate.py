"""SPEC §4 Up to date: when a target is rebuilt, and when it is not.

Every .do file here appends its target's name to the file `log` when it
runs, so `sb.log('log')` tells which .do files ran.  File times are moved
with os.utime and explicit nanosecond values, never by sleeping."""

import os
import re
import shutil
import time

import pytest

from conftest import Sandbox
from helpers import read_only_view, strace, whole_second_fs

SEC = 10 ** 9


def do(sb, name, body, log=True):
    """Writes name.do (or any .do file) that logs its run, then runs body."""
    target = name[:-3] if name.endswith('.do') else name
    text = ('echo %s >>"%s/log"\n' % (target, sb.path) if log else '') + body
    sb.write(name if name.endswith('.do') else name + '.do', text)


def runs(sb):
    """The names logged since the last call, and clears the log."""
    names = sb.log('log')
    if sb.exists('log'):
        os.unlink(sb.path / 'log')
    return names


def shift_times(path, delta_ns):
    """Moves atime and mtime of path by delta_ns, as `touch` would."""
    st = os.lstat(path)
    os.utime(path, ns=(st.st_atime_ns + delta_ns, st.st_mtime_ns + delta_ns),
             follow_symlinks=False)


def state_text(sb, directory='.'):
    """Everything redo keeps under directory/.redo, as one string."""
    out = []
    for d, dirs, files in os.walk(sb.path / directory / '.redo'):
        for f in files:
            with open(os.path.join(d, f), 'rb') as h:
                out.append(h.read().decode('utf-8', 'replace'))
    return '\n'.join(out)


# --- the reasons to be out of date -------------------------------------------

def test_never_built_target_is_built(sb):
    do(sb, 'a', 'echo built\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'built\n'
    assert runs(sb) == ['a']
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_last_build_failed_is_rebuilt_next_time(sb):
    # Nothing that a.do depends on changes between the two runs: only the
    # failure of the first build makes the second one run it again.
    do(sb, 'a', 'test -e go\necho ok\n')
    sb.ifchange('a', check=False)
    assert runs(sb) == ['a']
    assert not sb.exists('a')
    sb.write('go', '')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'ok\n'
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_last_build_failed_keeps_old_target_and_rebuilds(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\ntest ! -e fail\n')
    sb.write('src', 'one\n')
    sb.ifchange('a', check=True)
    sb.write('fail', '')
    sb.write('src', 'two\n')
    sb.ifchange('a', check=False)
    assert sb.read('a') == 'one\n'
    runs(sb)
    os.unlink(sb.path / 'fail')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'two\n'


def test_dependency_content_changed_rebuilds(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'one\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.ifchange('a', check=True)
    assert runs(sb) == []
    sb.write('src', 'two, longer\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'two, longer\n'


def test_touch_alone_rebuilds_nothing(sb):
    do(sb, 'b', 'redo-ifchange src\ncat src\n')
    do(sb, 'a', 'redo-ifchange b\ncat b\n')
    sb.write('src', 'x\n')
    sb.ifchange('a', check=True)
    runs(sb)
    for name in ('src', 'a.do', 'b.do', 'b', 'a'):
        shift_times(sb.path / name, 5 * SEC + 123)
    sb.ifchange('a', check=True)
    assert runs(sb) == []
    # and backwards in time too
    shift_times(sb.path / 'src', -3600 * SEC - 7)
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_touch_refreshes_the_stored_stamp(sb):
    """'if any differs, the mode and the content hash decide, and the stored
    stamp is refreshed': the new mtime is what redo has stored afterwards."""
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'x\n')
    sb.ifchange('a', check=True)
    st = os.stat(sb.path / 'src')
    new = st.st_mtime_ns + 7 * SEC + 4242
    os.utime(sb.path / 'src', ns=(st.st_atime_ns, new))
    assert str(new) not in state_text(sb)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']          # the first build only
    assert str(new) in state_text(sb)


def test_unchanged_dependency_is_not_read(sb):
    # Its stored size, inode, mode, mtime and ctime all equal: no need to
    # read it.  Once touched, it is read (hashed) to decide.
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'x\n')
    sb.ifchange('a', check=True)
    runs(sb)
    p, trace = strace(sb, 'open,openat,openat2', 'redo-ifchange', 'a')
    assert p.returncode == 0, p.stderr
    assert runs(sb) == []
    assert not [ln for ln in trace if re.search(r'"(?:[^"]*/)?src"', ln)], '\n'.join(trace)
    shift_times(sb.path / 'src', 3 * SEC)
    p, trace = strace(sb, 'open,openat,openat2', 'redo-ifchange', 'a')
    assert p.returncode == 0, p.stderr
    assert runs(sb) == []
    assert [ln for ln in trace if re.search(r'"(?:[^"]*/)?src"', ln)], '\n'.join(trace)


def test_same_second_edit_of_same_size_is_rebuilt(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    p = sb.write('src', 'aaaa\n')
    sb.ifchange('a', check=True)
    runs(sb)
    st = os.stat(p)
    with open(p, 'r+') as f:          # same inode, same size
        f.write('bbbb\n')
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    st2 = os.stat(p)
    assert (st2.st_size, st2.st_ino, st2.st_mtime_ns) == (st.st_size, st.st_ino, st.st_mtime_ns)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'bbbb\n'


def edit_in_the_same_second(path, before, after):
    """Writes before to path (if not None), yields to let the caller build,
    then writes after in place (same inode, same size), all within one
    second, so that a file system whose times count whole seconds shows
    the same size, inode, mtime and ctime as after the build.  Tries again,
    at the start of the next second, if a second boundary came between
    (the ctime cannot be set: only waiting works)."""
    for attempt in range(5):
        time.sleep(1 - time.time() % 1 + 0.01)
        if before is not None:
            with open(path, 'w') as f:
                f.write(before)
        yield
        st = os.stat(path)
        with open(path, 'r+') as f:
            f.write(after)
        st2 = os.stat(path)
        assert st.st_mtime_ns % SEC == 0, 'not a whole-second file system'
        if (st2.st_size, st2.st_ino, st2.st_mtime_ns, st2.st_ctime_ns) == \
                (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns):
            return
    pytest.skip('no edit within the same second as the build in 5 tries')


@pytest.mark.slow
def test_racy_clean_source_edited_in_the_same_second_as_its_stamp(tmp_path, bindir):
    # git's rule: a stamp taken within the file system's granularity of the
    # file's times is not trusted.
    with whole_second_fs(tmp_path / 'fs') as fs:
        sb = Sandbox(fs, bindir)
        do(sb, 'a', 'redo-ifchange src\ncat src\n')
        for _ in edit_in_the_same_second(fs / 'src', 'one\n', 'two\n'):
            sb.ifchange('a', check=True)
            assert sb.read('a') == 'one\n'
        sb.ifchange('a', check=True)
        assert sb.read('a') == 'two\n'
        runs(sb)
        sb.ifchange('a', check=True)
        assert runs(sb) == []


@pytest.mark.slow
def test_racy_clean_target_edited_by_hand_in_the_same_second_as_its_build(tmp_path, bindir):
    with whole_second_fs(tmp_path / 'fs') as fs:
        sb = Sandbox(fs, bindir)
        do(sb, 'x', 'echo bui\n')
        do(sb, 'a', 'redo-ifchange x\ncat x\n')
        for _ in edit_in_the_same_second(fs / 'x', None, 'hnd\n'):
            if sb.exists('x'):
                os.unlink(fs / 'x')           # edited in a try that failed
            sb.ifchange('a', check=True)
            assert sb.read('x') == 'bui\n'
        p = sb.ifchange('a', check=True)
        assert 'x' in p.stderr and 'warning' in p.stderr.lower(), p.stderr
        assert sb.read('x') == 'hnd\n'
        assert sb.read('a') == 'hnd\n'


def test_same_second_edit_of_the_do_file_is_rebuilt(sb):
    sb.write('a.do', 'echo one\n')
    sb.ifchange('a', check=True)
    p = sb.path / 'a.do'
    st = os.stat(p)
    with open(p, 'r+') as f:
        f.write('echo two\n')
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'two\n'


def test_chmod_x_of_dependency_rebuilds(sb):
    do(sb, 'a', 'redo-ifchange tool\nif [ -x tool ]; then echo exec; else echo plain; fi\n')
    sb.write('tool', '#!/bin/sh\n', mode=0o644)
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'plain\n'
    runs(sb)
    os.chmod(sb.path / 'tool', 0o755)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'exec\n'
    os.chmod(sb.path / 'tool', 0o644)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'plain\n'


@pytest.mark.parametrize('before, after', [(0o644, 0o600), (0o600, 0o640), (0o755, 0o4755)],
                         ids=['go-r', 'g+r', 'u+s'])
def test_any_permission_bit_change_of_dependency_rebuilds(sb, before, after):
    # Not only the x bits: `ls -l`, a tar of it, an install would differ.
    do(sb, 'a', 'redo-ifchange src\nls -l src | cut -c1-10\n')
    sb.write('src', 'data\n', mode=before)
    sb.ifchange('a', check=True)
    first = sb.read('a')
    runs(sb)
    os.chmod(sb.path / 'src', after)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') != first


def test_new_hard_link_alone_rebuilds_nothing(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'x\n')
    sb.ifchange('a', check=True)
    runs(sb)
    os.link(sb.path / 'src', sb.path / 'src.link')
    assert os.stat(sb.path / 'src').st_nlink == 2
    sb.ifchange('a', check=True)
    assert runs(sb) == []
    os.unlink(sb.path / 'src.link')
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_change_of_owner_alone_rebuilds_nothing(sb):
    if os.geteuid() != 0:
        pytest.skip('chown to another user needs root')
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'x\n')
    sb.ifchange('a', check=True)
    runs(sb)
    os.chown(sb.path / 'src', 12345, 23456)
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_dependency_replaced_by_symlink_counts_as_changed(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('src', 'same\n')
    sb.write('real', 'same\n')
    sb.ifchange('a', check=True)
    runs(sb)
    os.unlink(sb.path / 'src')
    os.symlink('real', sb.path / 'src')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_symlink_dependency_pointed_elsewhere_counts_as_changed(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('real1', 'same\n')
    sb.write('real2', 'same\n')
    os.symlink('real1', sb.path / 'src')
    sb.ifchange('a', check=True)
    runs(sb)
    os.unlink(sb.path / 'src')
    os.symlink('real2', sb.path / 'src')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']


def test_content_behind_symlink_dependency_changed_rebuilds(sb):
    do(sb, 'a', 'redo-ifchange src\ncat src\n')
    sb.write('real', 'one\n')
    os.symlink('real', sb.path / 'src')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.write('real', 'two\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'two\n'


def test_directory_dependency_judged_by_the_names_in_it_but_redo_s_own(sb):
    sb.write('d/a', '')
    sb.write('d/virt.do', 'true\n')
    do(sb, 'all', 'redo-ifchange d\nls d\n')
    sb.ifchange('all', check=True)
    runs(sb)
    sb.redo('d/virt', check=True)        # makes d/.redo
    assert sb.exists('d/.redo')
    sb.ifchange('all', check=True)
    assert runs(sb) == []
    sb.write('d/b', '')
    sb.ifchange('all', check=True)
    assert runs(sb) == ['all']


def dir_target(sb, content):
    """d.do makes a directory: the same names every time (f, sub/g, and
    a link l whose text is `f`), content as given."""
    sb.write('src', content)
    do(sb, 'd', 'redo-ifchange src\nmkdir $3 $3/sub\ncat src >$3/f\ncat src >$3/sub/g\n'
               'ln -s f $3/l\n')
    do(sb, 'a', 'redo-ifchange d\ncat d/f d/sub/g\n')


@pytest.mark.parametrize('where', ['f', 'sub/g'])
def test_directory_target_rebuilt_with_new_file_contents_is_a_change(sb, where):
    # The names are the same, and so are the files' sizes: only what the
    # files hold changed, at any depth.
    dir_target(sb, 'one\n')
    if where == 'sub/g':
        sb.write('d.do', sb.read('d.do').replace('cat src >$3/f', 'echo one >$3/f'))
    sb.ifchange('a', check=True)
    runs(sb)
    assert sb.run('redo-ood', check=True).stdout == ''
    sb.write('src', 'two\n')
    sb.redo('d', check=True)
    assert runs(sb) == ['d']
    assert sb.run('redo-ood', check=True).stdout.split() == ['a']
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == ('two\ntwo\n' if where == 'f' else 'one\ntwo\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_directory_target_rebuilt_the_same_is_no_change(sb):
    dir_target(sb, 'one\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.redo('d', check=True)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['d']


def test_directory_target_with_a_link_pointed_elsewhere_is_a_change(sb):
    # A link in it counts by its text, not by what it points to.
    dir_target(sb, 'one\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.write('d.do', sb.read('d.do').replace('ln -s f', 'ln -s sub/g'))
    sb.ifchange('a', check=True)
    assert runs(sb) == ['d', 'a']


def test_dependency_replaced_by_directory_counts_as_changed(sb):
    do(sb, 'a', 'redo-ifchange src\nif [ -d src ]; then echo dir; else cat src; fi\n')
    sb.write('src', 'file\n')
    sb.ifchange('a', check=True)
    runs(sb)
    os.unlink(sb.path / 'src')
    os.mkdir(sb.path / 'src')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'dir\n'
    sb.ifchange('a', check=True)
    assert runs(sb) == []


def test_ifcreate_file_appearing_rebuilds(sb):
    do(sb, 'a', 'if [ -e cfg ]; then redo-ifchange cfg; cat cfg\n'
                'else redo-ifcreate cfg; echo default; fi\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'default\n'
    runs(sb)
    sb.ifchange('a', check=True)
    assert runs(sb) == []
    sb.write('cfg', 'custom\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'custom\n'
    os.unlink(sb.path / 'cfg')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'default\n'


def test_redo_always_runs_once_per_run(sb):
    do(sb, 'always', 'redo-always\necho constant\n')
    do(sb, 'a', 'redo-ifchange always\necho a\n')
    do(sb, 'b', 'redo-ifchange always\necho b\n')
    do(sb, 'all', 'redo-ifchange a b always\n')
    sb.redo('all', check=True)
    assert sorted(runs(sb)) == ['a', 'all', 'always', 'b']
    # next run: always runs again, once; its output did not change, so
    # nothing that depends on it is rebuilt
    sb.ifchange('a', 'b', 'always', check=True)
    assert runs(sb) == ['always']
    sb.redo('-j4', 'all', check=True)
    assert runs(sb).count('always') == 1


def test_redo_always_changed_output_rebuilds_dependents_each_run(sb):
    do(sb, 'stamp', 'redo-always\nod -An -N16 -tx1 /dev/urandom\n')
    do(sb, 'a', 'redo-ifchange stamp\ncat stamp\n')
    sb.ifchange('a', check=True)
    first = sb.read('a')
    runs(sb)
    sb.ifchange('a', check=True)
    assert runs(sb) == ['stamp', 'a']
    assert sb.read('a') != first


def test_do_file_edited_rebuilds(sb):
    sb.write('a.do', 'echo one\n')
    sb.ifchange('a', check=True)
    sb.write('a.do', 'echo two\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'two\n'


def test_more_specific_do_appearing_rebuilds(sb):
    do(sb, 'default.do', 'echo default\n')
    sb.ifchange('x.txt', check=True)
    assert sb.read('x.txt') == 'default\n'
    runs(sb)
    sb.ifchange('x.txt', check=True)
    assert runs(sb) == []
    do(sb, 'default.txt.do', 'echo default.txt\n')
    sb.ifchange('x.txt', check=True)
    assert sb.read('x.txt') == 'default.txt\n'
    do(sb, 'x.txt.do', 'echo specific\n')
    sb.ifchange('x.txt', check=True)
    assert sb.read('x.txt') == 'specific\n'
    # and back: the specific one removed, the default one applies again
    os.unlink(sb.path / 'x.txt.do')
    sb.ifchange('x.txt', check=True)
    assert sb.read('x.txt') == 'default.txt\n'


def test_do_in_subdirectory_appearing_rebuilds(sb):
    sb.write('default.do', 'echo top\n')
    (sb.path / 'sub').mkdir()
    sb.ifchange('sub/x', check=True)
    assert sb.read('sub/x') == 'top\n'
    sb.write('sub/default.do', 'echo sub\n')
    sb.ifchange('sub/x', check=True)
    assert sb.read('sub/x') == 'sub\n'


def test_early_cutoff_same_content_does_not_rebuild_dependents(sb):
    do(sb, 'b', 'redo-ifchange src\nhead -n1 src\n')
    do(sb, 'a', 'redo-ifchange b\ncat b\n')
    sb.write('src', 'first\nsecond\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.write('src', 'first\nother\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['b']
    sb.write('src', 'new\nother\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['b', 'a']
    assert sb.read('a') == 'new\n'


def test_early_cutoff_through_a_chain(sb):
    do(sb, 'c', 'redo-ifchange src\nwc -c <src | tr -d " "\n')
    do(sb, 'b', 'redo-ifchange c\ncat c\n')
    do(sb, 'a', 'redo-ifchange b\ncat b\n')
    sb.write('src', 'abc\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.write('src', 'xyz\n')      # same length: c is rebuilt, equal
    sb.ifchange('a', check=True)
    assert runs(sb) == ['c']


def test_early_cutoff_with_redo_stamp(sb):
    # b's file changes every time src does, but its stamp only when the
    # first line does: dependents follow the stamp.
    do(sb, 'b', 'redo-ifchange src\ncat src\nhead -n1 src | redo-stamp\n')
    do(sb, 'a', 'redo-ifchange b\necho a\n')
    sb.write('src', 'first\nsecond\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.write('src', 'first\nother\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['b']
    assert sb.read('b') == 'first\nother\n'
    sb.write('src', 'new\nother\n')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['b', 'a']


def test_each_target_built_at_most_once_per_run(sb):
    do(sb, 'common', 'echo common\n')
    for i in range(1, 6):
        do(sb, 'p%d' % i, 'redo-ifchange common\necho p\n')
    do(sb, 'p6', 'redo-ifchange common p1 p2\necho p\n')
    do(sb, 'all', 'redo-ifchange p1 p2 p3 p4 p5 p6 common\n')
    sb.redo('-j1', 'all', check=True)
    log = runs(sb)
    assert log.count('common') == 1, log
    assert sorted(log) == sorted(['all', 'common'] + ['p%d' % i for i in range(1, 7)])


@pytest.mark.parametrize('jobs', ['-j1', '-j4'])
def test_redo_builds_again_each_time_it_is_called(sb, jobs):
    # SPEC §2: `redo` means now, every time; redo-ifchange after it in the
    # same run builds nothing more.
    do(sb, 'common', 'echo common\n')
    for i in range(1, 6):
        do(sb, 'p%d' % i, 'redo common\nredo-ifchange common\necho p\n')
    do(sb, 'all', 'redo p1 p2 p3 p4 p5 common\n')
    sb.redo(jobs, 'all', check=True)
    assert runs(sb).count('common') == 6
    sb.redo(jobs, 'common', 'common', 'p1', check=True)
    log = runs(sb)
    assert log.count('common') == 2, log


def test_deleted_target_is_rebuilt(sb):
    do(sb, 'a', 'echo a\n')
    sb.ifchange('a', check=True)
    runs(sb)
    os.unlink(sb.path / 'a')
    sb.ifchange('a', check=True)
    assert runs(sb) == ['a']
    assert sb.read('a') == 'a\n'


def test_deleted_dependency_target_is_rebuilt(sb):
    do(sb, 'b', 'echo b\n')
    do(sb, 'a', 'redo-ifchange b\ncat b\n')
    sb.ifchange('a', check=True)
    runs(sb)
    os.unlink(sb.path / 'b')
    sb.ifchange('a', check=True)
    # b comes back with the same content: a need not run (early cut-off)
    assert runs(sb) == ['b']
    assert sb.read('b') == 'b\n'


def test_redo_rebuilds_named_target_but_not_its_up_to_date_deps(sb):
    do(sb, 'b', 'redo-ifchange src\ncat src\n')
    do(sb, 'a', 'redo-ifchange b\ncat b\n')
    sb.write('src', 'x\n')
    sb.ifchange('a', check=True)
    runs(sb)
    sb.redo('a', check=True)
    assert runs(sb) == ['a']
    sb.redo('a', check=True)
    assert runs(sb) == ['a']
    # a dependency that is out of date is still brought up to date
    sb.write('src', 'y\n')
    sb.redo('a', check=True)
    assert sorted(runs(sb)) == ['a', 'b']
    assert sb.read('a') == 'y\n'


def test_redo_ood_agrees_with_what_a_build_does(sb):
    sb.write('src1', '1\n')
    sb.write('src2', '2\n')
    sb.write('src3', '3\n')
    do(sb, 't1', 'redo-ifchange src1\ncat src1\n')
    do(sb, 't2', 'redo-ifchange src2\ncat src2\n')
    do(sb, 't3', 'redo-ifchange t1\ncat t1\n')
    do(sb, 't4', 'redo-ifchange t2 src3\ncat t2 src3\n')
    do(sb, 't5', 'if [ -e cfg ]; then redo-ifchange cfg; else redo-ifcreate cfg; fi\necho t5\n')
    do(sb, 't6', 'redo-ifchange src3\ncat src3\n')
    do(sb, 't7', 'echo t7\n')
    do(sb, 'all', 'redo-ifchange t1 t2 t3 t4 t5 t6 t7\n')
    sb.redo('all', check=True)
    runs(sb)
    assert sb.run('redo-ood', check=True).stdout == ''

    sb.write('src1', 'changed\n')                  # t1, t3, all
    shift_times(sb.path / 'src3', 9 * SEC)         # nothing
    sb.write('cfg', '')                            # t5
    sb.write('t7.do', sb.read('t7.do') + 'echo more\n')   # t7
    ood = sb.run('redo-ood', check=True).stdout.split()
    assert sorted(ood) == ['all', 't1', 't3', 't5', 't7']
    sb.ifchange('all', check=True)
    assert sorted(runs(sb)) == sorted(ood)
    assert sb.run('redo-ood', check=True).stdout == ''


def test_redo_ood_lists_failed_and_deleted_targets(sb):
    do(sb, 'a', 'echo a\n')
    do(sb, 'b', 'test -e go\necho b\n')
    sb.ifchange('a', check=True)
    sb.ifchange('b', check=False)
    assert sorted(sb.run('redo-ood', check=True).stdout.split()) == ['b']
    os.unlink(sb.path / 'a')
    assert sorted(sb.run('redo-ood', check=True).stdout.split()) == ['a', 'b']


def test_debug_prints_a_reason_per_target(sb):
    sb.write('src1', '1\n')
    sb.write('src2', '2\n')
    do(sb, 't1', 'redo-ifchange src1\ncat src1\n')
    do(sb, 't2', 'redo-ifchange src2\ncat src2\n')
    do(sb, 'all', 'redo-ifchange t1 t2\n')
    p = sb.redo('-d', 'all', check=True)
    for t in ('all', 't1', 't2'):
        explained = [l for l in p.stderr.splitlines()
                     if re.search(r'(^|\W)%s(\W|$)' % t, l) and not re.match(r'^redo\s+%s$' % t, l)]
        assert explained, 'no reason given for %s:\n%s' % (t, p.stderr)
    sb.write('src1', 'changed\n')
    p = sb.ifchange('--debug', 'all', check=True)
    lines = p.stderr.splitlines()

    def about(t):
        return [l for l in lines if re.search(r'(^|\W)%s(\W|$)' % t, l)
                and not re.match(r'^redo\s+%s$' % t, l)]
    # t1 is out of date because src1 changed: the reason says so
    assert any('src1' in l for l in about('t1')), p.stderr
    # t2 is up to date, and -d says something about it all the same
    assert about('t2'), p.stderr
    assert not any(re.match(r'^redo\s+t2$', l) for l in lines)
    # all: rebuilt, because t1 changed
    assert any('t1' in l for l in about('all')), p.stderr


def test_debug_reasons_differ_by_cause(sb):
    """Each cause gives its own explanation: they are not all one text."""
    do(sb, 'never', 'echo x\n')
    do(sb, 'failed', 'test -e go\necho x\n')
    do(sb, 'dochanged', 'echo x\n')
    do(sb, 'uptodate', 'echo x\n')
    sb.ifchange('failed', check=False)
    sb.ifchange('dochanged', 'uptodate', check=True)
    sb.write('dochanged.do', 'echo y\n')
    sb.write('go', '')
    p = sb.ifchange('-d', 'never', 'failed', 'dochanged', 'uptodate', check=True)
    reasons = {}
    for t in ('never', 'failed', 'dochanged', 'uptodate'):
        ls = [l.replace(t, 'T') for l in p.stderr.splitlines()
              if re.search(r'(^|\W)%s(\W|$)' % t, l) and not re.match(r'^redo\s+%s$' % t, l)]
        assert ls, 'no reason given for %s:\n%s' % (t, p.stderr)
        reasons[t] = tuple(ls)
    assert len(set(reasons.values())) == 4, reasons


def test_a_do_that_cds_through_a_symlink_depends_on_what_it_reads(sb):
    # After `cd link`, $PWD names link but ../x is beside what link points
    # to: the dependency must be that file, not proj/x.
    sb.write('proj/x', 'PROJ\n')
    sb.write('elsewhere/x', 'ELSE\n')
    (sb.path / 'elsewhere' / 'sub').mkdir()
    os.symlink('../elsewhere/sub', sb.path / 'proj' / 'link')
    sb.write('proj/out.do', 'cd link\nredo-ifchange ../x\ncat ../x\n')
    sb.ifchange('proj/out', check=True)
    assert sb.read('proj/out') == 'ELSE\n'
    sb.write('elsewhere/x', 'CHANGED\n')
    sb.ifchange('proj/out', check=True)
    assert sb.read('proj/out') == 'CHANGED\n'
    sb.write('proj/x', 'NOT READ\n')
    p = sb.ifchange('proj/out', check=True)
    assert 'redo' not in p.stderr       # nothing rebuilt


def test_a_target_named_through_a_symlinked_directory_is_one_target(sb):
    # `redo-ifchange gen/x.o` and `cd gen && redo-ifchange x.o`, gen a
    # symlink: one target, built once, and up to date the next time.
    (sb.path / 'build' / 'gen').mkdir(parents=True)
    os.symlink('build/gen', sb.path / 'gen')
    sb.write('default.o.do', 'echo built >&2\necho obj\n')
    sb.write('all.do', 'redo-ifchange gen/x.o\ncd gen && redo-ifchange x.o\n')
    first = sb.ifchange('all', check=True)
    assert first.stderr.count('built') == 1, first.stderr
    for _ in range(3):
        p = sb.ifchange('all', check=True)
        assert 'built' not in p.stderr, p.stderr


# --- refreshing a stored stamp is best-effort ----------------------------------

@pytest.mark.parametrize('case', ['source touched', 'symlink target', 'summary gone'])
def test_no_op_on_a_read_only_tree_succeeds(tmp_path, bindir, case):
    proj = Sandbox(tmp_path / 'proj', bindir)
    proj.path.mkdir()
    proj.write('src', 'x\n')
    proj.write('a.do', 'redo-ifchange src\ncat src\n')
    proj.write('l.do', 'redo-ifchange a\nln -s a $3\n')
    proj.write('b.do', 'redo-ifchange l\ncat l\n')
    proj.ifchange('b', check=True)
    if case == 'source touched':
        shift_times(proj.path / 'src', 5 * SEC)
    elif case == 'summary gone':
        os.unlink(proj.path / '.redo' / 'summary')
    with read_only_view(proj.path, tmp_path / 'ro') as ro:
        for args in (['redo-ifchange', 'b'], ['redo-ood'], ['redo-ifchange', 'l']):
            p = proj.run(*args, cwd=ro)
            assert (p.returncode, p.stdout, p.stderr) == (0, '', ''), args


def test_hand_edit_warning_says_how_to_get_it_rebuilt(sb):
    do(sb, 'x', 'echo x\n')
    sb.ifchange('x', check=True)
    sb.write('x', 'by hand\n')
    r = sb.ifchange('x', check=True)
    assert 'delete it to have redo build it again' in r.stderr
    os.unlink(sb.path / 'x')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'x\n'


@pytest.mark.parametrize('jobs', ['-j1', '-j2', '-j4'])
def test_missing_source_checked_in_the_same_call_is_no_change(sb, jobs):
    """A target that handled a missing source is up to date while the
    source is still missing, also when one call asks for both and the
    source's check is under way when the target's check reaches it."""
    sb.write('a.do', 'echo a >>log\nif redo-ifchange missing; then echo yes; else echo no; fi\n')
    sb.ifchange('a', check=True)
    for _ in range(3):
        sb.run('redo-ifchange', jobs, '-k', 'a', 'missing', check=False)
        sb.run('redo-ifchange', jobs, 'a', 'missing', check=False)
    assert sb.log('log') == ['a']
    assert sb.read('a') == 'no\n'
