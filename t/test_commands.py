"""SPEC §2: every command, what it does, --help and --version, dispatch.

Each test runs the real redo.py (through the sandbox's symlinks, or as
./redo.py) on real .do files, and checks files, exit codes and output."""

import os
import re
import shutil

import pytest

from conftest import COMMANDS, REDO_PY
from helpers import no_traceback_anywhere


def lines(text):
    return [x for x in text.split('\n') if x]


def small_tree(sb):
    """all -> a -> (b, src); c is an unrelated target; b is built from src2.
    Every .do appends its name to `runs`."""
    sb.write('src', 'source\n')
    sb.write('src2', 'source2\n')
    sb.write('all.do', 'echo all >>runs\nredo-ifchange a c\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange b src\ncat b src\n')
    sb.write('b.do', 'echo b >>runs\nredo-ifchange src2\necho b-err >&2\ncat src2\n')
    sb.write('c.do', 'echo c >>runs\necho c\n')


# ---------------------------------------------------------------------------
# Every command answers --help and --version
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cmd', COMMANDS)
def test_every_command_answers_help(sb, cmd):
    p = sb.run(cmd, '--help')
    assert p.returncode == 0, p.stderr
    no_traceback_anywhere(p)
    assert re.search(r'(^|\W)%s(\W|$)' % re.escape(cmd), p.stdout), p.stdout
    assert 'usage' in p.stdout.lower()


@pytest.mark.parametrize('cmd', COMMANDS)
def test_every_command_answers_version(sb, cmd):
    p = sb.run(cmd, '--version')
    assert p.returncode == 0, p.stderr
    no_traceback_anywhere(p)
    assert 'redo' in p.stdout
    assert re.search(r'\d+\.\d+', p.stdout), p.stdout


def test_every_command_version_names_the_command(sb):
    for cmd in COMMANDS:
        p = sb.run(cmd, '--version', check=True)
        assert cmd in p.stdout.split('\n')[0].split(), (cmd, p.stdout)


def test_help_does_not_build_anything(sb):
    sb.write('all.do', 'echo all >>runs\n')
    sb.redo('--help', check=True)
    sb.ifchange('--help', 'all', check=True)
    assert sb.log('runs') == []


# ---------------------------------------------------------------------------
# Dispatch: by program name (the sandbox symlinks) or by first argument
# ---------------------------------------------------------------------------

def vendored(sb):
    """redo.py copied into the project, and a PATH without the commands."""
    shutil.copy(REDO_PY, sb.path / 'redo.py')
    path = ':'.join(x for x in sb.env['PATH'].split(':') if x != str(sb.bindir))
    return {'PATH': path}


def test_dispatch_plain_redo_py_builds_all(sb):
    env = vendored(sb)
    sb.write('all.do', 'echo all >>runs\nredo-ifchange x\necho done\n')
    sb.write('x.do', 'echo x >>runs\necho x\n')
    p = sb.run('./redo.py', env=env)
    assert p.returncode == 0, p.stderr
    assert sb.read('all') == 'done\n'
    assert sb.read('x') == 'x\n'
    assert sorted(sb.log('runs')) == ['all', 'x']


@pytest.mark.parametrize('word', ['ifchange', 'redo-ifchange'])
def test_dispatch_by_first_argument_ifchange(sb, word):
    env = vendored(sb)
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.run('./redo.py', word, 'x', env=env, check=True)
    assert sb.read('x') == 'x\n'
    # ifchange, not redo: a second run with nothing changed builds nothing
    sb.run('./redo.py', word, 'x', env=env, check=True)
    assert sb.log('runs') == ['x']
    # and the word was not taken as a target
    assert not sb.exists(word)


@pytest.mark.parametrize('word', ['targets', 'redo-targets'])
def test_dispatch_by_first_argument_listing_command(sb, word):
    env = vendored(sb)
    sb.write('all.do', 'echo all >>runs\n')
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.run('./redo.py', 'x', env=env, check=True)
    p = sb.run('./redo.py', word, env=env, check=True)
    assert lines(p.stdout) == ['x']
    assert sb.log('runs') == ['x']       # `all` was not built


@pytest.mark.parametrize('word', ['redo', 'redo-redo'])
def test_dispatch_by_first_argument_redo(sb, word):
    env = vendored(sb)
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.run('./redo.py', word, 'x', env=env, check=True)
    sb.run('./redo.py', word, 'x', env=env, check=True)
    assert sb.log('runs') == ['x', 'x']


def test_dispatch_vendored_do_scripts_find_every_command(sb):
    env = vendored(sb)
    sb.write('all.do', 'redo-ifchange x\nredo-ifcreate nothere\n'
                       'command -v redo-always >/dev/null\ncat x\n')
    sb.write('x.do', 'redo-always\necho same | redo-stamp\necho x\n')
    p = sb.run('./redo.py', env=env)
    assert p.returncode == 0, p.stderr
    assert sb.read('all') == 'x\n'


