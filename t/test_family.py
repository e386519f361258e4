"""The semantics the redo family shares (SPEC §2-§5), as projects written
for other redos rely on them: each test is a habit of a user of
apenwarr/redo, goredo or redo-c, run on real .do files.  A .do must not be
able to tell that its redo-ifchange did not start a new program."""

import os
import shutil
import subprocess
import sys

import pytest

from helpers import no_traceback

sys.path.insert(0, os.path.dirname(__file__))
from test_tools import example  # noqa: F401  (a fixture)


def count(sb, name):
    return len(sb.log(name))


# ---------------------------------------------------------------------------
# §4 dependencies are checked in the order the .do asked for them
# ---------------------------------------------------------------------------

def test_spec4_order_example_survives_a_deleted_page(example):
    example.redo()
    (example.path / 'pages' / 'new.txt').write_text('New\nA new page.\n')
    example.redo()
    assert (example.path / 'site' / 'new.html').exists()
    (example.path / 'pages' / 'new.txt').unlink()
    r = example.redo()
    assert 'new.html' not in (example.path / 'site' / 'stats.txt').read_text()
    assert 'no .do file' not in r.stderr
    example.redo()                                # and every build after it


def test_spec4_order_removed_list_member_never_breaks_build(sb):
    for name in ('a', 'b', 'c'):
        sb.write(name + '.c', name + '\n')
    sb.write('list.do', 'redo-always\nls *.c >$3\nredo-stamp <$3\n')
    sb.write('default.o.do', 'redo-ifchange $2.c\ncat $2.c >$3\n')
    sb.write('all.do', 'redo-ifchange list\nredo-ifchange $(sed "s/c$/o/" list)\n'
                       'cat $(sed "s/c$/o/" list) >$3\n')
    sb.ifchange('all', check=True)
    assert sb.read('all') == 'a\nb\nc\n'
    os.unlink(sb.path / 'b.c')
    r = no_traceback(sb.ifchange('all'))
    assert r.returncode == 0, r.stderr
    assert sb.read('all') == 'a\nc\n'
    sb.ifchange('all', check=True)


def test_spec4_order_first_change_stops_the_check(sb):
    # After `first` changes, `second` (a dependency the .do no longer asks
    # for) is neither checked nor built.
    sb.write('mode', 'one\n')
    sb.write('second.do', 'echo x >>second.runs\necho second\n')
    sb.write('top.do', 'redo-ifchange mode\n'
                       'if [ "$(cat mode)" = one ]; then redo-ifchange second; fi\n'
                       'echo built\n')
    sb.ifchange('top', check=True)
    assert count(sb, 'second.runs') == 1
    sb.write('second.do', 'echo x >>second.runs\nexit 1\n')   # it would fail now
    sb.write('mode', 'two\n')
    sb.ifchange('top', check=True)
    assert count(sb, 'second.runs') == 1


# ---------------------------------------------------------------------------
# §2 `redo` means now
# ---------------------------------------------------------------------------

