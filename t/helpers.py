"""Small checks shared by several test files."""


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
