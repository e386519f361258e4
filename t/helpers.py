"""Small checks shared by several test files."""

import contextlib
import os
import shutil
import subprocess

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



def mount(*args, what):
    """Runs mount with args; skips the test, saying what could not be
    mounted, where that is not allowed here."""
    if shutil.which('mount') is None:
        pytest.skip('no mount')
    p = subprocess.run(['mount', *args], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip('cannot mount %s here: %s' % (what, p.stderr.strip()[:200]))


def umount(where):
    subprocess.run(['umount', str(where)], check=True, timeout=60)


@contextlib.contextmanager
def whole_second_fs(where):
    """A fresh ext4 with 128-byte inodes, whose file times count whole
    seconds, mounted (through a loop device) at the directory where."""
    if shutil.which('mkfs.ext4') is None:
        pytest.skip('no mkfs.ext4')
    image = str(where) + '.img'
    with open(image, 'wb') as f:
        f.truncate(32 << 20)
    p = subprocess.run(['mkfs.ext4', '-q', '-F', '-I', '128', image],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip('mkfs.ext4 -I 128 failed: %s' % p.stderr.strip()[:200])
    os.makedirs(str(where), exist_ok=True)
    mount('-o', 'loop', image, str(where), what='an ext4 image')
    try:
        yield where
    finally:
        umount(where)
        os.unlink(image)



@contextlib.contextmanager
def read_only_view(src, where):
    """The directory src, seen read-only at the directory where (a bind
    mount, remounted read-only)."""
    os.makedirs(str(where), exist_ok=True)
    mount('--bind', str(src), str(where), what='a bind mount')
    try:
        mount('-o', 'remount,ro,bind', str(where), what='a read-only bind mount')
        yield where
    finally:
        umount(where)