def test_spec2_redo_twice_in_one_do_runs_twice(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.write('all.do', 'redo x\nredo x\n')
    sb.redo('all', check=True)
    assert count(sb, 'runs') == 2


def test_spec2_redo_sees_a_change_made_between_two_calls(sb):
    sb.write('x.do', 'if [ -e flag ]; then echo yes; else echo no; fi\n')
    sb.write('all.do', 'rm -f flag\nredo x\ncat x >first\ntouch flag\nredo x\ncat x >second\n')
    sb.redo('all', check=True)
    assert sb.read('first') == 'no\n'
    assert sb.read('second') == 'yes\n'


def test_spec4_ifchange_builds_once_per_run_after_redo(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.write('all.do', 'redo x\nredo-ifchange x\nredo-ifchange x\n')
    sb.redo('all', check=True)
    assert count(sb, 'runs') == 1


# ---------------------------------------------------------------------------
# §5 failures belong to the caller
# ---------------------------------------------------------------------------

def test_spec5_failure_handled_by_caller_is_success(sb):
    sb.write('f.do', 'false\n')
    sb.write('all.do', 'redo f || true\necho ok\n')
    r = sb.redo('all')
    assert r.returncode == 0, r.stderr
    assert sb.read('all') == 'ok\n'
    assert 'f failed' in r.stderr


def test_spec5_failure_handled_by_caller_lets_siblings_build(sb):
    sb.write('f.do', 'false\n')
    sb.write('g.do', 'echo g\n')
    sb.write('all.do', 'redo-ifchange f || :\nredo-ifchange g\necho ok\n')
    r = sb.redo('-j1', 'all')
    assert r.returncode == 0, r.stderr
    assert sb.read('g') == 'g\n'


def test_spec5_failure_stops_the_rest_of_that_call_only(sb):
    sb.write('f.do', 'false\n')
    sb.write('b.do', 'echo b >>runs\necho b\n')
    sb.write('c.do', 'echo c >>runs\necho c\n')
    sb.write('all.do', 'redo-ifchange f b || :\nredo-ifchange c\n')
    r = sb.redo('-j1', 'all')
    assert r.returncode == 0, r.stderr
    assert sb.log('runs') == ['c'], 'b comes after the failure in its call'


def test_spec5_failure_unhandled_fails_the_run(sb):
    sb.write('f.do', 'false\n')
    sb.write('all.do', 'redo-ifchange f\necho not reached\n')
    r = sb.redo('all', check=False)
    assert r.returncode == 1
    assert not sb.exists('all')


def test_spec5_top_level_status_is_that_of_its_targets(sb):
    sb.write('f.do', 'false\n')
    sb.write('g.do', 'echo g\n')
    assert sb.redo('-k', 'f', 'g').returncode == 1
    assert sb.read('g') == 'g\n'


# ---------------------------------------------------------------------------
# §5 options of nested calls
# ---------------------------------------------------------------------------

def test_spec5_nested_keep_going(sb):
    sb.write('a.do', 'false\n')
    sb.write('b.do', 'echo b\n')
    sb.write('all.do', 'redo -k a b || :\n')
    r = sb.redo('-j1', 'all')
    assert r.returncode == 0, r.stderr
    assert sb.read('b') == 'b\n'


def test_spec5_nested_keep_going_in_ifchange_function(sb):
    sb.write('a.do', 'false\n')
    sb.write('b.do', 'echo b\n')
    sb.write('all.do', 'redo-ifchange -k a b || echo failed >status\n')
    sb.redo('-j1', 'all', check=True)
    assert sb.read('b') == 'b\n'
    assert sb.read('status') == 'failed\n'


def test_spec5_nested_j1_builds_first_tree_before_second(sb):
    sb.write('first.do', 'redo-ifchange a\n[ ! -e second.start ]\n')
    sb.write('a.do', 'redo-ifchange b c\nsleep 0.2\n')
    sb.write('b.do', 'sleep 0.2\n')
    sb.write('c.do', 'sleep 0.1\n')
    sb.write('second.do', ': >second.start\n')
    sb.write('all.do', 'redo -j1 first second\n')
    r = sb.redo('-j4', 'all')
    assert r.returncode == 0, r.stderr


def test_spec5_j1_resumes_parent_before_new_script(sb):
    sb.write('first.do', 'redo a\n[ ! -e second.start ]\n')
    sb.write('a.do', 'redo b\nredo c\n')
    sb.write('b.do', ':\n')
    sb.write('c.do', ':\n')
    sb.write('second.do', ': >second.start\n')
    r = sb.redo('-j1', 'first', 'second')
    assert r.returncode == 0, r.stderr
    assert sb.exists('second.start')


def test_spec5_shuffle_builds_everything_nested_too(sb):
    names = ['t%d' % i for i in range(12)]
    for n in names:
        sb.write(n + '.do', 'echo %s >>order\necho %s\n' % (n, n))
    sb.write('all.do', 'redo-ifchange --shuffle %s\n' % ' '.join(names))
    sb.redo('-j1', 'all', check=True)
    order = sb.log('order')
    assert sorted(order) == sorted(names)
    orders = {tuple(order)}
    for _ in range(4):
        os.unlink(sb.path / 'order')
        sb.redo('-j1', '--shuffle', *names, check=True)
        orders.add(tuple(sb.log('order')))
    assert len(orders) > 1, 'five shuffled builds of 12 targets, all in one order'


def test_spec5_shuffle_is_in_help(sb):
    assert '--shuffle' in sb.redo('--help', check=True).stdout


# ---------------------------------------------------------------------------
# §3 environment of the call
# ---------------------------------------------------------------------------

def test_spec3_prefix_assignment_reaches_the_do(sb):
    sb.write('x.do', 'echo ${V-unset}\n')
    sb.write('all.do', 'V=1 redo x\n')
    sb.redo('all', check=True)
    assert sb.read('x') == '1\n'


def test_spec3_exported_variable_reaches_the_do(sb):
    sb.write('install.do', 'echo "$DESTDIR" >$3\n')
    sb.write('all.do', 'export DESTDIR=/tmp/d\nredo install\n')
    sb.redo('all', check=True)
    assert sb.read('install') == '/tmp/d\n'


def test_spec3_environment_with_quotes_and_newlines(sb):
    sb.write('x.do', 'printf "%s" "$V"\n')
    sb.write('all.do', "V=\"it's a \\\"test\\\"\n\\$x\" redo-ifchange x\n")
    sb.redo('all', check=True)
    assert sb.read('x') == 'it\'s a "test"\n$x'


def test_spec3_unexported_variable_does_not_reach_the_do(sb):
    sb.write('x.do', 'echo ${V-unset}\n')
    sb.write('all.do', 'V=1\nredo x\n')
    sb.redo('all', check=True)
    assert sb.read('x') == 'unset\n'


def test_spec3_environment_through_xargs_client(sb):
    sb.write('x.do', 'echo ${V-unset}\n')
    sb.write('all.do', 'echo x | V=2 xargs redo-ifchange\n')
    sb.redo('all', check=True)
    assert sb.read('x') == '2\n'


def test_spec3_environment_under_bash_as_sh(sb):
    bash = shutil.which('bash')
    if bash is None:
        pytest.skip('no bash')
    sb.write('x.do', '#!%s\necho "${V-unset}"\n' % bash, mode=0o755)
    sb.write('all.do', '#!%s -e\nV="a b" redo-ifchange x\n' % bash, mode=0o755)
    sb.redo('all', check=True)
    assert sb.read('x') == 'a b\n'


# ---------------------------------------------------------------------------
# §3 $3 beside the target
# ---------------------------------------------------------------------------

def test_spec3_tmp3_in_target_directory(sb):
    sb.write('default.do', 'echo "$1 $(dirname "$3")" >$3\n')
    sb.write('a/b/keep', '')
    sb.ifchange('t', 'a/b/f', check=True)
    assert sb.read('t') == 't .\n'
    assert sb.read('a/b/f') == 'a/b/f a/b\n'


def test_spec3_tmp3_ends_with_target_name(sb):
    sb.write('x.tar.gz.do', 'echo "$3" >$3\n')
    sb.ifchange('x.tar.gz', check=True)
    assert sb.read('x.tar.gz').strip().endswith('x.tar.gz')
    assert os.path.basename(sb.read('x.tar.gz').strip()).startswith('.')


def test_spec3_do_that_removes_target_directory_first(sb):
    # x/.redo (and what redo keeps there while it builds) was made earlier
    # in the same run.
    sb.write('x/z.do', 'echo z\n')
    sb.write('all.do', 'redo-ifchange x/z\nrm -rf x\nmkdir x\nprintf "echo y2\\n" >x/y.do\n'
                       'redo-ifchange x/y\n')
    r = no_traceback(sb.redo('all', timeout=30))
    assert r.returncode == 0, r.stderr
    assert sb.read('x/y') == 'y2\n'


def test_spec5_removed_state_directory_is_no_hang(sb):
    sb.write('all.do', 'redo-ifchange d/c\nrm -rf d\nmkdir d\necho "echo b" >d/b.do\n'
                       'redo-ifchange d/b\n')
    for j in ('-j1', '-j2'):
        sb.write('d/c.do', 'echo c\n')
        r = no_traceback(sb.redo(j, 'all', timeout=30))
        assert r.returncode == 0, r.stderr
        assert sb.read('d/b') == 'b\n'


# ---------------------------------------------------------------------------
# §3 stdout is a regular file
# ---------------------------------------------------------------------------

def test_spec3_stdout_is_seekable(sb):
    sb.write('x.do', 'printf "aaaa"\nexec 3<>/dev/fd/1\n'
                     'python3 -c "import os; os.lseek(1, 0, 0); os.write(1, b\'b\')"\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'baaa'


def test_spec3_cc_writes_object_to_stdout(sb):
    if shutil.which('cc') is None:
        pytest.skip('no cc')
    sb.write('x.c', 'int x(void) { return 42; }\n')
    sb.write('x.o.do', 'redo-ifchange x.c\ncc -c -o /dev/fd/1 x.c\n')
    r = sb.ifchange('x.o')
    assert r.returncode == 0, r.stderr
    assert sb.path.joinpath('x.o').read_bytes()[:4] == b'\x7fELF'


def test_spec3_stdout_leaves_nothing_behind(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('v.do', ':\n')
    sb.write('f.do', 'echo partial\nexit 1\n')
    sb.ifchange('x', 'v', check=True)
    sb.ifchange('f', check=False)
    assert not sb.exists('v') and not sb.exists('f')
    left = [n for d in ('out', 'tmp') if (sb.path / '.redo' / d).exists()
            for n in os.listdir(sb.path / '.redo' / d)]
    assert left == []
    assert [n for n in os.listdir(sb.path) if n.startswith('.redo3')] == []


# ---------------------------------------------------------------------------
# §3 #! on a .do that is not executable
# ---------------------------------------------------------------------------

def test_spec3_shebang_honoured_without_exec_bit(sb):
    if shutil.which('perl') is None:
        pytest.skip('no perl')
    sb.write('x.do', '#!/usr/bin/env perl\nprint "perl $ARGV[0]\\n";\n', mode=0o644)
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'perl x\n'


def test_spec3_shebang_with_argument_without_exec_bit(sb):
    sb.write('x.do', '#!/bin/sh -e\necho "args $1 $2"\nfalse\necho not reached\n', mode=0o644)
    sb.ifchange('x', check=False)
    sb.write('y.do', '#!/bin/sh -e\necho "args $1 $2"\n', mode=0o644)
    sb.ifchange('y', check=True)
    assert sb.read('y') == 'args y y\n'


# ---------------------------------------------------------------------------
# §3 mkdir "$1" is accepted; writing $1 as a file is not
# ---------------------------------------------------------------------------

def test_spec3_mkdir_target_accepted(sb):
    sb.write('d.do', 'mkdir "$1"\necho hi >"$1/f"\n')
    sb.ifchange('d', check=True)
    assert sb.read('d/f') == 'hi\n'
    sb.ifchange('d', check=True)
    sb.redo('d', check=False)         # mkdir fails: it exists (the .do's own doing)


def test_spec3_mkdir_target_dependents_see_it(sb):
    sb.write('d.do', 'rm -rf "$1"\nmkdir "$1"\ncat src >"$1/f"\nredo-ifchange src\n')
    sb.write('src', 'one\n')
    sb.write('use.do', 'redo-ifchange d\ncat d/f\n')
    sb.ifchange('use', check=True)
    assert sb.read('use') == 'one\n'


def test_spec3_writing_target_file_still_an_error(sb):
    sb.write('x.do', 'echo hi >"$1"\n')
    r = sb.ifchange('x', check=False)
    assert 'wrote to $1 itself' in r.stderr


# ---------------------------------------------------------------------------
# §3 a target whose .do is gone is a source
# ---------------------------------------------------------------------------

def test_spec3_target_without_do_becomes_source(sb):
    sb.write('genfile2.do', 'echo gen2\n')
    sb.write('genfile1.do', 'echo x >>runs\nredo-ifchange genfile2\ncat genfile2\n')
    sb.redo('genfile1', check=True)
    os.unlink(sb.path / 'genfile2.do')
    r = sb.redo('genfile1')
    assert r.returncode == 0, r.stderr
    assert 'no .do file' not in r.stderr
    assert count(sb, 'runs') == 2
    sb.ifchange('genfile1', check=True)
    assert count(sb, 'runs') == 2
    assert 'genfile2' in sb.run('redo-sources', check=True).stdout.split()
    assert 'genfile2' not in sb.run('redo-targets', check=True).stdout.split()
    assert sb.run('redo-ood', check=True).stdout == ''


# ---------------------------------------------------------------------------
# §3 a redo cut off from the run is an independent redo
# ---------------------------------------------------------------------------

def test_spec3_unset_redo_run_starts_independent_redo(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('all.do', 'unset REDO_RUN REDO_PID\nredo x\n')
    r = no_traceback(sb.redo('all', timeout=60))
    assert r.returncode == 0, r.stderr
    assert sb.read('x') == 'x\n'
    assert 'lost contact' not in r.stderr


def test_spec3_env_i_starts_independent_redo(sb):
    sb.write('x.do', 'echo x\n')
    sb.write('all.do', 'env -i PATH="$PATH" redo x\n')
    r = no_traceback(sb.redo('all', timeout=60))
    assert r.returncode == 0, r.stderr
    assert sb.read('x') == 'x\n'


def test_spec3_cut_off_redo_writes_nothing_outside(sb, tmp_path):
    sb.write('x.do', 'echo x\n')
    sb.write('all.do', 'unset REDO_RUN\nredo-ifchange x\n')
    before = set(os.listdir('/'))
    sb.redo('all', check=True, timeout=60)
    assert set(os.listdir('/')) <= before


# ---------------------------------------------------------------------------
# §3 the stderr of a nested call
# ---------------------------------------------------------------------------

def test_spec3_nested_stderr_redirect_captures_subtree(sb):
    sb.write('x.do', 'echo from-x >&2\nredo-ifchange y\necho x\n')
    sb.write('y.do', 'echo from-y >&2\necho y\n')
    sb.write('all.do', 'redo-ifchange x 2>e\ncat e\n')
    r = sb.redo('all', check=True)
    captured = sb.read('e')
    assert 'from-x' in captured and 'from-y' in captured
    assert 'from-x' not in r.stderr and 'from-y' not in r.stderr
    assert sb.run('redo-log', 'x', check=True).stdout.count('from-x') == 1


def test_spec3_nested_stderr_to_dev_null(sb):
    sb.write('x.do', 'echo noisy >&2\n')
    sb.write('all.do', 'redo x 2>/dev/null\n')
    r = sb.redo('all', check=True)
    assert 'noisy' not in r.stderr


def test_spec3_nested_stderr_through_program_client(sb):
    sb.write('x.do', 'echo from-x >&2\n')
    sb.write('all.do', 'echo x | xargs redo-ifchange 2>e\n')
    r = sb.redo('all', check=True)
    assert 'from-x' in sb.read('e')
    assert 'from-x' not in r.stderr


# ---------------------------------------------------------------------------
# §2 names with .. resolved as the kernel does
# ---------------------------------------------------------------------------

def test_spec2_dotdot_after_symlinked_directory(sb):
    sb.write('f', 'top\n')
    sb.write('y/f', 'inner\n')
    os.symlink('.', sb.path / 'y' / 'x')
    sb.write('all.do', 'cd y/x && redo-ifchange "$PWD/../f" && cat "$PWD/../f"\n')
    r = sb.redo('all', check=True)
    assert sb.read('all') == 'top\n'
    rec = (sb.path / '.redo' / 'all.rec').read_text()
    assert 'Dep: f\n' in rec, rec


# ---------------------------------------------------------------------------
# §2 redo-targets and redo-sources
# ---------------------------------------------------------------------------

def test_spec2_targets_leaves_out_never_built_and_hand_edited(sb):
    sb.write('bad.do', 'exit 1\n')
    sb.write('ok.do', 'echo ok\n')
    sb.write('edited.do', 'echo e\n')
    sb.ifchange('ok', 'edited', check=True)
    sb.ifchange('bad', check=False)
    sb.write('edited', 'by hand\n')
    targets = sb.run('redo-targets', check=True).stdout.split()
    assert targets == ['ok']
    sb.write('user.do', 'redo-ifchange edited\n')
    sb.ifchange('user', check=True)
    assert 'edited' in sb.run('redo-sources', check=True).stdout.split()


# ---------------------------------------------------------------------------
# §2 redo-recheck
# ---------------------------------------------------------------------------

def test_spec2_recheck_outside_build_is_ok(sb):
    assert sb.run('redo-recheck').returncode == 0
    assert sb.run('redo-recheck', 'x').returncode == 0


def test_spec2_recheck_lets_a_do_see_a_rebuild(sb):
    sb.write('src', 'one\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.write('test.do', 'redo-ifchange x\ncp x first\n'
                        'echo two >src\n'
                        'redo-ifchange x\ncp x unchecked\n'
                        'redo-recheck x\n'
                        'redo-ifchange x\ncp x second\n')
    sb.redo('test', check=True)
    assert sb.read('first') == 'one\n'
    assert sb.read('unchecked') == 'one\n'
    assert sb.read('second') == 'two\n'


def test_spec2_recheck_with_no_arguments_forgets_everything(sb):
    sb.write('src', 'one\n')
    sb.write('x.do', 'redo-ifchange src\ncat src\n')
    sb.write('test.do', 'redo-ifchange x\necho two >src\nredo-recheck\n'
                        'redo-ifchange x\ncp x second\n')
    sb.redo('test', check=True)
    assert sb.read('second') == 'two\n'


def test_spec2_recheck_help(sb):
    assert 'redo-recheck' in sb.run('redo-recheck', '--help', check=True).stdout


# ---------------------------------------------------------------------------
# §1 the rules above hold whichever shell is /bin/sh
# ---------------------------------------------------------------------------

def bin_sh_as(sb, shell, *args):
    """Runs redo with args in a mount namespace where /bin/sh is shell;
    skips where that cannot be done here."""
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip('no %s here' % shell)
    if shell == 'busybox':
        wrapper = sb.path.parent / 'busybox-sh'
        wrapper.write_text('#!%s sh\nexec %s sh "$@"\n' % (exe, exe))
        os.chmod(wrapper, 0o755)
        exe = str(wrapper)
    if shutil.which('unshare') is None:
        pytest.skip('no unshare')
    probe = subprocess.run(['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /bin/sh', exe],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip('cannot bind-mount /bin/sh here')
    return sb.run('unshare', '-m', 'sh', '-c', 'mount --bind "$0" /bin/sh && exec redo "$@"',
                  exe, *args, timeout=120)


@pytest.mark.parametrize('shell', ['dash', 'bash', 'ksh', 'busybox'])
def test_spec1_family_rules_under_each_bin_sh(sb, shell):
    sb.write('x.do', 'printf "%s" "${V-unset}"\necho xerr >&2\n')
    sb.write('f.do', 'false\n')
    sb.write('y.do', 'echo y >>yruns\n')
    sb.write('all.do', 'V="a b\'c\n\\$d" redo-ifchange x 2>e\ncp x x1\n'
                       'redo -k f y || :\nredo y\nredo-ifchange --shuffle x\n')
    r = no_traceback(bin_sh_as(sb, shell, 'all'))
    assert r.returncode == 0, r.stderr
    assert sb.read('x1') == "a b'c\n$d"
    assert 'xerr' in sb.read('e') and 'xerr' not in r.stderr
    assert sb.log('yruns') == ['y', 'y']


def test_spec3_nested_stderr_in_subshell_command_substitution_and_pipe(sb):
    sb.write('default.do', 'echo "$1 stderr" >&2\n')
    sb.write('all.do', '(redo-ifchange b) 2>b.err\n'
                       'out=$(redo-ifchange d 2>&1)\necho "$out" >d.err\n'
                       'redo-ifchange e 2>&1 | cat >e.err\n')
    r = sb.redo('all', check=True)
    for t in 'bde':
        assert '%s stderr' % t in sb.read(t + '.err'), t
        assert '%s stderr' % t not in r.stderr


def test_spec3_debug_lines_follow_the_nested_stderr(sb):
    sb.write('y.do', 'echo y\n')
    sb.write('all.do', 'redo -d y 2>y.err\n')
    r = sb.redo('all', check=True)
    assert 'debug: y' in sb.read('y.err')
    assert 'debug: y' not in r.stderr


@pytest.mark.parametrize('shell', ['bash', 'ksh'])
def test_spec3_environment_bytes_under_each_shell(sb, shell):
    # bash and ksh print bytes that are not ASCII as $'\303' escapes.
    sb.write('x.do', 'printf %s "$U" | od -An -b\n')
    sb.write('all.do', 'redo x\n')
    sb.env['U'] = '\u00e9\udcff'
    sb.env['LC_ALL'] = 'C'
    r = no_traceback(bin_sh_as(sb, shell, 'all'))
    assert r.returncode == 0, r.stderr
    assert sb.read('x').split() == ['303', '251', '377']


def test_spec3_a_do_says_its_lines_before_those_of_what_it_builds(sb):
    sb.write('all.do', 'echo "all before" >&2\nredo x\necho "all after" >&2\n')
    sb.write('x.do', 'echo "x before" >&2\nredo x2\necho "x after" >&2\n')
    sb.write('x2.do', 'echo "x2 err" >&2\n')
    for _ in range(5):
        for t in ('all', 'x', 'x2'):
            if sb.exists(t):
                os.unlink(sb.path / t)
        r = sb.run('sh', '-c', 'redo -j1 all 2>&1 | cat', check=True)
        lines = [l for l in r.stdout.splitlines()]
        assert 'redo    x' in lines, r.stdout
        assert lines.index('all before') < lines.index('redo    x') < lines.index('x before') \
            < lines.index('redo      x2'), lines


def test_spec3_redo_of_a_target_whose_do_is_gone(sb):
    sb.write('x.do', 'echo one\n')
    sb.write('y.do', 'redo x\n')
    sb.redo('y', check=True)
    os.unlink(sb.path / 'x.do')
    r = sb.redo('y')
    assert r.returncode == 0, r.stderr
    assert sb.read('x') == 'one\n'