def test_dispatch_by_program_name_copy(sb):
    """A copy (not a symlink) of redo.py named redo-targets is redo-targets."""
    d = sb.path / 'bin2'
    d.mkdir()
    shutil.copy(REDO_PY, d / 'redo-targets')
    sb.write('x.do', 'echo x\n')
    sb.redo('x', check=True)
    p = sb.run(str(d / 'redo-targets'), check=True)
    assert lines(p.stdout) == ['x']


# ---------------------------------------------------------------------------
# redo
# ---------------------------------------------------------------------------

def test_redo_default_target_is_all(sb):
    sb.write('all.do', 'echo all >>runs\necho built\n')
    sb.redo(check=True)
    assert sb.read('all') == 'built\n'
    assert sb.log('runs') == ['all']


def test_redo_builds_even_if_up_to_date(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.redo('x', check=True)
    sb.redo('x', check=True)
    assert sb.log('runs') == ['x', 'x']


def test_redo_builds_each_named_target(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.write('y.do', 'echo y >>runs\necho y\n')
    sb.redo('x', 'y', check=True)
    assert sorted(sb.log('runs')) == ['x', 'y']
    assert sb.read('y') == 'y\n'


def test_redo_does_not_record_dependency_in_caller(sb):
    sb.write('src', '1\n')
    sb.write('b.do', 'redo-ifchange src\ncat src\n')
    sb.write('a.do', 'echo a >>runs\nredo b\necho a\n')
    sb.ifchange('a', check=True)
    assert sb.read('b') == '1\n'
    sb.write('src', '2\n')
    p = sb.ifchange('a', check=True)
    assert sb.log('runs') == ['a'], p.stderr        # a does not depend on b
    p = sb.run('redo-affects', 'b', check=True)
    assert 'a' not in lines(p.stdout)


def test_redo_failure_exits_nonzero(sb):
    sb.write('x.do', 'exit 3\n')
    p = sb.redo('x', check=False)
    no_traceback_anywhere(p)


# ---------------------------------------------------------------------------
# redo-ifchange
# ---------------------------------------------------------------------------

def test_ifchange_works_at_top_level(sb):
    sb.write('x.do', 'echo x >>runs\necho x\n')
    sb.ifchange('x', check=True)
    assert sb.read('x') == 'x\n'


def test_ifchange_builds_only_out_of_date(sb):
    sb.write('src', '1\n')
    sb.write('x.do', 'echo x >>runs\nredo-ifchange src\ncat src\n')
    sb.write('y.do', 'echo y >>runs\necho y\n')
    sb.ifchange('x', 'y', check=True)
    sb.ifchange('x', 'y', check=True)
    assert sorted(sb.log('runs')) == ['x', 'y']
    sb.write('src', '2\n')
    sb.ifchange('x', 'y', check=True)
    assert sorted(sb.log('runs')) == ['x', 'x', 'y']
    assert sb.read('x') == '2\n'


def test_ifchange_records_dependency_of_running_target(sb):
    sb.write('src', '1\n')
    sb.write('dep.do', 'echo dep >>runs\ncat src\n')     # does not depend on src
    sb.write('x.do', 'redo-ifchange dep\necho x >>runs\ncat dep\n')
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['dep', 'x']
    # rebuilding dep by hand with new content makes x out of date
    sb.write('src', '2\n')
    sb.redo('dep', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['dep', 'x', 'dep', 'x']
    assert sb.read('x') == '2\n'


def test_ifchange_failure_of_dependency_fails_caller(sb):
    sb.write('bad.do', 'exit 4\n')
    sb.write('x.do', 'redo-ifchange bad\necho x\n')
    p = sb.ifchange('x', check=False)
    no_traceback_anywhere(p)
    assert not sb.exists('x')


def test_ifchange_no_arguments_at_top_level_is_fine(sb):
    sb.write('all.do', 'echo all >>runs\n')
    p = sb.ifchange(check=True)
    no_traceback_anywhere(p)
    assert sb.log('runs') == []


# ---------------------------------------------------------------------------
# redo-ifcreate
# ---------------------------------------------------------------------------

def test_ifcreate_rebuilds_when_file_appears(sb):
    sb.write('x.do', 'echo x >>runs\n[ -e flag ] || redo-ifcreate flag\necho x\n')
    sb.ifchange('x', check=True)
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x']
    sb.write('flag', '')
    sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x', 'x']


def test_ifcreate_error_when_file_exists(sb):
    sb.write('flag', 'here\n')
    sb.write('x.do', 'redo-ifcreate flag\necho x\n')
    p = sb.ifchange('x', check=False)
    no_traceback_anywhere(p)
    assert 'flag' in p.stderr
    assert not sb.exists('x')


def test_ifcreate_error_status_seen_by_do(sb):
    sb.write('flag', 'here\n')
    sb.write('x.do', 'if redo-ifcreate flag; then echo no; else echo yes; fi\n')
    sb.ifchange('x')
    assert sb.read('x') == 'yes\n'


def test_ifcreate_outside_a_build_is_an_error(sb):
    p = sb.run('redo-ifcreate', 'flag', check=False)
    no_traceback_anywhere(p)
    assert 'redo-ifcreate' in p.stderr


# ---------------------------------------------------------------------------
# redo-always
# ---------------------------------------------------------------------------

def test_always_rebuilds_in_every_run(sb):
    sb.write('x.do', 'echo x >>runs\nredo-always\necho x\n')
    for i in range(3):
        sb.ifchange('x', check=True)
    assert sb.log('runs') == ['x', 'x', 'x']


def test_always_built_at_most_once_per_run(sb):
    sb.write('x.do', 'echo x >>runs\nredo-always\necho x\n')
    sb.write('a.do', 'redo-ifchange x\necho a\n')
    sb.write('b.do', 'redo-ifchange x\necho b\n')
    sb.write('all.do', 'redo-ifchange a b x\nredo-ifchange x\n')
    sb.redo('all', check=True)
    assert sb.log('runs') == ['x']
    sb.redo('all', check=True)
    assert sb.log('runs') == ['x', 'x']


def test_always_outside_a_build_is_an_error(sb):
    p = sb.run('redo-always', check=False)
    no_traceback_anywhere(p)
    assert 'redo-always' in p.stderr


# ---------------------------------------------------------------------------
# redo-stamp
# ---------------------------------------------------------------------------

def stamp_tree(sb):
    sb.write('src', 'one\n')
    # x's own output changes every run, its stamp only when src does
    sb.write('x.do', 'redo-always\necho x >>xruns\ncat xruns\nredo-stamp <src\n')
    sb.write('a.do', 'echo a >>runs\nredo-ifchange x\necho a\n')


def test_stamp_unchanged_stamp_cuts_off_dependents(sb):
    stamp_tree(sb)
    sb.ifchange('a', check=True)
    sb.ifchange('a', check=True)
    sb.ifchange('a', check=True)
    assert sb.log('xruns') == ['x', 'x', 'x']
    assert sb.log('runs') == ['a']


def test_stamp_changed_stamp_rebuilds_dependents(sb):
    stamp_tree(sb)
    sb.ifchange('a', check=True)
    sb.write('src', 'two\n')
    sb.ifchange('a', check=True)
    assert sb.log('xruns') == ['x', 'x']
    assert sb.log('runs') == ['a', 'a']


def test_stamp_reads_stdin_outside_a_build_is_an_error(sb):
    p = sb.run('redo-stamp', input='data', check=False)
    no_traceback_anywhere(p)
    assert 'redo-stamp' in p.stderr


# ---------------------------------------------------------------------------
# redo-ood, redo-targets, redo-sources
# ---------------------------------------------------------------------------

def test_ood_lists_out_of_date_targets(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    assert sb.run('redo-ood', check=True).stdout == ''
    sb.write('src2', 'changed\n')
    p = sb.run('redo-ood', check=True)
    assert sorted(lines(p.stdout)) == ['a', 'all', 'b']
    assert sb.log('runs').count('b') == 1          # listing builds nothing


def test_ood_lists_never_built_target_after_failure(sb):
    sb.write('x.do', 'exit 1\n')
    sb.ifchange('x', check=False)
    p = sb.run('redo-ood', check=True)
    assert lines(p.stdout) == ['x']


def test_targets_lists_known_targets(sb):
    small_tree(sb)
    assert sb.run('redo-targets', check=True).stdout == ''
    sb.redo('all', check=True)
    p = sb.run('redo-targets', check=True)
    assert sorted(lines(p.stdout)) == ['a', 'all', 'b', 'c']


def test_sources_lists_known_sources(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-sources', check=True)
    got = sorted(lines(p.stdout))
    assert 'src' in got and 'src2' in got
    assert not set(got) & {'a', 'all', 'b', 'c'}
    assert set(got) <= {'src', 'src2', 'all.do', 'a.do', 'b.do', 'c.do'}


def test_listing_paths_are_relative_to_current_directory(sb):
    sb.write('sub/src', 's\n')
    sb.write('sub/x.do', 'redo-ifchange src\ncat src\n')
    sb.write('all.do', 'redo-ifchange sub/x\n')
    sb.redo('all', check=True)
    top = sb.run('redo-targets', check=True)
    assert sorted(lines(top.stdout)) == ['all', 'sub/x']
    sub = sb.run('redo-targets', cwd=sb.path / 'sub', check=True)
    assert lines(sub.stdout) == ['x']
    src = sb.run('redo-sources', cwd=sb.path / 'sub', check=True)
    assert 'src' in lines(src.stdout)
    sb.write('sub/src', 't\n')
    ood = sb.run('redo-ood', check=True)
    assert sorted(lines(ood.stdout)) == ['all', 'sub/x']
    ood = sb.run('redo-ood', cwd=sb.path / 'sub', check=True)
    assert lines(ood.stdout) == ['x']


# ---------------------------------------------------------------------------
# redo-whichdo
# ---------------------------------------------------------------------------

def test_whichdo_ends_with_existing_do_exit_0(sb):
    sb.write('.redo/top', '')
    sb.write('sub/default.c.do', 'echo\n')
    p = sb.run('redo-whichdo', 'sub/a.b.c', check=True)
    assert lines(p.stdout) == ['sub/a.b.c.do', 'sub/default.b.c.do', 'sub/default.c.do']


def test_whichdo_lists_all_candidates_exit_1(sb):
    sb.write('.redo/top', '')
    sb.write('sub/keep', '')
    p = sb.run('redo-whichdo', 'sub/a.b.c')
    assert p.returncode == 1, p.stderr
    no_traceback_anywhere(p)
    assert lines(p.stdout) == [
        'sub/a.b.c.do', 'sub/default.b.c.do', 'sub/default.c.do', 'sub/default.do',
        'default.b.c.do', 'default.c.do', 'default.do']


def test_whichdo_paths_relative_to_current_directory(sb):
    sb.write('.redo/top', '')
    sb.write('default.o.do', 'echo\n')
    sb.write('sub/keep', '')
    p = sb.run('redo-whichdo', 'x.o', cwd=sb.path / 'sub', check=True)
    assert lines(p.stdout) == ['x.o.do', 'default.o.do', 'default.do', '../default.o.do']


def test_whichdo_exact_do_is_enough(sb):
    sb.write('x.y.do', 'echo\n')
    p = sb.run('redo-whichdo', 'x.y', check=True)
    assert lines(p.stdout) == ['x.y.do']


def test_whichdo_needs_exactly_one_target(sb):
    p = sb.run('redo-whichdo', check=False)
    no_traceback_anywhere(p)
    assert p.stderr.strip()
    assert p.stdout == ''


# ---------------------------------------------------------------------------
# redo-log
# ---------------------------------------------------------------------------

def test_log_shows_stored_stderr_of_last_build(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-log', 'b', check=True)
    assert 'b-err' in p.stdout


def test_log_r_shows_what_targets_built(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-log', 'all', check=True)
    assert 'b-err' not in p.stdout
    p = sb.run('redo-log', '-r', 'all', check=True)
    assert 'b-err' in p.stdout


def test_log_of_unknown_target_is_an_error(sb):
    p = sb.run('redo-log', 'nothing', check=False)
    no_traceback_anywhere(p)
    assert 'nothing' in p.stderr


# ---------------------------------------------------------------------------
# redo-dot
# ---------------------------------------------------------------------------

def dot_edges(text):
    return set(re.findall(r'"([^"]*)"\s*->\s*"([^"]*)"', text))


def test_dot_prints_graphviz_graph(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-dot', check=True)
    assert p.stdout.lstrip().startswith(('digraph', 'strict digraph'))
    assert p.stdout.rstrip().endswith('}')
    edges = dot_edges(p.stdout)
    assert {('all', 'a'), ('all', 'c'), ('a', 'b'), ('a', 'src'), ('b', 'src2')} <= edges


def test_dot_of_named_target_only_its_graph(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-dot', 'b', check=True)
    edges = dot_edges(p.stdout)
    assert ('b', 'src2') in edges
    assert not any(a in ('all', 'a', 'c') for a, b in edges)


def test_dot_draws_a_hand_edited_target_the_same_whatever_the_order(sb):
    # Reached through b first or named alone, a is the same box with the
    # same edges.
    sb.write('src', 's\n')
    sb.write('a.do', 'redo-ifchange src\ncat src\n')
    sb.write('b.do', 'redo-ifchange a\ncat a\n')
    sb.ifchange('b', check=True)
    sb.write('a', 'by hand\n')
    whole = sb.run('redo-dot', check=True).stdout
    alone = sb.run('redo-dot', 'a', check=True).stdout
    def node(text):
        return [ln.strip() for ln in text.splitlines() if ln.strip().startswith('"a" [')]
    assert node(whole) == node(alone) and node(whole), (whole, alone)
    assert ('a', 'src') in dot_edges(whole) and ('a', 'src') in dot_edges(alone)


# ---------------------------------------------------------------------------
# redo-affects
# ---------------------------------------------------------------------------

def test_affects_lists_targets_that_would_rebuild(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-affects', 'src2', check=True)
    assert sorted(lines(p.stdout)) == ['a', 'all', 'b']
    p = sb.run('redo-affects', 'src', check=True)
    assert sorted(lines(p.stdout)) == ['a', 'all']
    p = sb.run('redo-affects', 'c.do', check=True)
    assert sorted(lines(p.stdout)) == ['all', 'c']
    # and it is a prediction that holds
    sb.write('src', 'new\n')
    before = len(sb.log('runs'))
    sb.ifchange('all', check=True)
    assert sorted(sb.log('runs')[before:]) == ['a', 'all']


def test_affects_and_dot_paths_are_relative_to_current_directory(sb):
    sb.write('sub/src', 's\n')
    sb.write('sub/deeper/src2', 't\n')
    sb.write('sub/deeper/y.do', 'redo-ifchange src2\ncat src2\n')
    sb.write('sub/x.do', 'redo-ifchange src deeper/y\ncat src deeper/y\n')
    sb.redo('sub/x', check=True)
    sub = sb.path / 'sub'
    p = sb.run('redo-affects', 'deeper/src2', cwd=sub, check=True)
    assert sorted(lines(p.stdout)) == ['deeper/y', 'x']
    p = sb.run('redo-affects', 'src2', cwd=sub / 'deeper', check=True)
    assert lines(p.stdout) == ['y']
    p = sb.run('redo-affects', 'sub/deeper/src2', check=True)
    assert sorted(lines(p.stdout)) == ['sub/deeper/y', 'sub/x']
    p = sb.run('redo-dot', cwd=sub, check=True)
    assert {('x', 'src'), ('x', 'deeper/y'), ('deeper/y', 'deeper/src2')} <= dot_edges(p.stdout)
    p = sb.run('redo-dot', 'y', cwd=sub / 'deeper', check=True)
    assert ('y', 'src2') in dot_edges(p.stdout)


def test_affects_counts_files_that_would_come(sb):
    # An ifcreate dependency, and a .do that would be found before the one
    # that builds the target, change what is built when they are created.
    sb.write('x.do', 'redo-ifcreate cfg\necho x\n')
    sb.write('default.o.do', 'echo o\n')
    sb.write('all.do', 'redo-ifchange x sub/y.o\n')
    sb.write('sub/keep', '')
    sb.redo('all', check=True)
    p = sb.run('redo-affects', 'cfg', check=True)
    assert sorted(lines(p.stdout)) == ['all', 'x']
    for do in ('sub/y.o.do', 'sub/default.o.do', 'sub/default.do'):
        p = sb.run('redo-affects', do, check=True)
        assert sorted(lines(p.stdout)) == ['all', 'sub/y.o'], do
    p = sb.run('redo-affects', 'default.do', check=True)
    assert p.stdout == ''         # after default.o.do: it would not be used
    # and it is a prediction that holds
    sb.write('sub/default.do', 'echo sub >>"%s/runs"\necho sub\n' % sb.path)
    sb.ifchange('all', check=True)
    assert sb.read('sub/y.o') == 'sub\n'


def test_affects_unknown_file_lists_nothing(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-affects', 'unrelated', check=True)
    assert p.stdout == ''


# ---------------------------------------------------------------------------
# redo-cleanup
# ---------------------------------------------------------------------------

def test_cleanup_removes_temporary_lock_and_log_files_only(sb):
    small_tree(sb)
    sb.write('sub/x.do', 'echo x-err >&2\necho x\n')
    sb.redo('all', 'sub/x', check=True)
    before = {p for p in sb.path.rglob('*') if '.redo' not in p.parts}
    p = sb.run('redo-cleanup', check=True)
    no_traceback_anywhere(p)
    after = {p for p in sb.path.rglob('*') if '.redo' not in p.parts}
    assert before == after                          # targets and sources stay
    left = [p.name for p in sb.path.rglob('*') if '.redo' in p.parts]
    assert not [n for n in left if n.endswith(('.lock', '.log', '.tmp'))], left
    assert sb.run('redo-log', 'b').stdout.count('b-err') == 0
    # the state of what was built is kept: nothing is out of date
    assert sb.run('redo-ood', check=True).stdout == ''
    n = len(sb.log('runs'))
    sb.ifchange('all', 'sub/x', check=True)
    assert len(sb.log('runs')) == n


def test_cleanup_on_clean_tree_is_fine(sb):
    p = sb.run('redo-cleanup', check=True)
    no_traceback_anywhere(p)


# ---------------------------------------------------------------------------
# Bad usage of any command: a one-line error, exit non-zero, no traceback
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cmd', COMMANDS)
def test_unknown_option_is_a_usage_error(sb, cmd):
    p = sb.run(cmd, '--no-such-option', check=False)
    no_traceback_anywhere(p)
    assert len(lines(p.stderr)) == 1, p.stderr


USAGE_ERRORS = [
    ('redo', '-j', 'x'), ('redo', '-j', '-1'), ('redo-ifchange', '--bogus'),
    ('redo-ifchange', '-j'), ('redo', ''), ('redo-whichdo',), ('redo-whichdo', 'a', 'b'),
    ('redo-affects',), ('redo-log', '--trace'), ('redo-ifcreate', 'x'), ('redo-always',),
    ('redo-targets', '-z'), ('redo-clean', '-z'), ('redo-cleandead', '--bogus'),
    ('redo-rebuild', '--install', 'x'),
]


@pytest.mark.parametrize('args', USAGE_ERRORS, ids=' '.join)
def test_every_usage_error_starts_with_the_command_name(sb, args):
    p = sb.run(*args)
    no_traceback_anywhere(p)
    assert p.returncode == 2, p.stderr
    assert len(lines(p.stderr)) == 1, p.stderr
    assert p.stderr.startswith(args[0] + ': '), p.stderr
    assert not p.stderr.startswith(args[0] + ': redo'), p.stderr


def test_usage_errors_of_redo_py_name_the_command_chosen(sb):
    shutil.copy(REDO_PY, sb.path / 'redo.py')
    p = sb.run('./redo.py', 'whichdo')
    assert p.returncode == 2
    assert p.stderr.startswith('redo-whichdo: '), p.stderr


def test_affects_without_a_file_is_a_usage_error(sb):
    small_tree(sb)
    sb.redo('all', check=True)
    p = sb.run('redo-affects')
    assert p.returncode == 2 and p.stdout == ''
    assert lines(p.stderr) == ['redo-affects: usage: redo-affects files...']


# ---------------------------------------------------------------------------
# redo-ood, redo-targets, redo-sources with arguments
# ---------------------------------------------------------------------------

def listing_tree(sb):
    """all -> (a -> src, sub/x -> sub/s); lone -> lone.src; sub/y alone."""
    for name in ('src', 'sub/s', 'lone.src', 'sub/t'):
        sb.write(name, name + '\n')
    sb.write('all.do', 'redo-ifchange a sub/x\n')
    sb.write('a.do', 'redo-ifchange src\ncat src\n')
    sb.write('sub/x.do', 'redo-ifchange s\ncat s\n')
    sb.write('sub/y.do', 'redo-ifchange t\ncat t\n')
    sb.write('lone.do', 'redo-ifchange lone.src\ncat lone.src\n')
    sb.redo('all', 'lone', 'sub/y', check=True)


def test_targets_with_arguments_lists_those_and_what_they_need(sb):
    listing_tree(sb)
    assert lines(sb.run('redo-targets', check=True).stdout) == \
        ['a', 'all', 'lone', 'sub/x', 'sub/y']
    assert lines(sb.run('redo-targets', 'all', check=True).stdout) == ['all', 'a', 'sub/x']
    assert lines(sb.run('redo-targets', 'sub', check=True).stdout) == ['sub/x', 'sub/y']
    assert lines(sb.run('redo-targets', 'lone', 'sub', 'a', check=True).stdout) == \
        ['lone', 'sub/x', 'sub/y', 'a']
    assert lines(sb.run('redo-targets', 'src', 'nothing', check=True).stdout) == []
    p = sb.run('redo-targets', '../all', cwd=sb.path / 'sub', check=True)
    assert lines(p.stdout) == ['../all', '../a', 'x']


def test_sources_with_arguments_lists_what_those_targets_are_built_from(sb):
    listing_tree(sb)
    assert lines(sb.run('redo-sources', 'all', check=True).stdout) == \
        ['a.do', 'all.do', 'src', 'sub/s', 'sub/x.do']
    assert lines(sb.run('redo-sources', 'sub', check=True).stdout) == \
        ['sub/s', 'sub/t', 'sub/x.do', 'sub/y.do']
    assert lines(sb.run('redo-sources', 'lone', check=True).stdout) == ['lone.do', 'lone.src']


def test_ood_with_arguments_lists_the_out_of_date_among_those(sb):
    listing_tree(sb)
    sb.write('sub/s', 'changed\n')
    sb.write('lone.src', 'changed\n')
    assert lines(sb.run('redo-ood', check=True).stdout) == ['all', 'lone', 'sub/x']
    assert lines(sb.run('redo-ood', 'all', check=True).stdout) == ['all', 'sub/x']
    assert lines(sb.run('redo-ood', 'a', check=True).stdout) == []
    assert lines(sb.run('redo-ood', 'sub', check=True).stdout) == ['sub/x']
    assert lines(sb.run('redo-ood', 'x', cwd=sb.path / 'sub', check=True).stdout) == ['x']


# ---------------------------------------------------------------------------
# Files outside the project print as absolute paths
# ---------------------------------------------------------------------------

@pytest.fixture
def outside():
    """A directory that shares no more than its first directory with the
    sandbox (/tmp, where pytest makes both)."""
    import tempfile
    d = tempfile.mkdtemp(prefix='redo-outside-', dir='/tmp')
    yield d
    shutil.rmtree(d)


def test_files_outside_the_project_print_as_absolute_paths(sb, outside):
    h = os.path.join(outside, 'stdio.h')
    with open(h, 'w') as f:
        f.write('int x;\n')
    sb.write('sub/x.do', 'redo-ifchange %s ../inside.h\ncat %s\n' % (h, h))
    sb.write('inside.h', '\n')
    sb.redo('sub/x', check=True)
    assert lines(sb.run('redo-sources', check=True).stdout) == \
        sorted([h, 'inside.h', 'sub/x.do'])
    p = sb.run('redo-sources', cwd=sb.path / 'sub', check=True)
    assert lines(p.stdout) == sorted([h, '../inside.h', 'x.do'])
    assert ('x', h) in dot_edges(sb.run('redo-dot', cwd=sb.path / 'sub', check=True).stdout)
    assert ('sub/x', h) in dot_edges(sb.run('redo-dot', check=True).stdout)
    assert lines(sb.run('redo-affects', h, cwd=sb.path / 'sub', check=True).stdout) == ['x']
    with open(h, 'w') as f:
        f.write('int y;\n')
    p = sb.run('redo-ifchange', '-d', 'x', cwd=sb.path / 'sub', check=True)
    assert 'x: out of date: %s changed' % h in p.stderr, p.stderr
    assert '..' not in p.stderr


def test_files_under_redo_top_dir_stay_relative(sb, outside):
    # REDO_TOP_DIR says where the project is: what is under it is inside.
    top = os.path.commonpath([outside, str(sb.path)])
    if top == '/':
        pytest.skip('the sandbox is not under /tmp')
    h = os.path.join(outside, 'h')
    with open(h, 'w') as f:
        f.write('h\n')
    sb.write('x.do', 'redo-ifchange %s\n' % h)
    sb.redo('x', check=True)
    assert lines(sb.run('redo-sources', check=True).stdout) == [h, 'x.do']
    p = sb.run('redo-sources', env={'REDO_TOP_DIR': top}, check=True)
    assert lines(p.stdout) == [os.path.relpath(h, str(sb.path)), 'x.do']


GATED = ('echo start >>runs; : >started\n'
         'i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n'
         'echo end >>runs\n')


def start_redo(sb, *args):
    import subprocess
    return subprocess.Popen(list(args), cwd=str(sb.path), env=sb.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_file(sb, name, proc):
    import time
    end = time.monotonic() + 20
    while not sb.exists(name):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, 'timed out waiting for ' + name
        time.sleep(0.01)


@pytest.mark.parametrize('output', ['echo new >$3', 'echo new'])
def test_cleanup_leaves_a_running_build_alone(sb, output):
    # Its lock, $3 or stdout file and log stay: the build ends with its
    # output in place, and a second run still waits for the lock.
    sb.write('a.do', 'echo old\n')
    sb.redo('a', check=True)
    sb.write('a.do', 'echo a-err >&2\n' + output + '\n' + GATED)
    first = start_redo(sb, 'redo', 'a')
    wait_file(sb, 'started', first)
    p = sb.run('redo-cleanup', check=True)
    no_traceback_anywhere(p)
    assert sb.exists('.redo/a.lock')
    (sb.path / 'started').unlink()
    second = start_redo(sb, 'redo', 'a')
    import time
    time.sleep(0.3)
    assert not sb.exists('started')          # the second waits for the lock
    sb.write('go', '')
    out1, err1 = first.communicate(timeout=30)
    out2, err2 = second.communicate(timeout=30)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert sb.read('a') == 'new\n'
    assert sb.log('runs') == ['start', 'end', 'start', 'end']
    assert 'Output: none' not in sb.read('.redo/a.rec')
    assert 'a-err' in sb.run('redo-log', 'a').stdout + sb.run('redo-log', 'a').stderr
    sb.run('redo-cleanup', check=True)
    assert not sb.exists('.redo/a.lock')


def test_cleanup_called_by_a_do_leaves_its_build_alone(sb):
    sb.write('a.do', 'echo partial >$3\nredo-cleanup\necho more >>$3\n')
    sb.write('all.do', 'redo-ifchange a\ncat a\n')
    sb.redo('all', check=True)
    assert sb.read('a') == 'partial\nmore\n'
    assert sb.read('all') == 'partial\nmore\n'


@pytest.mark.parametrize('name', ['sources', 'cleanup', 'ifchange', 'redo-dot'])
def test_redo_builds_a_target_named_like_a_command(sb, name):
    # The command `redo` takes no subcommand: at top level as inside a .do,
    # `redo sources` builds the target sources.  ./redo.py still dispatches.
    sb.write(name + '.do', 'echo built >>runs\necho built\n')
    sb.redo(name, check=True)
    assert sb.read(name) == 'built\n'
    sb.write('all.do', 'redo %s\n' % name)
    sb.redo('all', check=True)
    assert sb.log('runs') == ['built', 'built']
    env = vendored(sb)
    if name == 'sources':
        sb.run('./redo.py', name, env=env, check=True)
        assert sb.log('runs') == ['built', 'built']


def test_whichdo_of_an_empty_name_is_a_usage_error(sb):
    p = sb.run('redo-whichdo', '')
    assert p.returncode == 2
    assert p.stdout == ''
    assert 'empty target name' in p.stderr and 'Traceback' not in p.stderr


def test_log_trace_that_cannot_be_written_is_a_usage_error(sb):
    sb.write('x.do', 'echo x\n')
    sb.redo('x', check=True)
    for dest in ('/dev/full', str(sb.path)):
        p = sb.run('redo-log', '--trace', dest, 'x')
        assert p.returncode == 2, (dest, p.stderr)
        assert 'cannot write' in p.stderr and 'Traceback' not in p.stderr


def test_a_lock_file_that_is_not_a_file_is_named(sb):
    sb.write('a.do', 'echo a\n')
    (sb.path / '.redo').mkdir()
    os.mkfifo(sb.path / '.redo' / 'a.lock')
    p = sb.redo('a')
    assert p.returncode == 1
    assert 'a.lock' in p.stderr and 'not a regular file' in p.stderr
    assert not sb.exists('a')


def test_cleanup_called_before_the_do_writes_leaves_its_build_alone(sb):
    sb.write('all.do', 'redo-cleanup\necho hi >$3\n')
    sb.redo('all', check=True)
    assert sb.read('all') == 'hi\n'


def test_cleanup_and_a_build_that_starts_during_it(sb):
    # Many lock files make the cleanup long; a build started meanwhile must
    # end with its output in place, whichever files cleanup saw.
    (sb.path / '.redo').mkdir()
    for i in range(8000):
        (sb.path / '.redo' / ('junk%d.lock' % i)).touch()
    sb.write('x.do', 'echo data >$3\nsleep 0.5\n')
    cleanup = start_redo(sb, 'redo-cleanup')
    import time
    time.sleep(0.05)
    p = sb.redo('x')
    cleanup.communicate(timeout=60)
    assert p.returncode == 0 and cleanup.returncode == 0, p.stderr
    assert sb.read('x') == 'data\n'
    assert 'Output: none' not in sb.read('.redo/x.rec')


# ---------------------------------------------------------------------------
# -n: a dry run, as make's
# ---------------------------------------------------------------------------

def dry_project(sb):
    sb.write('a.src', 'a\n')
    sb.write('b.src', 'b\n')
    sb.write('default.o.do', 'redo-ifchange $2.src\ncat $2.src\n')
    sb.write('all.do', 'redo-ifchange a.o b.o\ncat a.o b.o\n')


def test_dry_run_lists_what_would_run_and_builds_nothing(sb):
    dry_project(sb)
    r = sb.redo('-n', 'all', check=True)
    assert r.stdout == 'redo  all\n'          # never built: its .do would say
    assert not sb.exists('all') and not sb.exists('a.o')
    sb.redo('all', check=True)
    assert sb.redo('-n', 'all', check=True).stdout == 'redo  all\n'   # redo: always
    assert sb.ifchange('-n', 'all', check=True).stdout == ''
    sb.write('b.src', 'B\n')
    r = sb.ifchange('--dry-run', 'all', check=True)
    assert r.stdout == 'redo  all\nredo    b.o\n'
    assert sb.read('b.o') == 'b\n'
    r = sb.ifchange('-n', '-d', 'all', check=True)
    assert 'b.src changed' in r.stdout


def test_dry_run_from_makeflags(sb):
    dry_project(sb)
    r = sb.redo('all', env={'MAKEFLAGS': 'n', 'MAKELEVEL': '1'}, check=True)
    assert r.stdout == 'redo  all\n'
    assert not sb.exists('all')


def test_makeflags_k_and_s(sb):
    sb.write('f.do', 'exit 1\n')
    sb.write('g.do', 'echo g\n')
    r = sb.redo('f', 'g', env={'MAKEFLAGS': 'ks -j1', 'MAKELEVEL': '1'})
    assert r.returncode == 1
    assert sb.read('g') == 'g\n'
    assert 'redo  g' not in r.stderr


def test_dry_run_inside_a_build_is_an_error(sb):
    sb.write('all.do', 'redo -n x || echo "status $?" >status\n')
    sb.redo('all', check=True)
    assert sb.read('status') == 'status 2\n'
