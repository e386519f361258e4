"""SPEC §3: running a .do file — which .do, how it runs, what it outputs.

Each test runs the real redo.py on real .do files and checks the files it
leaves, exit codes and messages."""

import os
import shutil
import subprocess
import stat
import sys

import pytest

from helpers import no_traceback


def args_do():
    """A .do that records its cwd, $1, $2 and $3 (one per line) as output."""
    return 'pwd -P\nprintf "%s\\n" "$1" "$2" "$3"\n'


def built_args(sb, target):
    cwd, a1, a2, a3 = sb.read(target).split('\n')[:4]
    return cwd, a1, a2, a3


# ---------------------------------------------------------------------------
# Search order
# ---------------------------------------------------------------------------

def test_do_search_exact_name_first(sb):
    sb.write('x.c.do', 'echo exact\n')
    sb.write('default.c.do', 'echo default-c\n')
    sb.write('default.do', 'echo default\n')
    sb.ifchange('x.c', check=True)
    assert sb.read('x.c') == 'exact\n'


def test_do_search_longest_default_extension_first(sb):
    sb.write('default.b.c.do', 'echo bc\n')
    sb.write('default.c.do', 'echo c\n')
    sb.write('default.do', 'echo any\n')
    sb.ifchange('a.b.c', check=True)
    assert sb.read('a.b.c') == 'bc\n'


def test_do_search_shorter_default_extension_next(sb):
    sb.write('default.c.do', 'echo c\n')
    sb.write('default.do', 'echo any\n')
    sb.write('default.x.c.do', 'echo wrong\n')
    sb.ifchange('a.b.c', check=True)
    assert sb.read('a.b.c') == 'c\n'


def test_do_search_default_do_last_in_directory(sb):
    sb.write('default.do', 'echo any\n')
    sb.write('default.z.do', 'echo wrong\n')
    sb.ifchange('a.b.c', check=True)
    assert sb.read('a.b.c') == 'any\n'


def test_do_search_uses_parent_directory_default(sb):
    sb.write('default.o.do', 'echo parent\n')
    sb.write('sub/deeper/keep', '')
    sb.ifchange('sub/deeper/x.o', check=True)
    assert sb.read('sub/deeper/x.o') == 'parent\n'


def test_do_search_prefers_own_directory_default_do_over_parent_default(sb):
    sb.write('default.o.do', 'echo parent\n')
    sb.write('sub/default.do', 'echo here\n')
    sb.ifchange('sub/x.o', check=True)
    assert sb.read('sub/x.o') == 'here\n'


def test_do_search_prefers_nearer_parent(sb):
    sb.write('default.o.do', 'echo grandparent\n')
    sb.write('sub/default.o.do', 'echo parent\n')
    sb.write('sub/deeper/keep', '')
    sb.ifchange('sub/deeper/x.o', check=True)
    assert sb.read('sub/deeper/x.o') == 'parent\n'


def test_do_search_parent_exact_name_is_not_a_candidate(sb):
    sb.write('x.o.do', 'echo wrong\n')         # only default*.do in parents
    sb.write('sub/keep', '')
    sb.write('.redo/top', '')
    p = sb.ifchange('sub/x.o', check=False)
    no_traceback(p)
    assert not sb.exists('sub/x.o')


def test_do_search_stops_at_redo_top_marker(sb):
    sb.write('default.do', 'echo outer\n')
    sb.write('proj/.redo/top', '')
    sb.write('proj/sub/keep', '')
    p = sb.ifchange('proj/sub/x', check=False)
    no_traceback(p)
    assert 'x' in p.stderr
    assert not sb.exists('proj/sub/x')
    # the top directory itself is still searched
    sb.write('proj/default.do', 'echo top\n')
    sb.ifchange('proj/sub/x', check=True)
    assert sb.read('proj/sub/x') == 'top\n'


