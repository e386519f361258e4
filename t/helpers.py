"""Small checks shared by several test files."""

import shutil

import pytest


def no_traceback(p):
    """No Python traceback on the stderr (text or bytes) of the finished
    process p; returns p."""
    err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode('utf-8', 'replace')
    assert 'Traceback' not in err, err
    return p


def no_traceback_anywhere(p):
    """No Python traceback on the stderr of the finished process p, nor on
    its stdout."""
    assert 'Traceback' not in p.stderr, p.stderr
    assert 'Traceback' not in p.stdout, p.stdout


def strace(sb, calls, *args, env=None):
    """Runs args in the sandbox under strace -f, tracing the system calls
    calls (with the path of each file descriptor shown); returns (the
    finished process, the trace lines).  Skips the test where strace is
    missing or not allowed."""
    if shutil.which('strace') is None:
        pytest.skip('no strace')
    out = sb.path.parent / (sb.path.name + '.strace')
    p = sb.run('strace', '-f', '-qq', '-y', '-e', 'signal=none', '-e', 'trace=' + calls,
               '-o', str(out), *args, env=env)
    if not out.exists() or 'strace: ' in p.stderr:
        pytest.skip('strace does not work here: %s' % p.stderr.strip()[:200])
    lines = out.read_text(errors='replace').splitlines()
    out.unlink()
    return p, lines