def test_do_search_missing_candidate_that_appears_rebuilds(sb):
    sb.write('default.do', 'echo default >>runs\necho default\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['default']
    sb.write('x.do', 'echo exact >>runs\necho exact\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'exact\n'
    assert sb.log('runs') == ['default', 'exact']


def test_do_search_new_nearer_default_in_subdir_rebuilds(sb):
    sb.write('default.do', 'echo outer\n')
    sb.write('sub/keep', '')
    sb.ifchange('sub/x', check=True)
    assert sb.read('sub/x') == 'outer\n'
    sb.write('sub/default.do', 'echo inner\n')
    sb.ifchange('sub/x', check=True)
    assert sb.read('sub/x') == 'inner\n'


def test_do_search_new_default_in_an_intermediate_parent_rebuilds(sb):
    # The candidates between the target's directory and the .do found
    # (here a/default.o.do, a/default.do) are recorded too.
    sb.write('.redo/top', '')
    log = 'echo %s >>"' + str(sb.path) + '/runs"\necho %s\n'
    sb.write('default.o.do', log % ('top', 'top'))
    sb.write('a/b/keep', '')
    sb.ifchange('a/b/x.o', check=True)
    sb.ifchange('a/b/x.o', check=True)
    assert sb.read('a/b/x.o') == 'top\n'
    assert sb.log('runs') == ['top']
    sb.write('a/default.do', log % ('mid', 'mid'))
    sb.ifchange('a/b/x.o', check=True)
    assert sb.read('a/b/x.o') == 'mid\n'
    sb.write('a/default.o.do', log % ('mid-o', 'mid-o'))
    sb.ifchange('a/b/x.o', check=True)
    assert sb.read('a/b/x.o') == 'mid-o\n'
    sb.ifchange('a/b/x.o', check=True)
    assert sb.log('runs') == ['top', 'mid', 'mid-o']


def test_do_search_found_do_is_an_ifchange_dependency(sb):
    sb.write('x.do', 'echo x >>runs\necho one\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x']
    sb.write('x.do', 'echo x >>runs\necho two\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'two\n'
    assert sb.log('runs') == ['x', 'x']


def test_do_search_removed_do_with_fallback_rebuilds(sb):
    sb.write('default.do', 'echo fallback\n')
    sb.write('x.do', 'echo exact\n')
    sb.ifchange('x', check=True)
    os.unlink(sb.path / 'x.do')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'fallback\n'


def test_do_missing_do_and_missing_file_is_an_error(sb):
    sb.write('.redo/top', '')
    p = sb.ifchange('nothing', check=False)
    no_traceback(p)
    assert 'nothing' in p.stderr


# ---------------------------------------------------------------------------
# $1 $2 $3 and the directory it runs in
# ---------------------------------------------------------------------------

def real(sb, *parts):
    return os.path.realpath(os.path.join(sb.path, *parts))


def test_do_args_for_exact_name_do(sb):
    sb.write('x.tar.gz.do', args_do())
    sb.ifchange('x.tar.gz', check=True)
    cwd, a1, a2, a3 = built_args(sb, 'x.tar.gz')
    assert cwd == real(sb)
    assert (a1, a2) == ('x.tar.gz', 'x.tar.gz')
    assert a3 not in ('x.tar.gz', '')


@pytest.mark.parametrize('do, arg2', [('default.tar.gz.do', 'x'),
                                      ('default.gz.do', 'x.tar'),
                                      ('default.do', 'x.tar.gz')])
def test_do_args_dollar2_strips_matched_extension(sb, do, arg2):
    sb.write(do, args_do())
    sb.ifchange('x.tar.gz', check=True)
    cwd, a1, a2, a3 = built_args(sb, 'x.tar.gz')
    assert (a1, a2) == ('x.tar.gz', arg2)


def test_do_args_parent_default_do_relative_to_do_directory(sb):
    sb.write('default.o.do', args_do())
    sb.write('sub/deeper/keep', '')
    sb.ifchange('sub/deeper/x.o', check=True)
    cwd, a1, a2, a3 = built_args(sb, 'sub/deeper/x.o')
    assert cwd == real(sb)
    assert (a1, a2) == ('sub/deeper/x.o', 'sub/deeper/x')


def test_do_args_same_whatever_the_callers_directory(sb):
    sb.write('sub/default.o.do', args_do())
    sb.ifchange('x.o', cwd=sb.path / 'sub', check=True)
    first = built_args(sb, 'sub/x.o')
    sb.redo('sub/x.o', check=True)
    assert built_args(sb, 'sub/x.o') == first
    assert first[0] == real(sb, 'sub')
    assert first[1:3] == ('x.o', 'x')


def test_do_dollar3_is_a_fresh_path_next_to_the_target(sb):
    sb.write('sub/x.do', 'pwd -P\nprintf "%s\\n" "$3"\n'
                         'if [ -e "$3" ]; then echo exists; else echo fresh; fi\n')
    sb.ifchange('sub/x', check=True)
    cwd, a3, state = sb.read('sub/x').split('\n')[:3]
    assert state == 'fresh'
    p = os.path.realpath(os.path.join(cwd, a3))
    target_dir = real(sb, 'sub')
    # on the target's file system, under its directory: rename is atomic
    assert p.startswith(target_dir + os.sep)
    assert os.stat(os.path.dirname(p)).st_dev == os.stat(target_dir).st_dev
    assert p != os.path.join(target_dir, 'x')


def test_do_runs_in_its_own_directory(sb):
    sb.write('a/b/x.do', 'pwd -P\n')
    sb.write('c/keep', '')
    sb.ifchange('../a/b/x', cwd=sb.path / 'c', check=True)
    assert sb.read('a/b/x') == real(sb, 'a', 'b') + '\n'


def test_do_stdin_is_dev_null(sb):
    sb.write('x.do', 'if read line; then echo "got:$line"; else echo eof; fi\n'
                     'cat >/dev/null\n')
    sb.ifchange('x', input='from-the-terminal\n', check=True)
    assert sb.read('x') == 'eof\n'


def test_do_runs_with_sh_e(sb):
    sb.write('x.do', 'false\necho reached >>runs\necho new\n')
    p = sb.ifchange('x', check=False)
    no_traceback(p)
    assert sb.log('runs') == []
    assert not sb.exists('x')


def test_do_not_executable_runs_with_its_shebang_too(sb):
    # SPEC §3, as apenwarr and goredo: the #! line counts, executable or not.
    sb.write('x.do', '#!/bin/false\necho by-sh\n', mode=0o644)
    sb.ifchange('x', check=False)
    sb.write('y.do', 'echo by-sh\n', mode=0o644)
    sb.ifchange('y', check=True)
    assert sb.read('y') == 'by-sh\n'


def test_do_executable_runs_directly_with_its_shebang(sb):
    sb.write('sub/x.py.do',
             '#!%s\nimport os, sys\nprint(os.getcwd())\nprint(sys.argv[1:3])\n'
             'print(sys.stdin.read() == "")\n' % sys.executable, mode=0o755)
    sb.ifchange('sub/x.py', input='not for the .do\n', check=True)
    out = sb.read('sub/x.py').split('\n')
    assert out[0] == real(sb, 'sub')
    assert out[1] == "['x.py', 'x.py']"
    assert out[2] == 'True'


@pytest.mark.parametrize('text', ['false\necho partial\n', '\ufeff#!/bin/sh\nfalse\necho partial\n'])
def test_do_executable_without_shebang_runs_with_sh_e(sb, text):
    # exec would run it with plain sh, so that a failing command went by.
    sb.write('x.do', 'echo old\n')
    sb.redo('x', check=True)
    sb.write('x.do', text, mode=0o755)
    p = sb.redo('x')
    assert p.returncode == 1, p.stderr
    assert sb.read('x') == 'old\n'


def test_do_executable_gets_dollar3(sb):
    sb.write('x.do', '#!/bin/sh\necho via3 >"$3"\n', mode=0o755)
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'via3\n'


# ---------------------------------------------------------------------------
# Output: stdout, $3 (file or directory), neither (virtual), both (error)
# ---------------------------------------------------------------------------

def test_output_from_stdout(sb):
    sb.write('x.do', 'echo out\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'out\n'


def test_output_from_dollar3_file(sb):
    sb.write('x.do', 'echo three >$3\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'three\n'


def test_output_dollar3_may_be_a_directory(sb):
    sb.write('x.do', 'mkdir $3\necho f1 >$3/f\n')
    sb.ifchange('x', check=True)
    assert (sb.path / 'x').is_dir()
    assert sb.read('x/f') == 'f1\n'
    # and a new directory replaces the old one
    sb.write('x.do', 'mkdir $3\necho g >$3/g\n')
    sb.ifchange('x', check=True)
    assert sorted(os.listdir(sb.path / 'x')) == ['g']


def test_output_file_replaces_directory_and_back(sb):
    sb.write('x.do', 'mkdir $3\necho f1 >$3/f\n')
    sb.ifchange('x', check=True)
    sb.write('x.do', 'echo plain\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'plain\n'
    sb.write('x.do', 'mkdir $3\necho f2 >$3/f\n')
    sb.ifchange('x', check=True)
    assert sb.read('x/f') == 'f2\n'
    assert sorted(os.listdir(sb.path)) == ['.redo', 'x', 'x.do']


def test_output_that_cannot_be_put_in_place_is_a_failed_build(sb):
    # The rename fails (an immutable target): the old target stays, and so
    # does its state, marked failed; the next run builds it.
    sb.write('x.do', 'echo v1\n')
    sb.ifchange('x', check=True)
    if subprocess.run(['chattr', '+i', str(sb.path / 'x')], stderr=subprocess.DEVNULL).returncode:
        pytest.skip('chattr +i does not work here')
    try:
        sb.write('x.do', 'echo v2\n')
        p = sb.ifchange('x')
        assert p.returncode == 1, p.stderr
        no_traceback(p)
        assert 'x failed' in p.stderr
        assert sb.read('x') == 'v1\n'
        assert 'Result: failed' in sb.read('.redo/x.rec')
        assert 'FAILED' in sb.run('redo-log', 'x').stderr + sb.run('redo-log', 'x').stdout
    finally:
        subprocess.run(['chattr', '-i', str(sb.path / 'x')])
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'v2\n'


@pytest.mark.parametrize('how', ['stdout', 'dollar3'])
def test_output_replaces_the_target_by_rename(sb, how):
    # A reader holding the old target (here a second name for its file)
    # keeps the old content whole: the new target is a new file renamed
    # over the old, not the old file rewritten.
    out = 'cat src' if how == 'stdout' else 'cat src >$3'
    sb.write('src', 'old\n')
    sb.write('x.do', 'redo-ifchange src\n%s\n' % out)
    sb.ifchange('x', check=True)
    os.link(sb.path / 'x', sb.path / 'held')
    before = os.stat(sb.path / 'x').st_ino
    sb.write('src', 'new content\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'new content\n'
    assert os.stat(sb.path / 'x').st_ino != before
    assert sb.read('held') == 'old\n'


def test_output_both_stdout_and_dollar3_is_an_error(sb):
    sb.write('x.do', 'echo three >$3\necho out\n')
    p = sb.ifchange('x', check=False)
    no_traceback(p)
    assert 'x.do' in p.stderr
    assert not sb.exists('x')


def test_output_both_keeps_old_target(sb):
    sb.write('x.do', 'echo old\n')
    sb.ifchange('x', check=True)
    sb.write('x.do', 'echo three >$3\necho out\n')
    sb.ifchange('x', check=False)
    assert sb.read('x') == 'old\n'


def test_output_neither_is_a_virtual_target(sb):
    sb.write('x.do', 'echo x >>runs\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange x\n')
    sb.ifchange('all', check=True)
    assert not sb.exists('x')
    assert not sb.exists('all')
    # still counts as built: nothing runs again
    sb.ifchange('all', check=True)
    assert sb.log('runs') == ['all', 'x']
    assert sorted(sb.run('redo-targets', check=True).stdout.split()) == ['all', 'x']


def test_output_neither_removes_an_old_target_file(sb):
    sb.write('x.do', 'echo old\n')
    sb.ifchange('x', check=True)
    assert sb.exists('x')
    sb.write('x.do', 'true\n')
    sb.ifchange('x', check=True)
    assert not sb.exists('x')


def test_output_empty_stdout_is_no_output(sb):
    sb.write('x.do', 'printf ""\n')
    sb.ifchange('x', check=True)
    assert not sb.exists('x')


def test_output_empty_dollar3_file_is_an_empty_target(sb):
    sb.write('x.do', ': >$3\n')
    sb.ifchange('x', check=True)
    assert sb.exists('x') and sb.read('x') == ''


def test_output_binary_content_exact(sb):
    data = bytes(range(256)) * 3
    (sb.path / 'blob').write_bytes(data)
    sb.write('x.do', 'redo-ifchange blob\ncat blob\n')
    sb.ifchange('x', check=True)
    assert (sb.path / 'x').read_bytes() == data


def test_output_leaves_no_temporary_files_beside_the_target(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('y.do', 'echo y >$3\n')
    sb.write('z.do', 'echo z >$3\nexit 1\n')
    sb.ifchange('x', 'y', check=True)
    sb.ifchange('z', check=False)
    names = sorted(n for n in os.listdir(sb.path) if n != '.redo')
    assert names == ['x', 'x.do', 'y', 'y.do', 'z.do']


# ---------------------------------------------------------------------------
# A failed .do
# ---------------------------------------------------------------------------

def test_failed_do_keeps_old_target_and_names_do_and_status(sb):
    sb.write('x.do', 'echo old\n')
    sb.ifchange('x', check=True)
    sb.write('x.do', 'echo new\necho new3 >$3\nexit 42\n')
    p = sb.ifchange('x', check=False)
    no_traceback(p)
    assert sb.read('x') == 'old\n'
    line = [ln for ln in p.stderr.split('\n') if 'x.do' in ln]
    assert line and '42' in line[0], p.stderr


def test_failed_do_is_retried_next_run(sb):
    sb.write('x.do', 'echo x >>runs\nexit 1\n')
    sb.ifchange('x', check=False)
    sb.ifchange('x', check=False)
    assert sb.log('runs') == ['x', 'x']


def test_failed_do_keeps_dependents_state(sb):
    sb.write('src', '1\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange x\ncat x\n')
    sb.ifchange('a', check=True)
    sb.write('x.do', 'redo-ifchange src\nexit 1\n')
    sb.ifchange('a', check=False)
    assert sb.read('x') == '1\n' and sb.read('a') == '1\n'
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == '1\n'


def test_failed_do_killed_by_signal_is_a_failure(sb):
    sb.write('x.do', 'echo old\n')
    sb.ifchange('x', check=True)
    sb.write('x.do', 'echo new\nkill -9 $$\n')
    p = sb.ifchange('x', check=False)
    no_traceback(p)
    assert sb.read('x') == 'old\n'
    assert 'x.do' in p.stderr


def test_do_writing_dollar1_is_an_error(sb):
    sb.write('x.do', 'echo sneaky >$1\n')
    p = sb.ifchange('x', check=False)
    no_traceback(p)
    assert 'x.do' in p.stderr
    assert '$1' in p.stderr


# ---------------------------------------------------------------------------
# Mode of the target
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('umask, mode', [('022', 0o644), ('002', 0o664), ('077', 0o600)])
@pytest.mark.parametrize('how', ['stdout', 'dollar3'])
def test_target_mode_follows_umask(sb, umask, mode, how):
    sb.write('x.do', 'echo x\n' if how == 'stdout' else 'echo x >$3\n')
    sb.run('sh', '-c', 'umask %s; exec redo-ifchange x' % umask, check=True)
    assert stat.S_IMODE(os.stat(sb.path / 'x').st_mode) == mode


def test_target_mode_set_by_do_is_kept(sb):
    sb.write('x.do', 'echo "#!/bin/sh" >$3\nchmod 755 $3\n')
    sb.run('sh', '-c', 'umask 022; exec redo-ifchange x', check=True)
    assert stat.S_IMODE(os.stat(sb.path / 'x').st_mode) == 0o755


# ---------------------------------------------------------------------------
# Targets changed by hand, and files never built
# ---------------------------------------------------------------------------

def test_hand_edited_target_is_not_overwritten(sb):
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.ifchange('x', check=True)
    sb.write('x', 'by hand\n')
    sb.write('x.do', 'echo x >>runs\necho built again\n')
    p = sb.ifchange('x', check=True)
    no_traceback(p)
    assert sb.read('x') == 'by hand\n'
    assert 'warning' in p.stderr.lower() and 'x' in p.stderr
    assert sb.log('runs') == ['x']


def test_hand_edited_target_not_overwritten_by_forced_redo(sb):
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.ifchange('x', check=True)
    sb.write('x', 'by hand\n')
    p = sb.redo('x')
    no_traceback(p)
    assert sb.read('x') == 'by hand\n'
    assert 'x' in p.stderr
    assert sb.log('runs') == ['x']


def test_hand_edited_target_is_a_source_from_then_on(sb):
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange x\ncat x\n')
    sb.ifchange('a', check=True)
    sb.write('x', 'by hand\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'by hand\n'           # its dependents see the change
    sb.write('x.do', 'echo x >>runs\necho other\n')
    sb.ifchange('a', check=True)
    sb.ifchange('a', check=True)
    assert sb.read('x') == 'by hand\n'
    assert sb.log('runs') == ['a', 'x', 'a']


@pytest.mark.parametrize('kind', ['stamped', 'virtual'])
def test_hand_edited_stamped_or_virtual_target_is_seen_by_its_dependents(sb, kind):
    # Its dependents compared the stamp (or, for a target that made no
    # file, the build id) kept in its state, which a hand edit leaves alone.
    sb.write('src', 'one\n')
    if kind == 'stamped':
        sb.write('x.do', 'redo-ifchange src\nredo-stamp <src\ncat src\n')
    else:
        sb.write('x.do', 'redo-ifchange src\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange x\ncat x 2>/dev/null || echo no x\n')
    sb.ifchange('a', check=True)
    sb.write('x', 'by hand\n')
    assert sb.run('redo-ood', check=True).stdout.split() == ['a']
    p = sb.ifchange('a', check=True)
    assert 'x' in p.stderr and 'warning' in p.stderr.lower()
    assert sb.read('a') == 'by hand\n'
    sb.ifchange('a', check=True)
    assert sb.log('runs') == ['a', 'a']
    assert sb.read('x') == 'by hand\n'


@pytest.mark.parametrize('where', ['relative', 'absolute'])
def test_symlink_target_is_judged_by_where_it_points(sb, where):
    # A relative link read in .redo/tmp pointed nowhere; what a link points
    # to may change without the link being changed by hand.
    to = '' if where == 'relative' else str(sb.path) + '/'
    sb.write('real', 'data\n')
    sb.write('other', 'o\n')
    sb.write('l.do', 'echo l >>runs\nln -s %sreal $3\n' % to)
    sb.write('y.do', 'echo y >>runs\nredo-ifchange l\ncat l\n')
    sb.ifchange('y', check=True)
    p = sb.ifchange('y', check=True)
    assert 'warning' not in p.stderr.lower(), p.stderr
    assert sb.log('runs') == ['y', 'l']
    sb.write('real', 'more\n')
    p = sb.ifchange('y', check=True)
    assert 'warning' not in p.stderr.lower(), p.stderr
    assert sb.read('y') == 'more\n'
    assert sb.log('runs') == ['y', 'l', 'y']
    sb.write('l.do', 'echo l >>runs\nln -s %sother $3\n' % to)
    sb.ifchange('y', check=True)
    assert os.readlink(sb.path / 'l') == to + 'other'
    assert sb.read('y') == 'o\n'
    sb.ifchange('y', check=True)
    assert sb.log('runs') == ['y', 'l', 'y', 'l', 'y']
    os.unlink(sb.path / 'l')
    os.symlink('elsewhere', sb.path / 'l')
    p = sb.ifchange('y', check=False)
    assert 'l' in p.stderr and 'warning' in p.stderr.lower()
    assert os.readlink(sb.path / 'l') == 'elsewhere'


@pytest.mark.parametrize('built_before', [True, False])
def test_hand_edit_after_a_failed_build_is_not_overwritten(sb, built_before):
    if built_before:
        sb.write('x.do', 'echo gen1\n')
        sb.ifchange('x', check=True)
    sb.write('x.do', 'exit 1\n')
    assert sb.ifchange('x').returncode == 1
    sb.write('x', 'precious\n')
    sb.write('x.do', 'echo gen2\n')
    p = sb.ifchange('x', check=True)
    assert 'x' in p.stderr and 'warning' in p.stderr.lower()
    assert sb.read('x') == 'precious\n'


def test_a_do_that_wrote_dollar1_is_run_again_once_fixed(sb):
    # What it left at $1 is redo's doing, not a hand edit.
    sb.write('x.do', 'echo mine >$1\n')
    assert sb.ifchange('x').returncode == 1
    assert sb.ifchange('x').returncode == 1
    sb.write('x.do', 'echo fixed\n')
    p = sb.ifchange('x', check=True)
    assert 'warning' not in p.stderr.lower()
    assert sb.read('x') == 'fixed\n'


def built_twice(sb):
    # x built from src 'one', then from 'two'; `held` is the first x (the
    # same file: a second link to it, untouched since).
    sb.write('src', 'one\n')
    sb.write('x.do', 'echo x >>runs\nredo-ifchange src\ncat src\n')
    sb.ifchange('x', check=True)
    os.link(sb.path / 'x', sb.path / 'held')
    sb.write('src', 'two\n')
    sb.ifchange('x', check=True)


def test_old_target_left_by_a_crash_before_the_rename_is_rebuilt(sb):
    # The state says `two` was built, but the old file is still in place:
    # as after a crash between writing the state and the rename.
    built_twice(sb)
    os.rename(sb.path / 'held', sb.path / 'x')
    p = sb.ifchange('x', check=True)
    assert 'warning' not in p.stderr.lower(), p.stderr
    assert sb.read('x') == 'two\n'
    assert sb.log('runs') == ['x', 'x', 'x']


def test_old_content_put_back_by_hand_is_not_overwritten(sb):
    # The same content as before the last build, but a copy put there by
    # hand (`git checkout x`, `cp saved x`): a hand edit.
    built_twice(sb)
    os.unlink(sb.path / 'x')
    shutil.copyfile(sb.path / 'held', sb.path / 'x')
    p = sb.ifchange('x', check=True)
    assert 'x' in p.stderr and 'warning' in p.stderr.lower()
    assert sb.read('x') == 'one\n'
    assert sb.log('runs') == ['x', 'x']


def test_symlink_target_whose_pointee_is_rebuilt_during_its_do(sb):
    # real, which l points to, is rebuilt while l.do runs: l itself is not
    # changed (that would be a write to $1).
    sb.write('src', '1\n')
    sb.write('real.do', 'redo-ifchange src\ncat src\n')
    sb.write('l.do', 'redo-ifchange real\nln -s real $3\n')
    sb.ifchange('l', check=True)
    sb.write('src', '2\n')
    p = sb.redo('l')
    assert p.returncode == 0, p.stderr
    assert sb.read('l') == '2\n'


def edit_in_place_keeping_mtime(path, text):
    """Rewrites path in place (same inode, same size) and puts its mtime
    back, as `touch -r` would: only the ctime tells."""
    st = os.stat(path)
    assert len(text) == st.st_size
    with open(path, 'r+') as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    st2 = os.stat(path)
    assert (st2.st_size, st2.st_ino, st2.st_mtime_ns) == (st.st_size, st.st_ino, st.st_mtime_ns)


@pytest.mark.parametrize('summary', ['kept', 'removed'])
def test_hand_edit_in_place_with_mtime_put_back_is_seen(sb, summary):
    # Whether the check reads the state from the summary or from the state
    # file itself.
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange x\ncat x\n')
    sb.ifchange('a', check=True)
    sb.ifchange('a', check=True)
    edit_in_place_keeping_mtime(sb.path / 'x', 'edit!\n')
    if summary == 'removed':
        os.unlink(sb.path / '.redo' / 'summary')
    assert sb.run('redo-ood', check=True).stdout.split() == ['a']
    p = sb.ifchange('a', check=True)
    assert 'x' in p.stderr and 'warning' in p.stderr.lower(), p.stderr
    assert sb.read('x') == 'edit!\n'
    assert sb.read('a') == 'edit!\n'
    assert sb.log('runs') == ['a', 'x', 'a']


def test_hand_edit_in_place_right_after_the_build_is_seen(sb):
    # No check has run since the build: the state has not seen the target
    # in place yet.
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange x\ncat x\n')
    sb.ifchange('a', check=True)
    edit_in_place_keeping_mtime(sb.path / 'x', 'edit!\n')
    p = sb.ifchange('a', check=True)
    assert 'x' in p.stderr and 'warning' in p.stderr.lower(), p.stderr
    assert sb.read('a') == 'edit!\n'
    assert sb.log('runs') == ['a', 'x', 'a']


def test_hand_edited_target_with_stop_if_modified_is_an_error(sb):
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.ifchange('x', check=True)
    sb.write('x', 'by hand\n')
    sb.write('x.do', 'echo x >>runs\necho built again\n')
    p = sb.ifchange('x', env={'REDO_STOP_IF_MODIFIED': '1'}, check=False)
    no_traceback(p)
    assert 'x' in p.stderr
    assert sb.read('x') == 'by hand\n'
    assert sb.log('runs') == ['x']


def test_touched_target_is_not_hand_edited(sb):
    sb.write('x.do', 'echo x >>runs\necho built\n')
    sb.ifchange('x', check=True)
    st = os.stat(sb.path / 'x')
    os.utime(sb.path / 'x', ns=(st.st_atime_ns + 5 * 10**9, st.st_mtime_ns + 5 * 10**9))
    p = sb.redo('x', check=True)
    assert 'warning' not in p.stderr.lower()
    assert sb.log('runs') == ['x', 'x']


def test_existing_file_never_built_is_a_source(sb):
    sb.write('x', 'mine\n')
    sb.write('x.do', 'echo x >>runs\necho generated\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'mine\n'
    p = sb.redo('x')
    no_traceback(p)
    assert sb.read('x') == 'mine\n'
    assert sb.log('runs') == []
    sb.write('a.do', 'redo-ifchange x\ncat x\n')
    sb.ifchange('a', check=True)
    assert sb.read('a') == 'mine\n'
    assert 'x' in sb.run('redo-sources', check=True).stdout.split()
    assert 'x' not in sb.run('redo-targets', check=True).stdout.split()


# ---------------------------------------------------------------------------
# -x / -v
# ---------------------------------------------------------------------------

def trace_tree(sb):
    sb.write('all.do', 'redo-ifchange dep\necho TOPMARK\n')
    sb.write('dep.do', 'echo DEPMARK\n')


def test_x_traces_top_level_do_with_sh_x(sb):
    trace_tree(sb)
    p = sb.redo('-x', 'all', check=True)
    assert '+ echo TOPMARK' in p.stderr
    assert 'echo DEPMARK' not in p.stderr
    assert sb.read('all') == 'TOPMARK\n'


def test_xx_traces_every_do(sb):
    trace_tree(sb)
    p = sb.redo('-xx', 'all', check=True)
    assert '+ echo TOPMARK' in p.stderr
    assert '+ echo DEPMARK' in p.stderr


def test_v_shows_top_level_do_lines(sb):
    trace_tree(sb)
    p = sb.redo('-v', 'all', check=True)
    lines = [l.partition('all: ')[2] or l for l in p.stderr.split('\n')]   # labelled (§6)
    assert 'echo TOPMARK' in lines
    assert 'echo DEPMARK' not in lines
    assert sb.read('all') == 'TOPMARK\n'


def test_vv_shows_every_do(sb):
    trace_tree(sb)
    p = sb.redo('-vv', 'all', check=True)
    lines = [l.partition('all: ')[2] or l for l in p.stderr.split('\n')]   # labelled (§6)
    assert 'echo TOPMARK' in lines and 'echo DEPMARK' in lines


def test_no_trace_without_x(sb):
    trace_tree(sb)
    p = sb.redo('all', check=True)
    assert 'TOPMARK' not in p.stderr


# ---------------------------------------------------------------------------
# What a call from a .do costs
# ---------------------------------------------------------------------------

def test_calls_in_a_row_from_a_do_start_no_program(sb):
    """A .do's redo-ifchange, one after the other, are answered through its
    job's own fifo: none of them starts a program (mkfifo included), not
    even when the run has not yet seen that the call before ended."""
    from helpers import strace
    n = 300
    for i in range(n):
        sb.write('s%d' % i, '%d\n' % i)
    sb.write('all.do', ''.join('redo-ifchange s%d\n' % i for i in range(n)) + 'echo ok\n')
    p, trace = strace(sb, 'execve', 'redo', 'all')
    assert p.returncode == 0, p.stderr
    assert sb.read('all') == 'ok\n'
    ran = [ln for ln in trace if 'execve(' in ln and '= 0' in ln]
    # redo, its Python, all.do's sh: nothing else.
    assert len(ran) == 3 and 'execve("/bin/sh", ["/bin/sh", "-e", "-c"' in ran[2], '\n'.join(ran)


def test_calls_from_subshells_and_background_of_one_do(sb):
    """Calls from a subshell, a command substitution and the background,
    mixed with the .do's own: each gets its own answer."""
    sb.write('ok.do', 'echo ok\n')
    sb.write('bad.do', 'exit 3\n')
    sb.write('all.do', '\n'.join([
        'redo-ifchange ok',
        '( redo-ifchange bad ) && echo "sub: wrong" || echo "sub: $?"',
        'x=$(redo-ifchange ok && echo yes); echo "subst: $x"',
        'redo-ifchange bad & b=$!',
        'redo-ifchange ok; echo "own: $?"',
        'wait $b && echo "bg: wrong" || echo "bg: $?"',
        'redo-ifchange bad || echo "own bad: $?"',
        'redo-ifchange ok && echo "own ok"',
    ]) + '\n')
    p = sb.redo('all', '-k')
    assert p.returncode == 0, p.stderr
    assert sb.read('all') == 'sub: 1\nsubst: yes\nown: 0\nbg: 1\nown bad: 1\nown ok\n'


def test_calls_from_subshells_with_ifs_changed(sb):
    """A .do that changed IFS (to split a list on `:`) can still call from
    a subshell and the background: the call finds its own process all the
    same."""
    sb.write('default.leaf.do', 'echo "$2"\n')
    sb.write('all.do', 'IFS=:\nredo-ifchange a.leaf\n( redo-ifchange b.leaf )\n'
                       'redo-ifchange c.leaf & wait $!\nx=$(redo-ifchange d.leaf; echo $?)\n'
                       'echo "$x"\n')
    p = no_traceback(sb.redo('all', timeout=30))
    assert p.returncode == 0, p.stderr
    assert sb.read('all') == '0\n'
    assert sb.read('b.leaf') == 'b\n' and sb.read('c.leaf') == 'c\n'


def test_set_x_in_a_do_traces_its_calls_not_the_client(sb):
    """A .do that turns on `set -x` to see what it does sees its calls to
    redo-ifchange, not the lines of the client inside them; their exit
    status stays theirs, errexit included."""
    sb.write('ok.do', 'echo ok\n')
    sb.write('bad.do', 'exit 3\n')
    sb.write('t.do', 'set -x\nredo-ifchange ok\nredo-ifchange bad || echo "bad: $?"\n'
                     '( redo-ifchange ok )\necho done\n')
    sb.write('u.do', 'set -x\nredo-ifchange bad\necho after\n')
    p = no_traceback(sb.redo('t'))
    assert p.returncode == 0, p.stderr
    assert sb.read('t') == 'bad: 1\ndone\n'
    assert '__redo' not in p.stderr.replace('+ __redo_call ', ''), p.stderr
    p = no_traceback(sb.redo('u'))
    assert p.returncode != 0 and 'after' not in p.stderr and not sb.exists('u')
