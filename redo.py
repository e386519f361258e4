#!/bin/sh
# redo.py 0.1.0 - djb's redo build system in one file.  MIT licence, see COPYING or `redo --help`.
""":"
# ---- POSIX sh part: the fast path, read by /bin/sh, a string to Python ----
# Inside a running build (REDO_RUN names the coordinator's directory) the
# commands that change the build are answered by the coordinator process:
# this client writes its request to a file, names it on the coordinator's
# fifo and waits for a one-line answer, without starting Python (the
# protocol: §16; the same client as shell functions: CLIENT_FUNCTIONS).
# Anything else starts Python on this same file, through a cache of its
# compiled code.
n=${0##*/}
case $n in redo-*) c=${n#redo-} ;; *) c=redo ;; esac
s=
if [ "$c" = redo ] && [ "$n" != redo ]; then
  case ${1-} in
    redo|ifchange|ifcreate|always|stamp|recheck|ood|targets|sources|whichdo|log|dot|affects|cleanup) c=$1 s=1 ;;
    redo-*) c=${1#redo-} s=1 ;;
  esac
fi
r=${REDO_RUN-}
case $c in redo|ifchange|ifcreate|always|stamp|recheck) [ -n "$r" ] && [ -p "$r/req" ] || r= ;; *) r= ;; esac
[ -n "$r" ] && { kill -0 "${REDO_PID-x}"; } 2>/dev/null || r=
if [ -n "$r" ]; then
  for a; do case $a in -h|--help|-V|--version|--install|--install=*|-[!-]*[hV]*) r= ;; esac; done
fi
if [ -n "$r" ]; then
  [ -n "$s" ] && shift
  alone() {   # the run ended (its directory moved away) without an answer: a redo
    [ -d "$r" ] && return   # of its own; not if it was killed: that is an error
    unset REDO_RUN; exec /bin/sh "${REDO_PY:-$0}" "$c" "$@"
  }
  j=${REDO_JOB-0}
  q() {   # the request (see CLIENT_FUNCTIONS)
    if [ "$c" = stamp ]; then printf '%s\0\0' "$PWD" && cat
    else printf '%s\0' "$PWD" && export -p && printf '\0' && { [ $# = 0 ] || printf '%s\0' "$@"; }
    fi
  }
  set -C
  k=J i=$j
  if ! { [ -p "$r/$j.r" ] && q "$@" >"$r/$j.c"; } 2>/dev/null; then
    k=P i=$$
    { q "$@" >|"$r/$$.q"; } 2>/dev/null || { alone "$@"; echo "redo-$c: cannot write the request in $r (file system full?)" >&2; exit 2; }
    mkfifo "$r/$$.r" 2>/dev/null || { alone "$@"; mkfifo "$r/$$.r" || exit 2; }
  fi
  e=2; command exec 8>&2 && e=8   # our stderr, for the run to find (2 is moved below)
  x=
  { printf '%s %s %s %s %s/fd/%s\n' "$c" "$j" $i $k $$ $e 1<>"$r/req"; } 2>/dev/null &&
    if [ $k = P ]; then kill -0 "$REDO_PID" 2>/dev/null && { read -r x <"$r/$i.r"; } 2>/dev/null
    else { { exec 9>&-; read -r x; } <"$r/$i.r"; } 9<>"$r/$i.r" 2>/dev/null   # see CLIENT_FUNCTIONS
    fi
  printf 'done %s %s %s\n' "$j" $i $k 1<>"$r/req" 2>/dev/null
  case $x in [0-9]|[0-9][0-9]|[0-9][0-9][0-9]) exit "$x" ;; esac
  # The run ended before it could answer: this call runs as a redo of its own.
  [ "$x" != R ] || { unset REDO_RUN; exec /bin/sh "${REDO_PY:-$0}" "$c" "$@"; }
  alone "$@"
  # Its job's fifo closed under it (the .do had ended): once more, with a fifo of its own.
  [ "$k" != J ] || ! kill -0 "$REDO_PID" 2>/dev/null || exec /bin/sh "${REDO_PY:-$0}" "$c" "$@"
  echo "redo-$c: lost contact with the running redo" >&2
  exit 2
fi
# The cache: $XDG_CACHE_HOME or ~/.cache, absolute (a relative one is
# ignored), never a shared place such as /tmp: it names what runs.
d=${XDG_CACHE_HOME-}
case $d in
  /*) d=$d/redo.py ;;
  *) d=${HOME-}; case $d in /*) [ -d "$d" ] && d=$d/.cache/redo.py || d= ;; *) d= ;; esac ;;
esac
py=${REDO_PYTHON-}
if [ -n "$py" ]; then
  # The user's choice, or the running redo's for what it starts.  Exec'd
  # as it is, one that is not Python (/bin/false) would fail without a
  # word: it must be found, and one not named like Python must answer.
  case $py in
    */*) [ -f "$py" ] && [ -x "$py" ] || py= ;;
    *) command -v "$py" >/dev/null 2>&1 || py= ;;
  esac
  case ${py##*/} in
    *python*|pypy*) ;;
    *) [ -z "$py" ] || [ "$("$py" -c 'print(6 * 7)' 2>/dev/null)" = 42 ] || py= ;;
  esac
  [ -n "$py" ] || { echo "redo: REDO_PYTHON=$REDO_PYTHON is not a Python interpreter" >&2; exit 127; }
else
  [ -z "$d" ] || read -r py 2>/dev/null <"$d/python"
  if [ ! -f "$py" ] || [ ! -x "$py" ]; then
    py=
    for p in python3 python; do
      py=$("$p" -c 'import sys; sys.version_info >= (3, 8) and print(sys.executable or "-")' 2>/dev/null) && [ -n "$py" ] && break
      py=
    done
    # With PATH unset (env -i) sh looks on a default PATH of its own, and
    # the Python found there cannot tell where it is: sh can.
    [ "$py" != - ] || py=$(command -v "$p")
    [ -n "$py" ] || { echo "redo: no Python 3.8 or newer found on PATH" >&2; exit 127; }
    [ -z "$d" ] || { mkdir -p "$d" && printf '%s\n' "$py" >"$d/python"; } 2>/dev/null
  fi
fi
trap '' INT TERM HUP   # until Python has its own handlers: no traceback
exec "$py" -S -c '
import sys
if sys.path and sys.path[0] == "":
    del sys.path[0]
import os, marshal
try:
    import _signal as signal
except ImportError:
    import signal
for n in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(n, lambda n, f: os._exit(128 + n))
if sys.version_info < (3, 8):
    sys.stderr.write("redo: needs Python 3.8 or newer; %s is %s\n" % (sys.executable, sys.version.split()[0]))
    sys.exit(2)
a = sys.argv; f = a[1]; d = a[2]; a[:3] = [f]
h = open(f, "rb")
s = os.fstat(h.fileno())
k = "%s/%s-%x-%x-%x-%x-%x.code" % (d, sys.implementation.cache_tag, s.st_dev, s.st_ino,
                                   s.st_size, s.st_mtime_ns, s.st_ctime_ns)
c = None
try:
    if d:
        with open(k, "rb") as g:
            c = marshal.loads(g.read())
except Exception:
    pass
if type(c) is not type((lambda: 0).__code__):    # none, or not code
    c = compile(h.read(), f, "exec")
    try:
        if not d:
            raise OSError
        os.makedirs(d, exist_ok=True)
        old = sorted((e.stat().st_mtime, e.path) for e in os.scandir(d) if e.name.endswith(".code"))
        for t, p in old[:-20]:
            os.unlink(p)
        with open(k + ".%d" % os.getpid(), "wb") as g:
            marshal.dump(c, g)
        os.replace(k + ".%d" % os.getpid(), k)
    except Exception:
        pass
h.close()
exec(c, {"__name__": "__main__", "__file__": f, "__builtins__": __builtins__})
' "$0" "$d" "$@"
":"""

__doc__ = """redo.py - djb's redo build system in one file.

A build is a set of shell scripts: to build `x.o`, redo runs `x.o.do` (or
`default.o.do`, or `default.do`, here or in a parent directory) with
$1 = the target, $2 = the target without its extension, $3 = a temporary
file, and takes what the script wrote to $3 or to stdout as the new `x.o`.
Scripts declare what they read with `redo-ifchange a b c`; redo records it
and rebuilds only what changed since.

Vendor it: copy redo.py into a project and run `./redo.py [target...]`.
Nothing to install: the .do scripts it runs find `redo-ifchange` and every
other command on their PATH.  Or install it (see install.sh) and call
`redo`, `redo-ifchange`, ... from anywhere.

Commands (by program name, or as the first argument of redo.py):
  redo [-j N] [-k] [-x|-v] [-d] [-n] [targets]  build targets now (default: all)
  redo-ifchange targets   depend on targets; build the out-of-date ones
  redo-ifcreate files     depend on the files not existing
  redo-always             rebuild the running target in every run
  redo-stamp <data        count as unchanged when the data is the same
  redo-recheck [targets]  check again what this run checked (in a build)
  redo-ood / redo-targets / redo-sources [names]   list targets and sources
  redo-whichdo target     the .do files that could build target
  redo-log [-r] [-f] [--trace FILE] targets  the stored stderr of the last build
  redo-dot [targets]      the dependency graph for Graphviz
  redo-affects files      the targets that depend on files
  redo-cleanup            remove redo's temporary, lock and log files
  redo-clean [-n] [names]       remove what redo built, and its state
  redo-cleandead [-n] [targets] remove what the targets no longer need
  redo-rebuild [-n] [targets]   build the targets and all they need again

Inside a .do, each command behaves as if it were a program of its own:
its options, its environment (`V=1 redo x`) and its stderr (`2>err`)
apply to what it builds, and a failure is its caller's to handle.

Exit status: 0 success, 1 a build failed, 2 usage or other error,
128+N killed by signal N.  Every command answers --help and --version.

The file is laid out in numbered sections, each using only those above it
(`grep -n '^# §' redo.py` prints where they start):
  §1  constants: environment names, paths, formats, exit codes
  §2  errors and messages
  §3  the OS layer: every system call that can fail for ordinary reasons
  §4  paths and target names
  §5  recfiles
  §6  stamps and hashes
  §7  per-target state
  §8  finding the .do file
  §9  the graph and why a target is out of date
  §10 GNU make's jobserver
  §11 running one .do
  §12 the coordinator: its parts, calls and tasks
  §13 the loop: tasks, file descriptors, timers, signals, children
  §14 slots: who may run a .do now
  §15 the builder: is it up to date? lock, run, commit or fail
  §16 the server: the client protocol, requests and answers
  §17 the run: the parts made, connected and driven
  §18 the Python client
  §19 commands
  §20 dispatch and main
The first lines are POSIX sh: the launcher and the thin client that .do
scripts talk to (§16).
"""

LICENCE = """MIT License

Copyright (c) 2026 The redo.py authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

import errno
import os
import sys
try:
    import _signal as signal      # the C part: `signal` itself imports enum
except ImportError:
    import signal
from marshal import dumps as marshal_dumps, loads as marshal_loads

if sys.version_info < (3, 8):
    sys.stderr.write('redo: needs Python 3.8 or newer; %s is %s\n' % (sys.executable, sys.version.split()[0]))
    sys.exit(2)

# =============================================================================
# §1 Constants: names of environment variables, paths, formats, exit codes
# =============================================================================

VERSION = '0.1.0'

# What the user sets.
ENV_JOBS = 'REDO_JOBS'
ENV_KEEP_GOING = 'REDO_KEEP_GOING'
ENV_TOP_DIR = 'REDO_TOP_DIR'
ENV_NO_SYNC = 'REDO_NO_SYNC'
ENV_STOP_IF_MODIFIED = 'REDO_STOP_IF_MODIFIED'
ENV_LOGS = 'REDO_LOGS'
ENV_SILENT = 'REDO_SILENT'
ENV_TRACE = 'REDO_TRACE'          # 1: -x for every target (as -xx)
ENV_DEBUG = 'REDO_DEBUG'          # 1: -d
ENV_VERBOSE = 'REDO_VERBOSE'      # 1: -v for every target (as -vv)
ENV_NO_COLOR = 'NO_COLOR'
ENV_MAKEFLAGS = 'MAKEFLAGS'
ENV_SHUFFLE = 'REDO_SHUFFLE'      # 1: --shuffle
ENV_OUTPUT = 'REDO_OUTPUT'        # lines, group or plain: as --output
ENV_NO_PROGRESS = 'REDO_NO_PROGRESS'   # 1: --no-progress
ENV_COLOR_FORCE = 'CLICOLOR_FORCE'     # 1: colour even where stderr is no terminal
ENV_PYTHON = 'REDO_PYTHON'        # the interpreter the sh launcher starts

# The words every boolean variable (REDO_KEEP_GOING, REDO_LOGS, ...) reads,
# in any case; empty is the same as unset: the default.
TRUE_WORDS = ('1', 'yes', 'true', 'on')
FALSE_WORDS = ('0', 'no', 'false', 'off')

# What redo passes to the .do scripts it runs (see the README).
ENV_RUN = 'REDO_RUN'              # the coordinator's directory (fifo, bin/)
ENV_PID = 'REDO_PID'              # the coordinator's process id
ENV_JOB = 'REDO_JOB'              # which running job a client speaks for
ENV_TARGET = 'REDO_TARGET'        # the target being built, absolute path
ENV_SELF = 'REDO_PY'              # this file, for a call the run ended under

STATE_DIR = '.redo'               # per directory, beside the targets
FORMAT = 'redo.py/1'              # first field of every state file
STATE_SUFFIX = '.rec'
LOCK_SUFFIX = '.lock'
LOG_SUFFIX = '.log'
SUMMARY = 'summary'               # parsed state files, a cache (§9)
TMP3_DIR = 'tmp'                  # $3 lives in .redo/tmp/<name>
STDOUT_DIR = 'out'                # stdout is caught in .redo/out/<name>
LOG_TMP_DIR = 'log'               # stderr, until the build ends: .redo/log/<name>

COMMAND_NAMES = ('redo', 'ifchange', 'ifcreate', 'always', 'stamp', 'recheck', 'ood',
                 'targets', 'sources', 'whichdo', 'log', 'dot', 'affects',
                 'cleanup', 'clean', 'cleandead', 'rebuild')
# Commands that a first argument names only as redo-NAME (`./redo.py
# redo-clean`): `./redo.py clean` builds the project's own clean.do, as
# projects name targets so.
PREFIXED_ONLY = ('clean', 'cleandead', 'rebuild')

EXIT_OK = 0
EXIT_FAILED = 1          # a target failed to build
EXIT_USAGE = 2           # bad arguments, or an error outside any build
EXIT_SIGNAL = 128        # + signal number, when interrupted

HASH_CHUNK = 1 << 20
MAX_JOBS = 1024           # -j at most: its tokens must fit in a pipe's buffer
SYNC_EVERY = 1.0          # seconds between batches of fsync of state files


# =============================================================================
# §2 Errors and messages
# =============================================================================

class Error(Exception):
    """Anything a user can cause.  main() prints it as one line, `redo: msg`,
    and exits with `status`.  Programming errors are assertions instead."""

    def __init__(self, msg, status=EXIT_FAILED):
        Exception.__init__(self, msg)
        self.status = status


def os_error(e):
    """An OSError that nothing more specific caught, as an Error."""
    where = ' '.join(quote(str(x)) for x in (e.filename, e.filename2) if x is not None)
    return Error('%s%s' % (where + ': ' if where else '', e.strerror or e))


def _flag(env, name):
    """A boolean variable: False unless it holds one of TRUE_WORDS."""
    return bool_env(env, name, False)


def bool_env(env, name, default):
    """A boolean variable, read as every one is: TRUE_WORDS or FALSE_WORDS
    in any case, unset or empty for the default; another word is an error
    (a typo must not pass for "off")."""
    value = env.get(name, '')
    if not value:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Error('%s=%s: not a boolean: use %s or %s' % (
        name, value, ', '.join(TRUE_WORDS), ', '.join(FALSE_WORDS)), EXIT_USAGE)


def check_jobs(v, env):
    """REDO_JOBS and -j N (v: parse_options' values), checked alike: the
    same problem, the same words."""
    for what, value in (('%s=%%s' % ENV_JOBS, env.get(ENV_JOBS) or None),
                        ('-j %s', v.get('j', v.get('jobs')))):
        if value is None:
            continue
        if value.startswith('-') and value[1:].isascii() and value[1:].isdigit():
            problem = 'must be 0 or more'
        elif not (value.isascii() and value.isdigit()):    # no ' 2', no 1_0
            problem = 'not a number'
        elif len(value.lstrip('0')) > 9 or int(value.lstrip('0') or '0') > MAX_JOBS:
            problem = 'at most %d' % MAX_JOBS
        else:
            continue
        raise Error('%s: %s' % (what % value, problem), EXIT_USAGE)


def prog(cmd):
    """The name a command goes by in messages: redo, redo-ifchange, ..."""
    return 'redo' if cmd == 'redo' else 'redo-' + cmd


def quote(path):
    """A path as shown in messages: as is, unless it holds odd characters."""
    if path and path.isprintable() and path.strip() == path:
        return path
    return repr(path)


def wants_color(env, tty):
    """Colour on a terminal that is not dumb, or anywhere with
    CLICOLOR_FORCE (as ninja and others read it: set, and not a false
    word); never with NO_COLOR set and not empty (no-color.org)."""
    if env.get(ENV_NO_COLOR):
        return False
    force = env.get(ENV_COLOR_FORCE, '')
    if force and force.lower() not in FALSE_WORDS:
        return True
    return tty and env.get('TERM', 'dumb') != 'dumb'


class Term:
    """stderr, shared by everything that prints: the per-target lines, the
    .do scripts' own stderr, warnings, and the progress line, which is erased
    before anything else is written so that it never mixes in."""

    GREEN, RED, YELLOW, BOLD, PLAIN = '\033[32m', '\033[31m', '\033[33m', '\033[1m', '\033[m'

    def __init__(self, env, progress=True, fd=2, fallback=None):
        tty = os.isatty(fd)
        self.color = wants_color(env, tty)
        self.progress = progress and tty and env.get('TERM', 'dumb') != 'dumb'
        self.status = ''                 # the progress line now on screen
        self.lost = False                # writing to stderr failed
        self.fd = fd                     # 2, or the stderr of a nested call
        self.fallback = fallback         # where it writes once closed
        self.source = None               # the target the last line was about

    def close(self):
        """A nested call's stderr: closed when the call ends; what comes
        after (a target it started and another call still waits for) goes
        to the fallback."""
        if self.fallback is not None and self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def paint(self, color, text):
        return color + text + self.PLAIN if self.color else text

    def write(self, data):
        """Writes bytes to stderr, under the progress line.  A stderr that
        fails (a closed pipe, a terminal hung up) is given up, and the build
        goes on: stopping there would leave the running scripts behind."""
        if self.status:
            data = b'\r\033[K' + data + self.status.encode(errors='replace')
        self._write(data)

    def _write(self, data):
        if self.fd is None:
            self.fallback.write(data)
            return
        if self.lost:
            return
        try:
            write_all(self.fd, data)
        except OSError:
            self.lost = True
            self.progress = False

    def line(self, text, source=None):
        self.source = source
        self.write((text + '\n').encode(errors='surrogateescape'))

    def error(self, text):
        self.line(self.paint(self.RED, 'redo: ') + text)

    def warn(self, text):
        self.line(self.paint(self.YELLOW, 'redo: warning: ') + text)

    def show_status(self, text):
        """Replaces the progress line (no newline: it stays at the bottom);
        '' erases it."""
        if not self.progress or text == self.status:
            return
        self._write(b'\r\033[K' + text.encode(errors='replace'))
        self.status = text

    def width(self):
        try:
            columns = os.get_terminal_size(2).columns
        except OSError:
            columns = 0
        return columns if columns >= 20 else 80


# =============================================================================
# §3 OS layer: every system call that can fail for ordinary reasons
# =============================================================================

def write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            import select
            select.select([], [fd], [])
            continue
        data = data[n:]


def lstat_or_none(path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return None           # such a file cannot exist
        raise Error('%s: %s' % (quote(path), e.strerror))
    except ValueError:
        raise Error('%s: a file name cannot hold a NUL byte' % quote(path))


def exists(path):
    return lstat_or_none(path) is not None


def guard_std_fds():
    """Opens /dev/null on the standard fds the caller closed (`redo 2>&-`),
    so that no file redo opens takes their number and gets what was meant
    for stderr; also on a stderr open for reading only (bash as /bin/sh,
    given `2>&-`, leaves the script it ran there): messages must not fail.
    Messages for a closed stderr go nowhere; sys.stdin and sys.stdout stay
    None, and std_stream refuses them (and a stdout open for reading only)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            ok = True
        except OSError:
            ok = False
        if ok and (fd < 2 or _fd_flags(fd) & os.O_ACCMODE != os.O_RDONLY):
            continue
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        os.set_inheritable(fd, True)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, 'w')


def _fd_flags(fd):
    """The open flags of fd, from /proc (a write of no bytes would tell
    too, but stops a background process under `stty tostop`); -1 where
    there is no /proc."""
    try:
        f = os.open('/proc/self/fdinfo/%d' % fd, os.O_RDONLY)
    except OSError:
        return -1
    try:
        data = os.read(f, 512)
    except OSError:
        return -1
    finally:
        os.close(f)
    i = data.find(b'flags:')
    try:
        return int(data[i + 6:data.index(b'\n', i)], 8) if i >= 0 else -1
    except ValueError:
        return -1


def std_stream(name):
    """sys.stdin or sys.stdout, binary; an Error if the caller closed it
    (or gave a stdout open for reading only)."""
    stream = getattr(sys, name)
    if stream is None or name == 'stdout' and _fd_flags(1) & os.O_ACCMODE == os.O_RDONLY:
        raise Error('standard %s is closed' % ('input' if name == 'stdin' else 'output'),
                    EXIT_USAGE)
    return stream.buffer


def unlink_quiet(path):
    """Removes a file (or a directory tree); a missing one is no error, nor
    one that cannot be there or cannot go for the file system's sake (a
    name too long for it, a read-only file system): there is nothing to do.
    Other errors are raised."""
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except IsADirectoryError:
        remove_tree(path)
    except PermissionError:
        if os.path.isdir(path) and not os.path.islink(path):
            remove_tree(path)
        else:
            raise
    except OSError as e:
        if e.errno not in (errno.ENAMETOOLONG, errno.EROFS):
            raise


def discard(path):
    """unlink_quiet, to clean up after a failure: it never fails itself (the
    failure it cleans up after is the one to report)."""
    try:
        unlink_quiet(path)
    except (OSError, ValueError):
        pass


def remove_tree(path):
    """rm -rf, quietly (shutil would cost a dozen imports); a symbolic
    link is removed, not followed."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return
    if _is_dir(st):
        try:
            entries = [e.path for e in os.scandir(path)]
        except OSError:
            entries = []
        for p in entries:
            remove_tree(p)
        remove = os.rmdir
    else:
        remove = os.unlink
    try:
        remove(path)
    except OSError:
        pass


def read_bytes_or_none(path):
    """The content of a file, or None if there is none (or it is not a
    regular file: a fifo would block, a device never end).  Plain os calls:
    the io module's open costs three more system calls per file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    except OSError as e:
        raise Error('%s: %s' % (quote(path), e.strerror))
    try:
        if not _is_file(os.fstat(fd)):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    except IsADirectoryError:
        return None
    except OSError as e:
        raise Error('%s: %s' % (quote(path), e.strerror))
    finally:
        os.close(fd)


def getcwd():
    try:
        return os.getcwd()
    except OSError as e:
        raise Error('the current directory is gone: %s' % e.strerror, EXIT_USAGE)


def make_dirs(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise Error('cannot create %s: %s' % (quote(path), e.strerror))


def write_atomic(path, chunks, unsynced=None):
    """Writes pieces of bytes to path through a temporary file and a rename,
    so that readers see the old content or the new, never a part.  The path
    is added to the list unsynced, if one is given, for fsync_all."""
    tmp = '%s.%d.tmp' % (path, os.getpid())
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except FileNotFoundError:         # a .do removed .redo (`clean.do`)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            for data in chunks:
                write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if unsynced is not None:
            unsynced.append(path)
    except OSError as e:
        discard(tmp)
        raise Error('cannot write %s: %s' % (quote(path), e.strerror))


def fsync_all(paths):
    """fsyncs the files, and the directories that hold them.  Done for many
    files at once, it costs about one journal commit: the first fsync takes
    everything written so far to the disk and the others find little to do."""
    dirs = set()
    for p in paths:
        dirs.add(os.path.dirname(p))
    for p in list(paths) + sorted(dirs):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
    del paths[:]


def replace_path(src, dst):
    """Renames src over dst, whether either is a file or a directory (a
    directory, or a file where a directory comes, is moved aside first)."""
    try:
        os.replace(src, dst)
        return
    except OSError as e:
        if e.errno not in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST) \
                or lstat_or_none(dst) is None:
            raise Error('cannot rename %s to %s: %s' % (quote(src), quote(dst), e.strerror))
    old = os.path.join(os.path.dirname(src), '.redo-old.%d' % os.getpid())
    try:
        os.rename(dst, old)
    except OSError as e:
        raise Error('cannot move %s aside: %s' % (quote(dst), e.strerror))
    try:
        os.rename(src, dst)
    except OSError as e:
        try:
            os.rename(old, dst)
        except OSError:
            pass
        raise Error('cannot rename %s to %s: %s' % (quote(src), quote(dst), e.strerror))
    remove_tree(old)


def try_lock(path, make_dir=False):
    """An fd holding an exclusive flock on the lock file path (made if need
    be, and its directory too with make_dir), or None if another process
    holds it.  redo-cleanup removes a lock file while it holds it: a lock
    taken on a file removed meanwhile is no lock, and is taken again."""
    import fcntl
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o666)
        except FileNotFoundError as e:
            if not make_dir:
                raise Error('cannot open the lock %s: %s' % (quote(path), e.strerror))
            make_dirs(os.path.dirname(path))  # a .do removed the directory
            continue
        except OSError as e:
            raise Error('cannot open the lock %s: %s' % (quote(path), e.strerror))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as e:
            os.close(fd)
            raise Error('cannot lock %s: %s' % (quote(path), e.strerror))
        st = os.fstat(fd)
        if not _is_file(st):
            os.close(fd)
            raise Error('cannot lock %s: not a regular file' % quote(path))
        try:
            now = os.stat(path)           # a lock file may be a symlink
        except OSError:
            now = None
        if now is not None and (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
            return fd
        os.close(fd)
    raise Error('cannot lock %s: it is replaced again and again' % quote(path))


def _is_dir(st):
    return (st.st_mode & 0o170000) == 0o040000


def _is_file(st):
    return (st.st_mode & 0o170000) == 0o100000


# =============================================================================
# §4 Paths and target names
# =============================================================================
# Targets are known by their absolute, normalised path.  State lives beside
# them: for dir/name, dir/.redo/name.rec (and .lock, .log); every file in
# .redo has exactly one of these suffixes, so no two targets' files collide.

def abs_path(cwd, name):
    if '/' not in name and name not in ('.', '..', '') and cwd != '/':
        return cwd + '/' + name           # the common case, at a tenth of the cost
    return os.path.normpath(os.path.join(cwd, name))


def kernel_path(path):
    """An absolute path with `..` taken as the kernel takes it: the parent
    of what the name before it is, a symbolic link followed, and the
    spelling of the rest kept as given."""
    out = []
    todo = path.split('/')[::-1]
    links = 0
    while todo:
        c = todo.pop()
        if c in ('', '.'):
            continue
        if c != '..':
            out.append(c)
            continue
        if not out:
            continue
        try:
            link = os.readlink('/' + '/'.join(out))
        except (OSError, ValueError):
            link = None
        out.pop()
        links += link is not None
        if link is not None and links <= 40:
            if link.startswith('/'):
                out = []
            todo.append('..')
            todo.extend(link.split('/')[::-1])
    return '/' + '/'.join(out)


def rel_path(path, base):
    """path relative to the directory base (both absolute, normalised)."""
    if base == '/':
        return path[1:] or '.'
    if path.startswith(base) and path[len(base):len(base) + 1] == '/':
        return path[len(base) + 1:]
    if path == base:
        return '.'
    return os.path.relpath(path, base)


def is_outside(path, cwd, top):
    """Whether path is outside the project that cwd is in: not under cwd,
    nor under top ($REDO_TOP_DIR), and sharing with cwd no more than its
    first directory (/usr/include/stdio.h seen from /home/me/proj, or
    from /usr/src/proj).  Such a path prints absolute: ../../../usr/...
    says less, and changes with the directory it is seen from."""
    for base in (cwd, top):
        if base and (base == '/' or path == base or path.startswith(base + '/')):
            return False
    shared = 0
    for a, b in zip(path.split('/')[1:], cwd.split('/')[1:]):
        if a != b:
            break
        shared += 1
    return shared < 2


def state_key(name):
    """The name of a target's files in .redo: the target's own name, or, when
    that and a suffix would not fit in NAME_MAX (255 bytes), its start and a
    hash (the state file still holds the full name)."""
    if len(name) <= 50:           # at most 4 bytes a character
        return name
    raw = os.fsencode(name)
    if len(raw) <= 200:
        return name
    h = _hasher()
    h.update(raw)
    return os.fsdecode(raw[:150]).rstrip('\udc80\udc81\udc82') + '~' + h.hexdigest()


def state_file(path, suffix):
    d, _, name = path.rpartition('/')
    return '%s/%s/%s%s' % (d, STATE_DIR, state_key(name), suffix)


def tmp_file(path, kind):
    d, _, name = path.rpartition('/')
    return '%s/%s/%s/%s' % (d, STATE_DIR, kind, name)


# =============================================================================
# §5 Recfiles: `Field: value` lines, a blank line between records
# =============================================================================
# A value holding a newline goes on as `+ ` continuation lines, as in GNU
# recutils.  Files are bytes; names are decoded with surrogateescape, so any
# file name the OS allows round-trips exactly.

def rec_dump(records):
    """[[(field, value), ...], ...] -> bytes, in pieces of about 64 KiB:
    a target with 10000 dependencies is written without a copy of it all."""
    out, size = [], 0
    for rec in records:
        for field, value in rec:
            line = '%s: %s\n' % (field, value.replace('\n', '\n+ '))
            out.append(line)
            size += len(line)
        out.append('\n')
        if size >= 65536:
            yield ''.join(out).encode('utf-8', 'surrogateescape')
            out, size = [], 0
    if out:
        yield ''.join(out).encode('utf-8', 'surrogateescape')


def rec_load(data):
    """bytes -> [[(field, value), ...], ...]; raises ValueError if garbled."""
    if b'\0' in data:
        raise ValueError('a NUL byte')
    records, rec = [], []
    for line in data.decode('utf-8', 'surrogateescape').split('\n'):
        if not line:
            if rec:
                records.append(rec)
                rec = []
        elif line[0] == '+':
            if not rec:
                raise ValueError('continuation without a field')
            field, value = rec[-1]
            rec[-1] = (field, value + '\n' + line[2:])
        else:
            field, sep, value = line.partition(': ')
            if not sep:
                if line[-1:] != ':':
                    raise ValueError('not a field: %r' % line)
                field = line[:-1]
            rec.append((field, value))
    if rec:
        records.append(rec)
    return records


# =============================================================================
# §6 Stamps and hashes
# =============================================================================
# A file is known by two strings.  Its fingerprint, cheap to get from lstat:
# size, inode, mode, mtime and ctime in nanoseconds.  Its identity, what a
# change is measured by: type, permission bits and a hash of the content
# (of the target of a symlink; of what a directory holds, see _hash_dir).
# When the fingerprint is the one stored, the identity stored is trusted
# without reading the file; otherwise the identity is computed and compared,
# so `touch`, a new hard link or a chown rebuild nothing, while an edit
# within the same second is still seen (size or ctime differ).
#
# Design note: racy stamps.  Where file times count whole seconds (ext4
# with 128-byte inodes, FAT, NFS from such a server), an in-place edit at
# the same size, in the same second as the stamp was taken, leaves the same
# fingerprint.  git's "racy clean" rule answers it: a stamp taken within the
# file system's timestamp granularity of the file's mtime or ctime is not
# trusted.  The time is known when the stamp is taken, so that is where it
# is judged (no extra field to store): a fingerprint to be kept
# (fingerprint_kept) gets `@<the time it was taken>` at its end, and so
# never equals another; the file is hashed at its next check and, once the
# moment has passed, stamped anew.  File times with nanoseconds are
# trusted as they are, without as much as a clock read: since Linux 6.13 a
# file changed after a stat gets a later ctime (multigrain timestamps);
# older kernels leave a window of one clock tick (milliseconds) after a
# write, accepted as git accepts it.  (fingerprint itself stays a plain
# snapshot, for "did it change meanwhile" within a run.)
#
# A target's own fingerprint is taken before the rename that puts it in
# place, which changes its ctime: it is stored with `*` for the ctime, and
# the ctime is filled in at the first look at the target after the rename
# (fill_in).  A `*` is never trusted: a target whose state still has one is
# hashed at its check, so that an edit in place with its mtime put back
# (`touch -r`), which only the ctime tells, is still seen.

ABSENT = '-'
COARSE_STEPS = (10 ** 9, 10 ** 7)     # file times in whole seconds, in hundredths


def fingerprint(st, path=None):
    """st = lstat of path (or None).  For a symlink, given its path, the
    fingerprint of what it points to follows, after a '>'."""
    if st is None:
        return ABSENT
    fp = '%d:%d:%o:%d:%d' % (st.st_size, st.st_ino, st.st_mode,
                             st.st_mtime_ns, st.st_ctime_ns)
    if path is not None and (st.st_mode & 0o170000) == 0o120000:
        try:
            fp += '>' + fingerprint(os.stat(path))
        except (OSError, ValueError):
            fp += '>' + ABSENT
    return fp


def _fp_is_dir(fp):
    """Whether a fingerprint is that of a directory."""
    try:
        return int(fp.split(':')[2], 8) & 0o170000 == 0o040000
    except (IndexError, ValueError):
        return False


def _fp_ctime(fp):
    """A fingerprint's ctime, in ns (0 if unknown): when the file last
    changed, which no one can set (an mtime can be: `touch -d`, tar)."""
    try:
        c = fp.partition('>')[0].partition('@')[0].split(':')[4]
        return int(c) if c != '*' else 0
    except (ValueError, IndexError):
        return 0


def fingerprint_kept(st, path=None):
    """fingerprint(st, path), to be stored and trusted later: marked with
    the time now if the file's times (or, for a symlink, those of what it
    points to) count whole seconds, or hundredths, and are too close to now
    to tell a later edit (see the design note above).  Two steps of the
    file system's clock: FAT's mtime counts two seconds."""
    fp = fingerprint(st, path)
    if st is None:
        return fp
    step = COARSE_STEPS[1]
    if (st.st_mtime_ns % step or st.st_ctime_ns % step) and '>' not in fp:
        return fp                 # nanoseconds: the usual case
    import time
    now = time.time_ns()
    for part in fp.split('>'):
        fields = part.split(':')
        if len(fields) != 5:
            continue              # ABSENT, for a dangling symlink
        m, c = int(fields[3]), int(fields[4])
        if m % step or c % step:
            continue
        coarse = COARSE_STEPS[0] if not (m % COARSE_STEPS[0] or c % COARSE_STEPS[0]) else step
        if max(m, c) > now - 2 * coarse:
            return '%s@%d' % (fp, now)
    return fp


def fingerprint_sans_ctime(fp):
    """A target's own fingerprint is taken before the rename that puts it in
    place, which changes its ctime only: that part is left for fill_in."""
    if fp == ABSENT:
        return fp
    own, sep, pointee = fp.partition('>')
    return own.rpartition(':')[0] + ':*' + sep + pointee


def fill_in(fp_stored, fp):
    """A stored fingerprint with its ctime left out (fingerprint_sans_ctime),
    completed from fp, the first fingerprint of the target in place: fp if
    all the rest of the target's own part matches (what it points to, for
    a link read in .redo/tmp, is not compared), else fp_stored as it was."""
    own = fp_stored.partition('>')[0]
    if own.endswith(':*') and fp.partition('>')[0].rpartition(':')[0] == own[:-2]:
        return fp
    return fp_stored


def is_unfilled(fp):
    """Whether fp has its ctime left out (fingerprint_sans_ctime)."""
    return fp.partition('>')[0].endswith(':*')


def same_fingerprint(stored, fp):
    """Whether the file is unchanged since the stored fingerprint was taken.
    One whose ctime was left out (`*`) never is: it is hashed instead."""
    return stored == fp


def _hasher():
    try:
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b
    return blake2b(digest_size=16)


def identity(path, mode):
    """The identity of the file at path, whose lstat st_mode is mode (None:
    there is no file)."""
    if mode is None:
        return ABSENT
    kind = mode & 0o170000
    perm = mode & 0o7777
    h = _hasher()
    if kind == 0o120000:
        try:
            h.update(os.fsencode(os.readlink(path)))
            target = os.stat(path)
        except OSError:
            return 'l:' + h.hexdigest()
        if _is_dir(target):
            return 'l:' + h.hexdigest() + '>d%o' % (target.st_mode & 0o7777)
        return 'l:' + h.hexdigest() + '>' + identity(path, target.st_mode)
    if kind == 0o040000:
        _hash_dir(h, path)
        return 'd%o:%s' % (perm, h.hexdigest())
    if kind != 0o100000:
        return 'o%o:%o' % (kind, perm)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                chunk = os.read(fd, HASH_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
        finally:
            os.close(fd)
    except OSError as e:
        raise Error('cannot read %s: %s' % (quote(path), e.strerror))
    return 'f%o:%s' % (perm, h.hexdigest())


def _hash_dir(h, path):
    """Feeds h what the directory at path holds: each name (sorted, redo's
    own .redo left out at every depth) and the identity of what it names,
    recursively.  A symbolic link in it counts by its text, and is not
    followed: a link may point anywhere (out of the tree, or to a parent:
    a loop), and what it points to is not part of the directory."""
    try:
        with os.scandir(path) as it:
            entries = sorted((e.name, e.path) for e in it if e.name != STATE_DIR)
    except OSError as e:
        raise Error('cannot read %s: %s' % (quote(path), e.strerror))
    for name, p in entries:
        try:
            mode = os.lstat(p).st_mode
            if (mode & 0o170000) == 0o120000:
                link = _hasher()
                link.update(os.fsencode(os.readlink(p)))
                ident = 'l:' + link.hexdigest()       # as own(identity(p, mode))
            else:
                ident = identity(p, mode)
        except OSError as e:
            raise Error('cannot read %s: %s' % (quote(p), e.strerror))
        h.update(b'%s\0%s\0' % (os.fsencode(name), ident.encode()))


def file_now(path, known=()):
    """(fingerprint, identity) of the file at path now, None if there is
    none.  The identity of a known (fingerprint, identity) pair whose
    fingerprint matches is trusted; else it is computed (ABSENT if the file
    cannot be read: changed, whatever comes)."""
    st = lstat_or_none(path)
    if st is None:
        return None
    fp = fingerprint_kept(st, path)
    for kfp, kident in known:
        if same_fingerprint(kfp, fp):
            return fp, kident
    try:
        return fp, identity(path, st.st_mode)
    except Error:
        return fp, ABSENT


def own(ident):
    """Of a symlink's identity, the part that is the link itself."""
    return ident.partition('>')[0] if ident.startswith('l:') else ident


def is_previous(previous, fp, ident):
    """Whether the file now (fp, ident) is the target as it was before the
    last build (a state's Previous), untouched: the state was written, and
    the new output never put in place.  A copy of it put back by hand has
    another inode or mtime.  (A Previous of an older redo.py holds only
    the identity.)"""
    pfp, _, pident = previous.rpartition(' ')
    if own(ident) != own(pident):
        return False
    return not pfp or _sans_ctime(pfp) == _sans_ctime(fp)


def _sans_ctime(fp):
    return fp.partition('>')[0].rpartition(':')[0]


def stamp_of_data(data):
    h = _hasher()
    h.update(data)
    return h.hexdigest()


# =============================================================================
# §7 Per-target state
# =============================================================================
# One recfile per target, dir/.redo/name.rec.  The first record describes
# the last build; each further record is one dependency, in the order the
# .do asked for them (the .do file itself first):
#
#   Format: redo.py/1            Dep: ../include/x.h
#   Target: x.o                  Fingerprint: 1234:5678:100644:...:...
#   Result: ok | failed | marked Identity: f644:3b6f...
#   Build: <unique id>
#   Output: <fingerprint> <identity> | none     Ifcreate: config.local
#   Previous: <fingerprint> <identity> of the target before this build
#   Stamp: <redo-stamp hash>     (only with redo-stamp)
#   Always: yes                  (only with redo-always)
#   Do: default.o.do   Run: <run id>   Exit: 0   Started: <unix time>
#   Seconds: 0.012     Slot: 1
#                                End: <number of dependencies>
#
# Names are relative to the target's directory.  A missing, truncated,
# garbled or foreign file reads as None: the target was never built.

class Dep:
    __slots__ = ('kind', 'name', 'fp', 'ident')

    def __init__(self, kind, name, fp=ABSENT, ident=ABSENT):
        self.kind = kind          # 'Dep' (ifchange) or 'Ifcreate'
        self.name = name
        self.fp = fp
        self.ident = ident


def _finite(text):
    x = float(text)
    if x != x or x in (float('inf'), float('-inf')):
        raise ValueError('not a finite number: %r' % text)
    return x


class Record:
    __slots__ = ('target', 'result', 'build', 'output', 'previous', 'stamp',
                 'always', 'do', 'run', 'exit', 'started', 'seconds', 'slot',
                 'ran', 'why', 'deps', 'changed')

    def __init__(self, target):
        self.target = target
        self.result = 'ok'
        self.build = ''
        self.output = None        # (fingerprint, identity), None if virtual
        self.previous = ABSENT
        self.stamp = ''
        self.always = False
        self.do = ''
        self.run = ''
        self.exit = 0
        self.started = 0.0
        self.seconds = 0.0
        self.slot = 0
        self.ran = ''             # when it held a slot: `start+seconds@slot ...`
        self.why = ''             # what failed it, when the .do exited 0
        self.deps = []
        self.changed = False      # refreshed fingerprints not yet written

    def to_tuple(self):
        """The record as plain values, for the summary cache (§9)."""
        return (self.target, self.result, self.build, self.output, self.previous,
                self.stamp, self.always, self.do, self.run, self.exit,
                self.started, self.seconds, self.slot, self.ran, self.why,
                tuple((d.kind, d.name, d.fp, d.ident) for d in self.deps))

    @classmethod
    def from_tuple(cls, t):
        self = cls.__new__(cls)           # every field is set here
        (self.target, self.result, self.build, output, self.previous,
         self.stamp, self.always, self.do, self.run, self.exit, self.started,
         self.seconds, self.slot, self.ran, self.why, deps) = t
        self.output = tuple(output) if output else None
        self.deps = [Dep(*d) for d in deps]
        self.changed = False
        return self

    def checked(self):
        """Once its target is found up to date, a run needs of the record
        only what dependents compare (identity_for_dependents, output):
        the rest goes, as a tree of 10000 targets holds 10000 records."""
        self.deps = ()
        self.target = self.previous = self.do = self.run = ''
        if self.output is not None:
            self.build = ''
        self.started = self.seconds = 0.0

    def identity_for_dependents(self):
        """What dependents compare: the redo-stamp, or for a target with no
        file, its build id; None when the output file itself decides."""
        if self.stamp:
            return 's:' + self.stamp
        if self.output is None:
            return 'v:' + self.build
        return None

    def to_records(self):
        """Yields the records of the state file, one at a time."""
        head = [('Format', FORMAT), ('Target', self.target),
                ('Result', self.result), ('Build', self.build),
                ('Output', '%s %s' % self.output if self.output else 'none'),
                ('Previous', self.previous)]
        if self.stamp:
            head.append(('Stamp', self.stamp))
        if self.always:
            head.append(('Always', 'yes'))
        head += [('Do', self.do), ('Run', self.run), ('Exit', str(self.exit)),
                 ('Started', '%.6f' % self.started),
                 ('Seconds', '%.6f' % self.seconds), ('Slot', str(self.slot))]
        if self.ran:
            head.append(('Ran', self.ran))
        if self.why:
            head.append(('Why', self.why))
        yield head
        for d in self.deps:
            if d.kind == 'Dep':
                yield [('Dep', d.name), ('Fingerprint', d.fp), ('Identity', d.ident)]
            else:
                yield [('Ifcreate', d.name)]
        yield [('End', str(len(self.deps)))]     # truncation shows

    @classmethod
    def parse(cls, data):
        """Parses a state file; raises ValueError (or KeyError...) if it is
        garbled.  The files redo writes are parsed here without the general
        recfile reader, at a third of its cost: each dependency is one block
        of three known lines.  Values with newlines go the general way."""
        if b'\n+' in data or b'\0' in data or data.startswith(b'+'):
            return cls.from_records(rec_load(data))
        blocks = data.decode('utf-8', 'surrogateescape').split('\n\n')
        while blocks and not blocks[-1].strip('\n'):
            blocks.pop()
        if len(blocks) < 2 or blocks[-1].strip('\n') != 'End: %d' % (len(blocks) - 2):
            raise ValueError('truncated')
        # dict() raises ValueError for a line that is not `Field: value`.
        self = cls.from_head(dict([line.split(': ', 1) for line in blocks[0].strip('\n').split('\n')]))
        deps = self.deps
        for block in blocks[1:-1]:
            lines = block.strip('\n').split('\n')
            if len(lines) == 3 and lines[0][:5] == 'Dep: ' and lines[1][:13] == 'Fingerprint: ' \
                    and lines[2][:10] == 'Identity: ':
                deps.append(Dep('Dep', lines[0][5:], lines[1][13:], lines[2][10:]))
            elif len(lines) == 1 and lines[0][:10] == 'Ifcreate: ':
                deps.append(Dep('Ifcreate', lines[0][10:]))
            else:
                raise ValueError('not a dependency: %r' % block)
        return self

    @classmethod
    def from_records(cls, recs):
        self = cls.from_head(dict(recs[0]))
        if recs[-1] != [('End', str(len(recs) - 2))]:
            raise ValueError('truncated')
        for rec in recs[1:-1]:
            field, value = rec[0]
            if field == 'Dep':
                f = dict(rec)
                self.deps.append(Dep('Dep', value, f['Fingerprint'], f['Identity']))
            elif field == 'Ifcreate':
                self.deps.append(Dep('Ifcreate', value))
            else:
                raise ValueError('unknown record %r' % field)
        return self

    @classmethod
    def from_head(cls, head):
        if head.get('Format') != FORMAT:
            raise ValueError('not a %s file' % FORMAT)
        self = cls(head['Target'])
        self.result = head['Result']
        self.build = head['Build']
        out = head['Output']
        if out != 'none':
            fp, ident = out.split(' ')
            self.output = (fp, ident)
        self.previous = head.get('Previous', ABSENT)
        self.stamp = head.get('Stamp', '')
        self.always = head.get('Always') == 'yes'
        self.do = head.get('Do', '')
        self.run = head.get('Run', '')
        self.exit = int(head.get('Exit', 0))
        self.started = _finite(head.get('Started', 0))
        self.seconds = _finite(head.get('Seconds', 0))
        self.slot = int(head.get('Slot', 0))
        self.ran = head.get('Ran', '')
        self.why = head.get('Why', '')
        return self


GARBLED = 'garbled'
# The Result of a target built ok that redo-rebuild marked out of date: it
# is built again when next asked for; until then its output is what its
# last build made.  (A redo.py that does not know the word takes it for a
# failed build: rebuilt too.)
MARKED = 'marked'


SUMMARY_CHUNK = 1000      # entries per marshal object in a summary
SUMMARY_MAGIC = b'redo.py summary 3\n'   # and Record.to_tuple's layout


def read_pieces(path, magic):
    """Yields the objects of a file that is a line naming its format
    (magic), then pieces each marshalled after its length (8 bytes,
    little-endian): read and unmarshalled a piece at a time, from bytes
    (from a file, marshal reads an object at a time: five times slower).
    A damaged file yields what came before the damage; a missing one, or
    one that is not a regular file (a fifo would block), nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return
    try:
        st = os.fstat(fd)
        f = os.fdopen(fd, 'rb')
    except OSError:
        os.close(fd)
        return
    with f:
        try:
            if not _is_file(st):
                return
            left = st.st_size
            if f.readline() != magic:
                return
            left -= len(magic)
            while left >= 8:
                size = int.from_bytes(f.read(8), 'little')
                left -= 8 + size
                if left < 0:
                    return
                data = f.read(size)
                piece = marshal_loads(data)
                del data
                yield piece
        except (ValueError, EOFError, TypeError, OSError):
            return


def summary_chunks(d):
    """Yields the dicts {key: (fingerprint, marshalled record)} that make up
    the summary of d/.redo (see Graph.read_state): pieces (read_pieces) of
    at most SUMMARY_CHUNK entries, so that it is read and written a piece
    at a time.  An entry of the wrong shape is skipped (Graph.read_state).
    No hash guards it: one costs a millisecond per 1000 entries, at every
    start."""
    for chunk in read_pieces('%s/%s/%s' % (d, STATE_DIR, SUMMARY), SUMMARY_MAGIC):
        if type(chunk) is not dict:
            return
        yield chunk


def write_piece(f, chunk):
    """A summary's dict, or a memo's piece: marshalled after its length."""
    data = marshal_dumps(chunk)
    f.write(len(data).to_bytes(8, 'little'))
    f.write(data)


def read_summary(d):
    entries = {}
    for chunk in summary_chunks(d):
        entries.update(chunk)
    return entries


def read_record(path):
    """The state of the target at path: None if it has none (never built),
    a Record whose result is GARBLED if its state file cannot be read."""
    return read_record_file(state_file(path, STATE_SUFFIX), os.path.basename(path))


def read_record_file(fname, name=None):
    data = read_bytes_or_none(fname)
    if data is None:
        return None
    try:
        rec = Record.parse(data)
        if name is not None and rec.target != name:
            raise ValueError('the state of another target')
    except (ValueError, KeyError, IndexError, TypeError):
        rec = Record(name or os.path.basename(fname)[:-len(STATE_SUFFIX)])
        rec.result = GARBLED
    return rec


def write_record(path, rec, unsynced):
    """Writes the state of the target at path (its .redo must exist)."""
    write_atomic(state_file(path, STATE_SUFFIX), rec_dump(rec.to_records()), unsynced)
    rec.changed = False


# =============================================================================
# §8 Finding the .do file
# =============================================================================
# For dir/base.a.b: dir/base.a.b.do, then dir/default.a.b.do,
# dir/default.b.do, dir/default.do, then the default*.do names again in each
# parent directory, up to / or to the top ($REDO_TOP_DIR, or a directory
# that holds .redo/top).  Instead of storing every candidate that did not
# exist as an ifcreate dependency, the search is run again when a target is
# checked and its result compared: the same rule, at a fraction of the cost.

class DoFile:
    __slots__ = ('path', 'dir', 'arg1', 'arg2')

    def __init__(self, path, dir, arg1, arg2):
        self.path, self.dir, self.arg1, self.arg2 = path, dir, arg1, arg2


def do_candidates(path, top, exists_fn=exists):
    """Yields (do_path, do_dir, $1, $2) in search order."""
    d, base = os.path.split(path)
    yield os.path.join(d, base + '.do'), d, base, base
    exts = [base[i:] for i in range(1, len(base)) if base[i] == '.']
    exts.append('')
    sub = ''
    while True:
        for ext in exts:
            if ext == '' and base.endswith('.do'):
                continue            # default.do does not build .do files
            name = 'default%s.do' % ext
            arg1 = sub + base
            yield os.path.join(d, name), d, arg1, arg1[:len(arg1) - len(ext)]
        if d == '/' or d == top or exists_fn(os.path.join(d, STATE_DIR, 'top')):
            return
        d, part = os.path.split(d)
        sub = part + '/' + sub


def find_do(path, top, exists_fn=exists):
    for cand in do_candidates(path, top, exists_fn):
        if exists_fn(cand[0]):
            return DoFile(*cand)
    return None


# =============================================================================
# §9 The graph and why a target is out of date
# =============================================================================
# Graph holds what one process knows: a Node per path, each state file read
# at most once, each file's identity computed at most once.  The questions
# "is it a target?", "did this dependency change?" and "why is this target
# out of date?" are answered here, by the same code for the build (§15),
# redo-ood, redo-dot and -d.  A reason is a short sentence; None means up
# to date; MODIFIED means a target was changed by hand and is now a source.

MODIFIED = 'it was modified outside redo'
NO_DO = 'no .do file can build it now'
UNKNOWN = ()              # not looked at yet
UNREAD = ((),)            # Node.rec: it has a state file, not read yet
MODES = {}                # st_mode -> itself: one int object per mode


class Node:
    # One per path the run meets, 30000 of them in a tree of 10000 targets:
    # every slot counts (the lock of a target being built is in Locks.held).
    __slots__ = ('path', 'rec', 'fp', 'ident', 'mode', 'now_fp', 'done', 'ok',
                 'started', 'waiters', 'waiting', 'parent', 'depth',
                 'forced', 'top', 'call', 'direct', 'seen')

    def __init__(self, path):
        self.path = path
        self.rec = UNKNOWN        # its Record, None if never built, or UNREAD
        self.fp = None            # memo: fingerprint and identity now
        self.ident = None
        self.mode = UNKNOWN       # memo: lstat's st_mode (None: no file)
        self.now_fp = None        # and the fingerprint, with it
        self.done = False         # up to date (or failed) in this run
        self.ok = None
        self.started = False
        self.waiters = None       # tasks waiting for this node (a list)
        self.waiting = ()         # nodes this node waits for (cycles)
        self.parent = None        # who asked for it first (error chains)
        self.depth = 0
        self.forced = False       # `redo`, not `redo-ifchange`
        self.top = False          # named on the command line
        self.call = None          # the Call it is checked or built for
        self.direct = False       # named by that call (not a dependency)
        self.seen = None          # its fingerprint as checks of others saw it


class Graph:
    def __init__(self, env, cwd):
        self.env = env
        self.cwd = cwd
        self.nodes = {}
        self.state_names = {}     # dir -> names in dir/.redo, read once
        self.summaries = {}       # dir -> {state key: (fingerprint, marshalled)}
        self.summary_written = {}  # dir -> {state key: (fingerprint, Record)}
        self.summary_new = {}     # dir -> {state key: (fingerprint, marshalled)}
        self.summary_dirty = set()
        self.unfilled = {}        # path -> Record written with a `*` ctime (fill_in)
        self.made_dirs = set()
        self.modified = set()     # targets changed by hand: sources now, whose
                                  # dependents compare the content, not the
                                  # stamp or build id in their state
        self.listed = {}          # dir -> fingerprint of dir/.redo when listed
        self.state_fps = {}       # path -> fingerprint of its state file as read
        self.written = set()      # targets whose state this run wrote
        self.settled = True       # no observation was taken back (see Memo)
        self.seeds = None         # path -> (mode, fingerprint) a memo found
                                  # (Graph.seed), state files' too
        top = env.get(ENV_TOP_DIR)
        self.top = abs_path(cwd, top) if top else None

    def make_dirs(self, path):
        """make_dirs, once per directory and run."""
        if path not in self.made_dirs:
            make_dirs(path)
            self.made_dirs.add(path)

    def node(self, path):
        n = self.nodes.get(path)
        if n is None:
            n = self.nodes[path] = Node(path)
        return n

    def find(self, path):
        """The node of path, or None if it has none yet."""
        return self.nodes.get(path)

    def all_nodes(self):
        return self.nodes.values()

    def forget_listing(self, d):
        """d/.redo is to be listed again (see is_target)."""
        self.state_names.pop(d, None)

    def mark_modified(self, path):
        """path, a target changed by hand, is a source now."""
        self.modified.add(path)

    def take_back(self):
        """An observation this run made may no longer hold (a target done
        is built again, or another run built it): no memo (§9)."""
        self.settled = False
        self.unseed()

    def clear_modified(self, path):
        self.modified.discard(path)

    def record(self, n):
        """n's Record, read once; None if it has no state (never built)."""
        rec = n.rec
        if rec is UNKNOWN or rec is UNREAD:
            rec = n.rec = self.read_state(n) if self.is_target(n) else None
        return rec

    def is_target(self, n):
        """Whether n has a state file, without reading it: a dependency's
        record is read when its own check comes (and then mostly dropped,
        see Record.checked), not all at once by the target above it."""
        if n.rec is not UNKNOWN:
            return n.rec is not None      # UNREAD: it has one
        d, _, name = n.path.rpartition('/')
        d = d or '/'
        names = self.state_names.get(d)
        if names is None:
            sd = os.path.join(d, STATE_DIR)     # a symlink: what it points to too
            self.listed.setdefault(d, fingerprint(lstat_or_none(sd), sd))
            try:
                names = frozenset(x for x in os.listdir(os.path.join(d, STATE_DIR))
                                  if x.endswith(STATE_SUFFIX))
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            except OSError as e:
                # Unreadable, its targets would pass for sources.
                raise Error('cannot read %s: %s' % (quote(os.path.join(d, STATE_DIR)), e.strerror))
            self.state_names[d] = names
        # A state file written since the listing is caught by the lock
        # (targets another run builds are re-read once it is released).
        n.rec = UNREAD if state_key(name) + STATE_SUFFIX in names else None
        return n.rec is UNREAD

    # Design note: the summary.  Reading and parsing a state file costs more
    # than everything else a no-op check does for a target.  So each .redo
    # also holds `summary`, a cache of its state files already parsed (each
    # entry marshalled on its own, unpacked when used: compact in memory),
    # with the fingerprint of the state file it came from.  An entry is used
    # only if the state file's lstat still matches: the state files stay the
    # truth, a stale, garbled or missing summary only costs the reading it
    # would have saved (and the hash of each target built in the run that
    # wrote it: the summary also holds their outputs' ctime, filled in after
    # the rename, see fill_in).  It is rewritten at the end of a run that
    # read or wrote state files it did not hold.

    def read_state(self, n):
        d, _, name = n.path.rpartition('/')
        d = d or '/'
        key = state_key(name)
        path = '%s/%s/%s%s' % (d, STATE_DIR, key, STATE_SUFFIX)
        seed = self.seeds.pop(path, None) if self.seeds else None
        fp = seed[1] if seed is not None else fingerprint_kept(lstat_or_none(path))
        self.state_fps[n.path] = fp
        summary = self.summary(d)
        hit = summary.pop(key, None)      # used once: memory goes back
        if hit is not None:
            try:
                if hit[0] == fp:
                    return Record.from_tuple(marshal_loads(hit[1]))
            except (TypeError, ValueError, EOFError, IndexError, KeyError):
                pass
        rec = read_record_file(path, name)
        if rec is not None and rec.result != GARBLED:
            self.summary_new.setdefault(d, {})[key] = (fp, marshal_dumps(rec.to_tuple()))
            self.summary_dirty.add(d)
        return rec

    def summary(self, d):
        s = self.summaries.get(d)
        if s is None:
            s = self.summaries[d] = read_summary(d)
        return s

    def note_written(self, path, rec):
        """After write_record: the summary will learn the new state (the
        fingerprint is taken now, while the file is surely ours)."""
        d, _, name = path.rpartition('/')
        d = d or '/'
        key = state_key(name)
        fp = self.state_fps[path] = fingerprint_kept(
            lstat_or_none('%s/%s/%s%s' % (d, STATE_DIR, key, STATE_SUFFIX)))
        self.summary_written.setdefault(d, {})[key] = (fp, rec)
        self.written.add(path)
        self.summary_dirty.add(d)
        self.unfilled.pop(path, None)
        if rec.output is not None and is_unfilled(rec.output[0]):
            self.unfilled[path] = rec

    def fill_in(self, path, rec, fp):
        """Completes the `*` ctime of rec's output from fp, the target's
        first fingerprint since it was put in place.  The summary gets it
        (rec is the one it will write); the state file, the next time it
        is written for another reason.  Best-effort: a target that another
        process changed between the rename and this look would pass for
        what redo made."""
        del self.unfilled[path]
        rec.output = (fill_in(rec.output[0], fp), rec.output[1])

    def save_summaries(self):
        """At the end of a run: writes the summaries that changed, once
        the nodes are dropped (room for them)."""
        if self.summary_dirty:
            self.nodes.clear()
            self.write_summaries()

    def write_summaries(self):
        """Writes the summaries that changed: what the file held (entries
        used in this run were dropped from memory, not from the file), the
        state files read anew, and those written (a cache: errors are
        ignored).  The targets built whose ctime no look has filled in yet
        are looked at first."""
        for path, rec in list(self.unfilled.items()):
            try:
                fp = fingerprint_kept(lstat_or_none(path), path)
            except Error:
                fp = ABSENT
            self.fill_in(path, rec, fp)
        for d in self.summary_dirty:
            new = self.summary_new.get(d, {})
            written = self.summary_written.get(d, {})
            names = self.state_names.get(d)
            path = '%s/%s/%s' % (d, STATE_DIR, SUMMARY)
            tmp = '%s.%d.tmp' % (path, os.getpid())
            def entries():
                for chunk in summary_chunks(d):
                    for key, entry in chunk.items():
                        if key in new or key in written:
                            continue
                        if names is not None and key + STATE_SUFFIX not in names:
                            continue      # its state file is gone
                        yield key, entry
                for key, entry in new.items():
                    if key not in written:
                        yield key, entry
                for key, (fp, rec) in written.items():
                    yield key, (fp, marshal_dumps(rec.to_tuple()))
            try:
                with open(tmp, 'wb') as f:
                    f.write(SUMMARY_MAGIC)
                    chunk = {}
                    for key, entry in entries():
                        chunk[key] = entry
                        if len(chunk) >= SUMMARY_CHUNK:
                            write_piece(f, chunk)
                            chunk = {}
                    if chunk:
                        write_piece(f, chunk)
                os.replace(tmp, path)
            except (OSError, ValueError):
                discard(tmp)
        self.summary_dirty.clear()

    def rel(self, path):
        """path as printed: relative to the current directory, or absolute
        for a file outside the project (see is_outside)."""
        cwd = self.cwd
        if path.startswith(cwd) and path[len(cwd):len(cwd) + 1] == '/' or cwd == '/':
            return rel_path(path, cwd)
        return path if is_outside(path, cwd, self.top) else rel_path(path, cwd)

    def exists_memo(self, path):
        """For .do candidates: asked again and again, rarely changing; the
        .do found is a dependency, whose lstat is then already known."""
        return self.look(self.node(path))[0] is not None

    def find_do(self, path):
        return find_do(path, self.top, self.exists_memo)

    def stat(self, n):
        """(st_mode, fingerprint) of n's lstat, taken once until n is built
        or forgotten: files are not expected to change under a running
        build but by the .do that builds them."""
        if n.mode is UNKNOWN:
            if self.seeds:
                seed = self.seeds.pop(n.path, None)
                if seed is not None:
                    n.mode, n.now_fp = seed
                    return seed
            st = lstat_or_none(n.path)
            n.now_fp = fingerprint_kept(st, n.path)
            if self.unfilled and n.path in self.unfilled:
                self.fill_in(n.path, self.unfilled[n.path], n.now_fp)
            # The mode only, not the stat result: a tenth of the memory;
            # and one int object per distinct mode, not one per file.
            n.mode = None if st is None else MODES.setdefault(st.st_mode, st.st_mode)
        return n.mode, n.now_fp

    def look(self, n):
        """stat(n), for what is decided of another file (a dependent, a
        .do looked for, an ifcreate): what was seen is kept, for the memo
        (§9) holds one fingerprint per file, which must be the one every
        such decision saw."""
        mode, fp = self.stat(n)
        if n.seen is None:
            n.seen = fp
        elif n.seen != fp:
            self.settled = False
        return mode, fp

    def seed(self, pieces):
        """Takes as its own the lstat of files a memo found unchanged
        (memo_holds): the same fingerprints, a moment earlier.  Only until
        the first .do runs (unseed): a .do may change any file, and a file
        first looked at after it must be seen as it is then, as it would
        be with no memo."""
        seeds = {}
        for d, files in pieces:
            for name, fp in files:
                if name == STATE_DIR:
                    continue          # the memo's own check of .redo
                mode = None if fp == ABSENT else int(fp.split(':', 3)[2], 8)
                seeds[d + '/' + name if d != '/' else '/' + name] = (
                    None if mode is None else MODES.setdefault(mode, mode), fp)
        self.seeds = seeds or None

    def unseed(self):
        """A .do is to run: the memo's fingerprints not used yet go."""
        self.seeds = None

    def now(self, n, dep=None):
        """The identity of n now, as its dependents see it.  dep, a stored
        Dep, lets an unchanged fingerprint skip the hash; when only the
        fingerprint moved, dep.fp is refreshed and True is returned second."""
        rec = self.record(n)
        if rec is not None and rec.result in ('ok', MARKED) and n.path not in self.modified:
            special = rec.identity_for_dependents()
            if special is not None:
                return special, False
        mode, fp = self.look(n)
        if dep is not None and same_fingerprint(dep.fp, fp):
            return dep.ident, False
        if n.fp != fp:
            if rec is not None and rec.output and same_fingerprint(rec.output[0], fp):
                n.ident = rec.output[1]
            else:
                n.ident = identity(n.path, mode)
            n.fp = fp
        if dep is not None and n.ident == dep.ident:
            dep.fp = fp
            return n.ident, True
        return n.ident, False

    def why_modified(self, n, rec):
        """Compares a built target with what its state says redo made: for
        a symlink, where it points, not what it points to (that may change,
        and a relative link read in .redo/tmp pointed elsewhere)."""
        mode, fp = self.stat(n)
        if rec.output is None:
            if mode is None:
                return None
            ident = self.now_file(n, mode, fp)
            return 'its last build was interrupted' if is_previous(rec.previous, fp, ident) else MODIFIED
        if mode is None:
            return 'it does not exist'
        if same_fingerprint(rec.output[0], fp):
            return None
        ident = self.now_file(n, mode, fp)
        if own(ident) == own(rec.output[1]):
            rec.output = (fp, ident)
            rec.changed = True
            return None
        if is_previous(rec.previous, fp, ident):
            return 'its last build was interrupted'
        return MODIFIED

    def now_file(self, n, mode, fp):
        if n.fp != fp:
            n.fp, n.ident = fp, identity(n.path, mode)
        return n.ident

    def why_head(self, n, rec):
        """The reasons that are not in the dependencies, or None."""
        if rec.result == GARBLED:
            return 'its state file cannot be read'
        reason = self.why_modified(n, rec)    # a failed build's state too
        if reason is MODIFIED:
            self.modified.add(n.path)
            return MODIFIED
        d, _, name = n.path.rpartition('/')
        d = d or '/'
        # The usual case in short: its own NAME.do, always the first choice.
        other = None
        if rec.do != name + '.do' or not self.exists_memo(n.path + '.do'):
            do = self.find_do(n.path)
            if do is None:
                return NO_DO              # a source now, if its file is there
            if rel_path(do.path, d) != rec.do:
                other = '%s would build it now' % quote(self.rel(do.path))
        if rec.result == MARKED:
            return 'redo-rebuild marked it out of date'
        if rec.result != 'ok':
            return 'its last build failed'
        if reason is not None:
            return reason
        if n.forced:
            return 'redo was asked to build it'
        if rec.always:
            return 'it calls redo-always'
        return other

    def why_local(self, n, rec):
        """The reasons that need no other target brought up to date first
        (for a static look: redo-ood, redo-dot).  Returns (reason,
        [(dep, node), ...] of dependencies that are targets)."""
        reason = self.why_head(n, rec)
        if reason is not None:
            return reason, ()
        d = n.path.rpartition('/')[0] or '/'
        targets = []
        for dep in rec.deps:
            dn = self.node(abs_path(d, dep.name))
            if dep.kind == 'Ifcreate':
                if self.look(dn)[0] is not None:
                    return '%s exists now' % quote(self.rel(dn.path)), ()
            elif dn.done or self.is_target(dn):
                targets.append((dep, dn))
            else:
                ident, refreshed = self.now(dn, dep)
                if ident == ABSENT and self.find_do(dn.path) is not None:
                    targets.append((dep, dn))       # gone, but it can be built
                elif ident != dep.ident:
                    return '%s changed' % quote(self.rel(dn.path)), ()
                else:
                    rec.changed |= refreshed
        return None, targets

    def why_targets(self, rec, targets):
        """The rest of the reasons, once the targets among the dependencies
        are up to date (done) in this run."""
        for dep, dn in targets:
            if not dn.ok:
                return '%s failed' % quote(self.rel(dn.path))
            ident, refreshed = self.now(dn, dep)
            if ident != dep.ident:
                return '%s changed' % quote(self.rel(dn.path))
            rec.changed |= refreshed
        return None

    def why_static(self, root, memo=None):
        """Why root is out of date, without building anything: a target whose
        dependency is itself out of date counts as out of date.  Iterative,
        so that chains of any depth work.  Returns a reason or None; memo,
        if given, keeps the reasons of what was looked at ({path: reason})."""
        if memo is None:
            memo = {}
        active = set()
        stack = [(root, None)]
        while stack:
            n, pending = stack[-1]
            if n.path in memo:
                stack.pop()
                continue
            rec = self.record(n)
            if pending is None:
                if rec is None:
                    memo[n.path] = None if self.stat(n)[0] is not None else (
                        'it was never built' if self.find_do(n.path) else 'it does not exist')
                    stack.pop()
                    continue
                reason, targets = self.why_local(n, rec)
                if reason is NO_DO and self.stat(n)[0] is not None:
                    reason = None         # a source now (SPEC §3)
                    targets = ()
                if reason is not None:
                    memo[n.path] = None if reason is MODIFIED else reason
                    stack.pop()
                    continue
                if any(dn.path in active for dep, dn in targets):
                    memo[n.path] = 'its dependencies form a cycle'
                    stack.pop()
                    continue
                active.add(n.path)
                stack[-1] = (n, targets)
                for dep, dn in targets:
                    if dn.path not in memo:
                        stack.append((dn, None))
                continue
            stack.pop()
            active.discard(n.path)
            reason = None
            for dep, dn in pending:
                if memo.get(dn.path) is not None:
                    reason = '%s is out of date' % quote(self.rel(dn.path))
                    break
                dn.ok = True
            memo[n.path] = reason or self.why_targets(rec, pending)
        return memo[root.path]

    def memo_ok(self, tops):
        """At the end of a run that succeeded: whether its observations
        make a memo (see the design note below)."""
        if not self.settled or self.modified:
            return False
        # What this run found up to date keeps only what dependents compare
        # (Record.checked): its check passed.  What it built (or whose
        # state it wrote) is checked here, as the next run would: a target
        # that calls redo-always, say, would be built again.
        written = self.written
        memo = {n.path: None for n in self.nodes.values()
                if n.done and n.ok and n.path not in written}
        for n in list(tops) + [self.nodes[p] for p in written if p in self.nodes]:
            if self.why_static(n, memo) is not None or self.modified or not self.settled:
                return False
        for n in self.nodes.values():
            if n.seen is not None and self.stat(n)[1] != n.seen:
                return False          # seen otherwise before it was built
        return True

    def memo_pieces(self):
        """Yields the memo a piece at a time, (dir, [(name, fingerprint)]):
        the state files read in each .redo, then the files looked at in
        each directory (see memo_dirs for the rest).  State files first:
        after an edit, they are mostly as they were, and what a memo that
        no longer holds found unchanged, the check need not look at."""
        states = self.state_fps.items()
        files = ((n.path, n.now_fp) for n in self.nodes.values() if n.mode is not UNKNOWN)
        for in_state_dir, entries in ((True, states), (False, files)):
            pieces = {}
            for path, fp in entries:
                d, _, name = path.rpartition('/')
                piece = pieces.get(d)
                if piece is None:
                    piece = pieces[d] = []
                piece.append((state_key(name) + STATE_SUFFIX if in_state_dir else name, fp))
                if len(piece) == MEMO_PIECE:
                    yield self.memo_dir(d, in_state_dir), piece
                    del pieces[d]
            for d, piece in pieces.items():
                yield self.memo_dir(d, in_state_dir), piece

    @staticmethod
    def memo_dir(d, states):
        d = d or '/'
        return os.path.join(d, STATE_DIR) if states else d

    def memo_dirs(self):
        """After the run's last write: the last piece of the memo, each
        .redo listed in this run with its fingerprint now; None if one of
        them holds a state file that was neither there when the run listed
        it nor written by the run (another run's target: the run may have
        taken it for a source).  A state file gone shows in the memo:
        each one the run read is there, by its fingerprint."""
        pieces = []
        for d, first in self.listed.items():
            sd = os.path.join(d, STATE_DIR)
            fp = fingerprint(lstat_or_none(sd), sd)
            if fp != first:           # written since (by this run?)
                seen = self.state_names.get(d)
                if seen is None:
                    return None
                ours = self.summary_written.get(d, {})
                try:
                    names = os.listdir(sd) if fp != ABSENT else ()
                except OSError:
                    return None
                for x in names:
                    if x.endswith(STATE_SUFFIX) and x not in seen \
                            and x[:-len(STATE_SUFFIX)] not in ours:
                        return None
            pieces.append((d, [(STATE_DIR, fp)]))
        return pieces


# Design note: the memo of a no-op.  A check that finds everything up to
# date is a function of what it reads: the command line and the options
# that shape a check, this program, the listing and state files of each
# .redo it looks in, and the fingerprint of each file it looks at.  When
# the same reads would give the same answers, the check need not run.
# So a run that succeeded, whether it built something or not, leaves in
# .redo/memo/ (beside its first target) a memo: every file it observed,
# with the fingerprint it saw, and each .redo it looked in, with that
# directory's fingerprint after the run's own writes.  The next run with
# the same key compares them first, one lstat each; if every one is the
# same, nothing can be out of date and it exits at once.  Any difference
# and the usual check runs, as if there were no memo.
#
# The memo states nothing about up-to-dateness of its own: before it is
# written, the run's own check (why_static, over the graph in memory) must
# find every target named up to date with the observations it will hold,
# with no target changed by hand.  Targets checked earlier in the run hold
# only what dependents compare (Record.checked): their check passed on the
# observations in the memo, unless one was taken back (a target done and
# built again, or built by another run: Graph.take_back), and then no memo
# is written; nor when a file that a check of another file saw (as a
# dependency, a .do looked for, an ifcreate) is not the same at the end
# (Graph.look).  A .redo's fingerprint changes with any file made, renamed
# or removed in it, which is how every state file is written; each state
# file the run read is in the memo too, by its fingerprint.  A .redo
# written meanwhile (by this run or another) is listed again at the end:
# it must hold no state file but those the run listed or wrote.  When a
# memo no longer holds, what it found unchanged is given to the check
# that runs then (Graph.seed), until the first .do starts.
# Within one tick of the clock of a kernel before 6.13, a file renamed in
# a .redo just after the run's last look may leave its fingerprint as it
# was: the window git's index accepts, and the one fingerprints of files
# accept already (§6).  Whatever fails here only costs the memo.

MEMO_DIR = 'memo'                 # .redo/memo/<hash of the key>
MEMO_MAGIC = b'redo.py memo 2\n'
MEMO_KEEP = 16                    # memos kept per directory
MEMO_PIECE = 1000                 # entries per marshalled piece


def memo_place(cmd, cwd, args, env, first):
    """(path of the memo, its key) for a command line whose first target
    is first (absolute)."""
    me = __file__
    key = repr((cmd, cwd, args, env.get(ENV_TOP_DIR, ''), FORMAT,
                fingerprint(lstat_or_none(me), me)))
    h = _hasher()
    h.update(key.encode('utf-8', 'surrogateescape'))
    d = first.rpartition('/')[0] or '/'
    return '%s/%s/%s/%s' % (d, STATE_DIR, MEMO_DIR, h.hexdigest()), key


def memo_holds(path, key, seen):
    """Whether the memo at path, made for key, still holds: every file in
    it has the fingerprint it had.  The file: pieces (read_pieces) that are
    the key, then those of Graph.memo_pieces and memo_dirs, then None.
    Each directory's files are looked at from the directory, opened once
    (no path to walk for each).  What was found unchanged before a
    difference goes to the list seen, as pieces: the check that runs then
    need not look again (Graph.seed)."""
    pieces = read_pieces(path, MEMO_MAGIC)
    if next(pieces, None) != key:
        return False
    for piece in pieces:
        if piece is None:
            return next(pieces, None) is None
        try:
            d, files = piece
            same = same_files(d, files)
        except (ValueError, TypeError):
            return False
        if same < len(files):
            seen.append((d, files[:same]))
            return False
        seen.append(piece)
    return False                  # no end: cut short


def same_files(d, files):
    """How many of files ([(name, fingerprint)] in directory d), from the
    first, have the fingerprint given."""
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        for i, (name, fp) in enumerate(files):
            if fp != ABSENT:
                return i
        return len(files)
    except (OSError, ValueError):
        return 0
    lstat = os.lstat
    i = 0
    try:
        for name, fp in files:
            try:
                st = lstat(name, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                if fp != ABSENT:
                    return i
                i += 1
                continue
            link = (st.st_mode & 0o170000) == 0o120000     # what it points to too
            if fingerprint(st, os.path.join(d, name) if link else None) != fp:
                return i
            i += 1
    except (OSError, ValueError):
        return i
    finally:
        os.close(fd)
    return i


def start_memo(path, key, pieces):
    """Writes a memo's pieces to a temporary file, before the run's last
    writes (the .redo fingerprints come after them: end_memo).  Returns
    the temporary file's path, or None (a cache: errors only cost it)."""
    tmp = '%s.%d.tmp' % (path, os.getpid())
    try:
        try:
            os.mkdir(os.path.dirname(path))
        except FileExistsError:
            pass
        with open(tmp, 'wb') as f:
            f.write(MEMO_MAGIC)
            write_piece(f, key)
            for piece in pieces:
                write_piece(f, piece)
        return tmp
    except (OSError, ValueError):
        discard(tmp)
        return None


def end_memo(tmp, path, last):
    """Completes the memo started in tmp with its last pieces (None: there
    is to be no memo) and puts it in place; keeps MEMO_KEEP of them."""
    try:
        if last is None:
            raise ValueError('no memo')
        with open(tmp, 'ab') as f:
            for piece in last:
                write_piece(f, piece)
            write_piece(f, None)          # the end: a memo cut short never holds
        os.replace(tmp, path)
        prune_memos(os.path.dirname(path))
    except (OSError, ValueError, Error):
        discard(tmp)


def prune_memos(d):
    """Keeps the MEMO_KEEP newest memos in d, and no temporary file of a
    process that is gone (killed while it wrote one)."""
    names = []
    for name in os.listdir(d):
        if not name.endswith('.tmp'):
            names.append(name)
        elif not pid_alive(name[:-4].rpartition('.')[2]):
            unlink_quiet(os.path.join(d, name))
    if len(names) > MEMO_KEEP:
        names.sort(key=lambda x: os.lstat(os.path.join(d, x)).st_mtime_ns)
        for name in names[:len(names) - MEMO_KEEP]:
            unlink_quiet(os.path.join(d, name))


# =============================================================================
# §10 GNU make's jobserver
# =============================================================================
# Design note.  At most N .do scripts run at once (§14).  The slots are
# make's jobserver tokens: every process owns one implicit slot, and takes more by
# reading one byte each from a shared pipe, writing the byte back when done.
# A top-level redo makes such a pipe with N-1 bytes in it and names it in
# MAKEFLAGS (--jobserver-auth=R,W), so that a `make` run from a .do, and the
# make's own children, draw from the same N.  Under `make -jN`, redo finds
# make's pipe (R,W or fifo:PATH, or the older --jobserver-fds) in MAKEFLAGS
# and draws from it instead, unless -j or REDO_JOBS says otherwise.
#
# Reading a token must never block the coordinator, but the pipe's file
# description is shared with make, which may not expect O_NONBLOCK on it.
# So redo reads through a description of its own: /proc/self/fd/R reopened
# (Linux), or the fifo opened anew; elsewhere, O_NONBLOCK is set just around
# each read.  A .do that waits for its dependencies gives its slot back
# (the byte goes back to the pipe if no task of ours wants it), and takes a
# slot again, before any new .do starts, when they are ready; so -j1 runs
# strictly one script at a time.  Every byte taken is written back at exit.

class JobServer:
    """Tokens from a make-style jobserver pipe."""

    def __init__(self, rfd, wfd, read_fd, owned):
        self.rfd, self.wfd = rfd, wfd     # what children inherit
        self.read_fd = read_fd            # ours, non-blocking where possible
        self.owned = owned                # we made it (and its MAKEFLAGS)
        self.held = []                    # bytes taken, to give back

    @classmethod
    def create(cls, jobs):
        r, w = os.pipe()
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        os.write(w, b'+' * (jobs - 1))
        read_fd = cls.private(r)
        return cls(r, w, read_fd, True)

    @classmethod
    def join(cls, makeflags):
        """(the jobserver named in MAKEFLAGS or None, a warning or None).
        Must be called before this process opens any file descriptor, so
        that the numbers in MAKEFLAGS cannot be mistaken for its own."""
        spec = None
        for word in makeflags.split():
            for prefix in ('--jobserver-auth=', '--jobserver-fds='):
                if word.startswith(prefix):
                    spec = word[len(prefix):]
        if spec is None:
            return None, None
        try:
            if spec.startswith('fifo:'):
                path = spec[5:]
                import stat
                r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                if not stat.S_ISFIFO(os.fstat(r).st_mode):
                    os.close(r)
                    raise OSError(0, 'not a fifo')
                w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                return cls(r, w, r, False), None
            rs, ws = spec.split(',')
            r, w = int(rs), int(ws)
            import stat
            sr, sw = os.fstat(r), os.fstat(w)
            if not (stat.S_ISFIFO(sr.st_mode) and sr.st_ino == sw.st_ino):
                raise OSError(0, 'not the two ends of one pipe')
            return cls(r, w, cls.private(r), False), None
        except (OSError, ValueError, OverflowError) as e:
            return None, ('MAKEFLAGS names a jobserver (%s) that cannot be used (%s): '
                          'running one job at a time; in a Makefile, mark the rule '
                          'that runs redo with "+"' % (spec, getattr(e, 'strerror', None) or e))

    @staticmethod
    def private(fd):
        try:
            mine = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return fd
        return mine

    def makeflags(self, old, jobs):
        words = [w for w in old.split() if not w.startswith(
            ('--jobserver-auth=', '--jobserver-fds=', '-j')) and w != 'j']
        return ' '.join([''] + words + ['-j%d' % jobs, '--jobserver-auth=%d,%d' % (self.rfd, self.wfd)])

    def take(self):
        """One token, or None if there is none now."""
        shared = self.read_fd == self.rfd and not self.owned
        if shared:
            os.set_blocking(self.read_fd, False)
        try:
            data = os.read(self.read_fd, 1)
        except (BlockingIOError, InterruptedError):
            return False
        finally:
            if shared:
                os.set_blocking(self.read_fd, True)
        if not data:
            return False
        self.held.append(data)
        return True

    def give(self):
        if self.held:
            try:
                os.write(self.wfd, self.held.pop())
            except OSError:
                pass

    def close(self):
        while self.held:
            self.give()
        if self.read_fd not in (self.rfd, self.wfd):
            os.close(self.read_fd)
        if self.owned:
            os.close(self.rfd)
            os.close(self.wfd)


# =============================================================================
# §11 Running one .do
# =============================================================================
# The script runs with its own directory as cwd, stdin from /dev/null,
# stdout into dir/.redo/out/name (a regular file: seeking tools work) and
# stderr into a pipe that the coordinator copies to the caller's stderr and
# to dir/.redo/name.log.  posix_spawn cannot change directory, so a
# one-line sh wrapper opens stdout, does the cd and then sources the .do
# (or execs its `#!` interpreter, see shebang_of): `sh -e file.do` in one
# process.
#
# The wrapper first reads a `go` line from its stdin, a pipe from the
# coordinator, then takes /dev/null as stdin.  So the shell can be started
# ahead, while the slots are taken (Builder.start_ahead); a slot that frees
# then starts the .do with one write, not a process start.  At end of file (the coordinator dropped the job, or
# died) it exits, having run nothing.  Its stdout file is made only after
# the go, when the target's lock is held.

SH = '/bin/sh'
WRAP_GATE = ('read -r __redo_go && [ "$__redo_go" = go ] || exit 0; unset __redo_go; '
             'exec </dev/null >"$1" || exit 111; cd -- "$2" || exit 111; shift 2; ')
WRAP_SOURCE = WRAP_GATE + '%s. "$0"'
WRAP_EXEC = WRAP_GATE + 'exec "$@"'

# The client again (the protocol is described in §16; the sh part at the
# top of the file is the same client as a program), as shell functions
# that aliases put in place of the commands while the .do is sourced: a call
# then costs no process at all.  Being in the .do's own shell, they use
# names of their own, keep `set -C` as they found it, and fail only where a
# command would (errexit applies at the call).  They differ from the
# program in two ways.  The .do's own shell keeps its job's claim once it
# has it (kind K), so that calls in a row never wait for the run to see a
# `done` and never make a fifo; it knows itself by /proc/self being
# /proc/$$.  And a subshell shares $$, so a request of its own is named by
# the pid /proc/self/stat gives, made unique with O_EXCL all the same (the
# coordinator removes it at `done`).  What a separate program would do instead
# (--help, --version, --install; a redo the .do cut off from the run by
# unsetting REDO_RUN, which is then a new top-level redo) runs the programs
# found on PATH.  Left out under -x and -v, whose traces would show them,
# and under ksh, whose functions do not export `V=1 redo x`'s V.
CLIENT_FUNCTIONS = r"""
__redo_call() {   # a .do's own `set -x` shows the call, not the client
  case $- in
    *x*) set +x; if __redo_call1 "$@"; then set -x; else __redo_s=$?; set -x; return $__redo_s; fi ;;
    *) __redo_call1 "$@" ;;
  esac
}
__redo_call1() {
  __redo_c=$1; shift
  __redo_x=
  [ -n "${REDO_JOB-}" ] && [ -p "${REDO_RUN-}/req" ] || __redo_x=1
  for __redo_a; do case $__redo_a in -h|--help|-V|--version|--install|--install=*|-[!-]*[hV]*) __redo_x=1 ;; esac; done
  if [ -n "$__redo_x" ]; then if [ "$__redo_c" = redo ]; then command redo "$@"; else command "redo-$__redo_c" "$@"; fi; return; fi
  # The calling process: $$ unless in a subshell (dash's read takes a byte a call: only then).
  if [ /proc/self -ef "/proc/$$" ]; then __redo_p=$$ __redo_m=1; else __redo_m=; { IFS=' ' read -r __redo_p __redo_x </proc/self/stat; } 2>/dev/null || __redo_p=$$; fi
  __redo_i=$REDO_JOB
  if [ -n "$__redo_m" ] && [ "${__redo_J-}" = "$REDO_RUN/$REDO_JOB" ]; then
    __redo_k=K
    { __redo_q "$@" >|"$REDO_RUN/$REDO_JOB.c"; } 2>/dev/null || { __redo_J=; __redo_alone "$@"; return; }
  else
    case $- in *C*) __redo_C=1 ;; *) __redo_C=; set -C ;; esac
    if { [ -p "$REDO_RUN/$REDO_JOB.r" ] && __redo_q "$@" >"$REDO_RUN/$REDO_JOB.c"; } 2>/dev/null; then
      __redo_k=J
      [ -z "$__redo_m" ] || { __redo_k=K; __redo_J=$REDO_RUN/$REDO_JOB; }
    else
      __redo_k=P __redo_n=0
      until { true >"$REDO_RUN/$__redo_p.$__redo_n.q"; } 2>/dev/null; do
        __redo_n=$((__redo_n + 1))
        if [ "$__redo_n" -gt 99999 ] || [ ! -d "$REDO_RUN" ]; then [ -n "$__redo_C" ] || set +C; __redo_alone "$@"; return; fi
      done
      __redo_i=$__redo_p.$__redo_n
      { __redo_q "$@" >|"$REDO_RUN/$__redo_i.q" && mkfifo "$REDO_RUN/$__redo_i.r"; } 2>/dev/null || { [ -n "$__redo_C" ] || set +C; __redo_alone "$@"; return; }
    fi
    [ -n "$__redo_C" ] || set +C
  fi
  __redo_x=
  # From the request on, fd 2 stays as the caller has it: the run looks at it.
  # The job's fifo, which the run holds open, is opened while a writer of the call's own
  # holds it, which then goes: a run that ends or dies is an end of file, never an open
  # that waits for ever.  A fifo of its own (P) is opened by the run only for the request.
  if printf '%s %s %s %s %s/fd/2\n' "$__redo_c" "$REDO_JOB" "$__redo_i" $__redo_k "$__redo_p" 1<>"$REDO_RUN/req"; then
    if [ $__redo_k = P ]; then read -r __redo_x <"$REDO_RUN/$__redo_i.r"
    else { { exec 9>&-; read -r __redo_x; } <"$REDO_RUN/$__redo_i.r"; } 9<>"$REDO_RUN/$__redo_i.r"
    fi || :
  fi
  [ $__redo_k = K ] || { printf 'done %s %s %s\n' "$REDO_JOB" "$__redo_i" $__redo_k 1<>"$REDO_RUN/req"; } 2>/dev/null
  case $__redo_x in [0-9]|[0-9][0-9]|[0-9][0-9][0-9]) return "$__redo_x" ;; esac
  __redo_alone "$@"
}
__redo_q() {   # the request, if the run is there
  kill -0 "$REDO_PID" || return
  if [ "$__redo_c" = stamp ]; then printf '%s\0\0' "$PWD" && cat
  else printf '%s\0' "$PWD" && export -p && printf '\0' && { [ $# = 0 ] || printf '%s\0' "$@"; }
  fi
}
__redo_alone() {   # the run ended (its directory moved away) without an answer: a redo of its own
  if [ "$__redo_x" != R ] && [ -d "$REDO_RUN" ]; then
    if ! kill -0 "$REDO_PID" 2>/dev/null; then echo "redo-$__redo_c: lost contact with the running redo" >&2; return 2; fi
    # Its job's fifo closed under it (the .do had ended): once more, with a fifo of its own.
    if [ "${__redo_k-}" != P ]; then __redo_k=P __redo_J=; __redo_call "$__redo_c" "$@"; return; fi
    echo "redo-$__redo_c: cannot reach the running redo through $REDO_RUN (file system full?)" >&2; return 2
  fi
  REDO_RUN= command /bin/sh "$REDO_PY" "$__redo_c" "$@"
}
[ -n "${KSH_VERSION-}" ] || alias redo='__redo_call redo' redo-ifchange='__redo_call ifchange' redo-ifcreate='__redo_call ifcreate' redo-always='__redo_call always' redo-stamp='__redo_call stamp' redo-recheck='__redo_call recheck'
"""

TMP3_PREFIX = '.redo3.'   # $3 is dir/.redo3.NAME, beside the target


def shebang_of(path):
    """The command that runs the .do at path: None for `sh -e` (sourced),
    [path] for an executable with a `#!` line, [interpreter, (argument,)
    path] for a `#!` line on a file that is not executable (as the kernel
    would read it).  A directory is an Error (sh would source it as an
    empty script)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return [path] if os.access(path, os.X_OK) else None   # for sh or exec to report
    try:
        if _is_dir(os.fstat(fd)):
            raise Error('cannot run %s: it is a directory' % quote(path))
        head = os.read(fd, 256)
    except OSError:
        return None
    finally:
        os.close(fd)
    if head[:2] != b'#!':
        return None
    if os.access(path, os.X_OK):
        return [path]
    words = os.fsdecode(head[2:].split(b'\n')[0]).strip().split(None, 1)
    return (words + [path]) if words else None


def tmp3_path(path):
    d, _, name = path.rpartition('/')
    if len(os.fsencode(name)) + len(TMP3_PREFIX) > 255:
        return tmp_file(path, TMP3_DIR)     # too long a name for the prefix
    return '%s/%s%s' % (d, TMP3_PREFIX, name)


class Job:
    """One run of a .do: its process, its output files, the dependencies it
    asked for.  Owned by the build task of its node (Builder.t_build), whose
    slot it runs in; `calls` counts the requests of its .do in flight."""

    def __init__(self, graph, node, do, jobid, run_dir, output, logs):
        self.graph = graph        # for make_dirs and rel
        self.run_dir = run_dir    # where its client talks to the run
        self.output = output      # how its stderr is shown (see show)
        self.logs = logs          # its stderr is kept in its log
        self.node = node
        self.do = do
        self.id = jobid
        self.pid = None
        self.waiter = None        # the task waiting for it to end
        self.task = None          # the build task, which holds the slot
        self.calls = 0            # requests of the .do being served
        self.waiting = 0          # of those, the ones waiting for targets
        self.calls_waiter = None  # the build task, once the .do ended
        self.deps = []            # Dep records, in order asked
        self.dep_names = set()
        self.always = False
        self.stamp = ''
        self.err_fd = None
        self.err_id = None        # (dev, ino) of its stderr pipe
        self.err_buf = b''
        self.log_fd = None
        self.in_place = False     # it made $1 a directory itself
        self.slot = 0             # the number of the slot it holds now
        self.first_slot = 0
        self.slot_started = False
        self.seg_start = 0.0
        self.ran = []             # (start, end, slot) while it held one
        self.out_bytes = UNKNOWN  # see out_size
        self.grouped = []         # its stderr, with output mode 'group'
        self.fifo = os.path.join(run_dir, '%d.r' % jobid)
        self.fifo_fd = None
        self.gate_w = None        # the wrapper's stdin until go()
        self.tmp3 = tmp3_path(node.path)
        self.out = tmp_file(node.path, STDOUT_DIR)
        self.log = state_file(node.path, LOG_SUFFIX)
        self.log_tmp = tmp_file(node.path, LOG_TMP_DIR)
        self.logged = False       # log_tmp was made
        self.before = None
        self.started = 0.0
        self.ended = 0.0
        self.status = None
        self.term = node.call.term

    def spawn(self, env, xtrace, verbose, go):
        """Starts the .do's shell, which waits for go() (see WRAP_GATE),
        unless go is true: then it has its go before it starts."""
        n = self.node
        self.graph.make_dirs(os.path.dirname(self.out))
        if TMP3_PREFIX not in self.tmp3:
            self.graph.make_dirs(os.path.dirname(self.tmp3))
        os.mkfifo(self.fifo)
        self.fifo_fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        gate_r, self.gate_w = os.pipe()
        if go:
            self.go()
        actions = [(os.POSIX_SPAWN_DUP2, gate_r, 0)]
        err_w = None
        if self.logs:
            self.err_fd, err_w = os.pipe()
            os.set_blocking(self.err_fd, False)
            st = os.fstat(self.err_fd)
            self.err_id = (st.st_dev, st.st_ino)
            actions.append((os.POSIX_SPAWN_DUP2, err_w, 2))
        elif self.term.fd not in (None, 2):
            actions.append((os.POSIX_SPAWN_DUP2, self.term.fd, 2))
        do = self.do
        arg3 = rel_path(self.tmp3, do.dir)
        command = shebang_of(do.path)
        if command is not None:
            argv = [SH, '-c', WRAP_EXEC, do.path, self.out, do.dir] + command
        else:
            flags = ('set -x; ' if xtrace else '') + ('set -v; ' if verbose else '')
            argv = [SH, '-e', '-c', WRAP_SOURCE % (flags or CLIENT_FUNCTIONS), do.path,
                    self.out, do.dir]
        argv += [do.arg1, do.arg2, arg3]
        env = dict(env)
        env[ENV_JOB] = str(self.id)
        env[ENV_TARGET] = n.path
        try:
            self.pid = os.posix_spawn(SH, argv, env, file_actions=actions,
                                      setsigdef=(signal.SIGPIPE, signal.SIGXFSZ,
                                                 signal.SIGINT, signal.SIGTERM,
                                                 signal.SIGHUP))
        except OSError as e:
            raise Error('cannot run %s: %s' % (quote(do.path), e.strerror))
        finally:
            os.close(gate_r)
            if err_w is not None:
                os.close(err_w)

    def go(self):
        """Lets the started shell run the .do (the target's lock is held)."""
        import time
        n = self.node
        unlink_quiet(self.tmp3)           # what a killed run left
        unlink_quiet(self.out)
        unlink_quiet(self.log_tmp)
        self.graph.unseed()
        if lstat_or_none(os.path.dirname(self.out)) is None:
            make_dirs(os.path.dirname(self.out))   # a .do removed it
        self.before = fingerprint(lstat_or_none(n.path))
        self.started = time.time()
        os.write(self.gate_w, b'go\n')
        os.close(self.gate_w)
        self.gate_w = None

    def read_stderr(self, final=False, drain=False):
        """Copies what the .do wrote to stderr, whole lines at a time (all
        there is, with drain or final).  Returns False at end of file."""
        more = True
        cut = 0
        while True:
            try:
                data = os.read(self.err_fd, 65536)
            except BlockingIOError:
                break
            if not data:
                more = False
                break
            nl = data.rfind(b'\n')        # in the new data only: a line of
            if nl >= 0:                    # megabytes (progress bars drawn
                cut = len(self.err_buf) + nl + 1   # with \r) costs no more
            self.err_buf += data
            if not final and not drain:
                break
        if len(self.err_buf) >= 65536:
            cut = len(self.err_buf)        # so much of one line: out with it
        if final:
            cut = len(self.err_buf)
            if cut and not self.err_buf.endswith(b'\n'):
                self.err_buf += b'\n'
                cut += 1
        if cut:
            chunk, self.err_buf = self.err_buf[:cut], self.err_buf[cut:]
            self.keep_log(chunk)
            self.show(chunk)
        if final and self.grouped:     # -O: in one piece, after its label
            self.term.write(os.fsencode(quote(self.graph.rel(self.node.path))) + b': '
                            + b''.join(self.grouped))
            self.term.source = self.node.path
            self.grouped = []
        return more

    def show(self, chunk):
        """Passes stderr lines on as the run's output mode says: as they
        are, each after a label naming the target, or kept to be shown in
        one piece when the .do ends (-O)."""
        mode = self.output
        if mode == 'group':
            self.grouped.append(chunk)
            return
        if mode == 'lines' and self.term.source != self.node.path:
            # A label where the lines change hands: unlabelled lines are
            # those of the target named last above them.
            chunk = os.fsencode(quote(self.graph.rel(self.node.path))) + b': ' + chunk
            self.term.source = self.node.path
        self.term.write(chunk)

    def out_size(self):
        """How much the .do wrote to stdout (None: the file is gone), once
        it has ended."""
        if self.out_bytes is UNKNOWN:
            st = lstat_or_none(self.out)
            self.out_bytes = None if st is None else st.st_size
        return self.out_bytes

    def keep_log(self, chunk):
        if self.log_fd is None:
            try:
                make_dirs(os.path.dirname(self.log_tmp))
                self.log_fd = os.open(self.log_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                self.logged = True
            except (OSError, Error):
                self.log_fd = -1
        if self.log_fd >= 0:
            try:
                write_all(self.log_fd, chunk)
            except OSError:       # a full disk: the log is only a copy
                os.close(self.log_fd)
                self.log_fd = -1

    def close(self):
        """Releases everything the job holds, but the temporary outputs (a
        shell still waiting for its go reads end of file, and exits)."""
        if self.gate_w is not None:
            os.close(self.gate_w)
            self.gate_w = None
        if self.err_fd is not None:
            self.read_stderr(final=True)
            os.close(self.err_fd)
            self.err_fd = None
        if self.log_fd is not None:
            if self.log_fd >= 0:
                os.close(self.log_fd)
            self.log_fd = None
        if self.fifo_fd is not None:
            os.close(self.fifo_fd)
            self.fifo_fd = None
            unlink_quiet(self.fifo)
            # Its reply fifo is gone: a call its .do left behind (`&`)
            # must make one of its own (kind P).  So the claim stays.
            try:
                os.close(os.open(os.path.join(self.run_dir, '%d.c' % self.id),
                                 os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError:
                pass

    def publish_log(self):
        """The build ended (built or failed): its stderr becomes the log.
        An interrupted one leaves the log of the build before it, which
        goes with the state that stays."""
        try:
            if self.logged:
                os.replace(self.log_tmp, self.log)
            else:
                unlink_quiet(self.log)
        except OSError:
            unlink_quiet(self.log_tmp)

    def remove_temporaries(self):
        unlink_quiet(self.tmp3)
        if self.logged:
            unlink_quiet(self.log_tmp)
        if self.started:
            unlink_quiet(self.out)

    def add_dep(self, dep):
        key = dep.name if dep.kind == 'Dep' else '\0' + dep.name
        if key not in self.dep_names:
            self.dep_names.add(key)
            self.deps.append(dep)


# =============================================================================
# §12 The coordinator: its parts, calls and tasks
# =============================================================================
# Design note.  A top-level `redo` (or `redo-ifchange`) becomes the one
# process that owns the run: the graph, the state files, the job slots and
# every .do process.  The redo-* commands that the .do scripts run are thin
# clients of it: shell functions in the .do's own shell (CLIENT_FUNCTIONS,
# in §11), or the sh part at the top of this file, started through symlinks
# in REDO_RUN/bin that come first on the scripts' PATH (the protocol: §16).
# So a call inside a build costs at most one /bin/sh start and never a
# Python start, and nothing is read from disk twice in a run.
#
# The coordinator is five parts, a section each, each using only those
# above it, in the order data flows:
#   the loop (§13)     runs the tasks; waits on file descriptors, timers,
#                      signals and child processes.
#   slots (§14)        who may run a .do now: the implicit slot, jobserver
#                      tokens, a call's -j; a slot goes back in one place.
#   the builder (§15)  is a target up to date? it locks it, runs its .do,
#                      commits the result or the failure.
#   the server (§16)   requests in, answers out; the environment, options
#                      and stderr of each call.
#   the run (§17)      makes the parts, connects them and drives the loop.
# Each part's state is its own: the others ask it through its methods.  The
# graph (§9) is held by the run and lent to the builder and the server.
# The loop and the slots know nothing of targets: what they cannot decide
# (a task ended, waits for nodes, no task can run; which waiting .do is
# still wanted) they hand to functions the run connects (Loop.connect,
# Slots.set_filter).
#
# Work is done by tasks: generators that yield what they wait for, resumed
# by the loop with the answer:
#   a list of nodes   whether all are ok, once done; or a cycle, the list
#                     of nodes, if one of them waits through any chain on
#                     the waiter (Builder.wait_nodes)
#   SLOT, RESUME      True once the task holds a slot (RESUME: for the .do
#                     it serves); False if its .do is not to start (§14)
#   a Job             its exit status, once its process has ended
#   START             None, once the tasks made ready before it have run
#   ('calls', job)    None, once the requests job's .do left have ended
#   ('sleep', s)      None, s seconds later
#
# Each redo or redo-ifchange, at top level or from a .do, is a Call: its
# options, its environment and its stderr apply to the targets it starts
# and to all they build.  A failed target stops its call (unless -k): the
# call's targets that have not started their .do do not start it, and the
# call answers non-zero, for its .do to decide.  Nothing stops the run.

SLOT = 'slot'
RESUME = 'resume'
START = ('start', ())     # run the tasks made ready, then this one again


class Task:
    """A generator the loop runs, and what it waits for (see the note)."""
    __slots__ = ('gen', 'node', 'nodes', 'count', 'failed', 'call', 'owner', 'has_slot')

    def __init__(self, gen, node, call=None, owner=None):
        self.gen = gen
        self.node = node          # on whose behalf it waits (cycles), or None
        self.nodes = ()
        self.count = 0
        self.failed = False       # one of nodes failed (as it ended: a `redo`
                                  # may have reset it since)
        self.call = call          # the Call it serves (t_top, t_serve)
        self.owner = owner        # the task a RESUME takes a slot for
        self.has_slot = False


class Call:
    """One redo or redo-ifchange: what applies to everything it builds."""
    __slots__ = ('opts', 'env', 'limit', 'inherit', 'stopped', 'term')

    def __init__(self, opts, env, term, limit=0, inherit=0):
        self.opts = opts
        self.env = env            # of the .do files it runs
        self.term = term          # its stderr
        self.limit = limit        # targets at once (0: no limit)
        self.inherit = inherit    # the limit of the calls its .do files make
        self.stopped = False      # one of its targets failed, no -k


class Options:
    """Everything that shapes a build, read once from the environment and
    the command line, and written back to the environment for the children."""

    def __init__(self, env):
        self.jobs = _int_env(env, ENV_JOBS, 0)     # 0: make's, or one per CPU
        self.cli_jobs = 0
        self.keep_going = _flag(env, ENV_KEEP_GOING)
        self.xtrace = 2 if _flag(env, ENV_TRACE) else 0
        self.verbose = 2 if _flag(env, ENV_VERBOSE) else 0
        self.debug = _flag(env, ENV_DEBUG)
        self.silent = _flag(env, ENV_SILENT)
        self.logs = env.get(ENV_LOGS, '1') != '0'
        self.sync = not _flag(env, ENV_NO_SYNC)
        self.stop_if_modified = _flag(env, ENV_STOP_IF_MODIFIED)
        self.shuffle = _flag(env, ENV_SHUFFLE)
        self.output = env.get(ENV_OUTPUT, '')
        if self.output not in ('', 'lines', 'group', 'plain'):
            raise Error('%s=%s: must be lines, group or plain' % (ENV_OUTPUT, self.output), EXIT_USAGE)
        self.progress = True
        self.dry_run = False

    def apply(self, v):
        """The options of a command line (parse_options' values) over
        those of the environment."""
        jobs = v.get('j', v.get('jobs'))
        if jobs is not None:
            check_jobs(v, {})
            self.cli_jobs = int(jobs) or min(os.cpu_count() or 1, MAX_JOBS)
        self.keep_going |= bool(v.get('k') or v.get('keep-going'))
        self.xtrace = max(self.xtrace, v.get('x', 0))
        self.verbose = max(self.verbose, v.get('v', 0))
        self.debug |= bool(v.get('d') or v.get('debug') or v.get('explain'))
        self.silent |= bool(v.get('s') or v.get('silent'))
        self.shuffle |= bool(v.get('shuffle'))
        if v.get('O'):
            self.output = 'group'
        if 'output' in v:
            self.output = v['output']
        if self.output not in ('', 'lines', 'group', 'plain'):
            raise Error('--output %s: must be lines, group or plain' % self.output, EXIT_USAGE)
        return self

    def export(self, env):
        for name, on in ((ENV_KEEP_GOING, self.keep_going), (ENV_DEBUG, self.debug),
                         (ENV_TRACE, self.xtrace > 1), (ENV_VERBOSE, self.verbose > 1),
                         (ENV_SILENT, self.silent), (ENV_SHUFFLE, self.shuffle)):
            if on:
                env[name] = '1'
            else:
                env.pop(name, None)


def _int_env(env, name, default):
    value = env.get(name, '')
    if not value:
        return default
    if name == ENV_JOBS:
        check_jobs({}, env)
    elif value.startswith('-') and value[1:].isascii() and value[1:].isdigit():
        raise Error('%s=%s: must be 0 or more' % (name, value), EXIT_USAGE)
    elif not (value.isascii() and value.isdigit()):    # as -j: no ' 2', no 1_0
        raise Error('%s=%s: not a number' % (name, value), EXIT_USAGE)
    digits = value.lstrip('0') or '0'     # int() refuses thousands of them
    n = int(digits) if len(digits) <= 9 else MAX_JOBS + 1
    if name == ENV_JOBS and n > MAX_JOBS:
        raise Error('%s=%s: at most %d' % (name, value, MAX_JOBS), EXIT_USAGE)
    return n


# =============================================================================
# §13 The loop: tasks, file descriptors, timers, signals, children
# =============================================================================
# Design note.  The loop owns the queue of tasks ready to run, the poll
# object and the handlers of the file descriptors it watches, the timers,
# the pipe signals arrive on (set_wakeup_fd: the handler does nothing, the
# byte is the news) and the running children (pid -> Job).  It calls
# nothing of the other parts but the functions the run connects.
#
# pump runs ready tasks until none is left, then calls idle() (the slots
# hand out what is free) and runs again while that wakes some.  A task
# that ends, by returning or by raising, goes to ended() first, whatever
# ended it: that is where its slot goes back.  An Error or OSError it
# raised then goes to failed(); anything else is a bug, and ends the run
# with a traceback.  The first SIGINT, SIGTERM or SIGHUP goes to
# interrupted(); the run then has the loop pass it on to the children and
# all they started (kill_children), SIGKILL what is left after a grace
# period (escalate), and waits until they are gone (quiet).

def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (state, parent,
    process group, ...), or None: no /proc, or no such process."""
    try:
        stat = read_bytes_or_none('/proc/%s/stat' % pid)
    except Error:                 # gone meanwhile, or not ours to read
        return None
    return stat[stat.rfind(b')') + 2:].split() if stat else None


def descendants(pids, group=None):
    """The processes descended from pids, and those in process group `group`
    (but this one), from /proc (nothing without it).  The group catches what
    a .do left running after it died: reparented away, but still there."""
    children = {}
    found = set()
    try:
        names = os.listdir('/proc')
    except OSError:
        return found
    me = os.getpid()
    for name in names:
        if not name.isdigit():
            continue
        fields = proc_stat(name)
        if not fields:
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        if group is not None and int(fields[2]) == group and pid != me:
            found.add(pid)
    todo = list(pids)
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def _note_signal(signum, frame):
    """A handler that does nothing: the wakeup fd carries the signal."""


class Loop:
    """Runs the tasks, and waits for what wakes them: file descriptors,
    timers, signals, the end of child processes."""

    def __init__(self):
        try:
            from _collections import deque    # without collections' imports
        except ImportError:
            from collections import deque
        self.ready = deque()      # (task, value): to run, value answering its yield
        # wake((task, value)): task runs next, its yield answered by value
        # (the deque's own append: the parts call it for every target).
        self.wake = self.ready.append
        self.children = {}        # pid -> Job, running
        self.timers = []          # heap of (when, id, task)
        self.fd_handlers = {}
        self.poller = None
        self.signal = 0           # the first signal that interrupted the run
        self.kill_at = 0.0
        self.doomed = set()       # children of .do scripts, when interrupted
        self.termed = False
        self.connect(None, None, None, None, None, None)

    def connect(self, ended, failed, wait, want_slot, idle, interrupted):
        """What the loop does not decide: ended(task) when a task ends,
        whatever ended it (its slot goes back there), then failed(task,
        error) when it raised one; wait(task, nodes) and want_slot(task,
        resuming) for a task that yields nodes, SLOT or RESUME; idle(),
        once no task can run, True if it woke some; interrupted(signum),
        at the first SIGINT, SIGTERM or SIGHUP."""
        self.ended = ended
        self.failed = failed
        self.wait = wait
        self.want_slot = want_slot
        self.idle = idle
        self.interrupted = interrupted

    def open(self):
        """The poll loop, and signals read from a pipe."""
        import select
        self.poller = select.poll()
        self.sig_r, sig_w = os.pipe()
        os.set_blocking(self.sig_r, False)
        os.set_blocking(sig_w, False)
        self.sig_w = sig_w
        self.watch(self.sig_r, self.on_signals)
        signal.set_wakeup_fd(sig_w)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _note_signal)

    def close(self):
        """False if it was not open."""
        if self.poller is None:
            return False
        # The signal handlers stay: Python may still deliver a signal that
        # the loop has already seen, and the process is about to exit.
        signal.set_wakeup_fd(-1)
        os.close(self.sig_r)
        os.close(self.sig_w)
        self.poller = None
        return True

    def watch(self, fd, handler):
        """handler(fd) is called when fd can be read."""
        import select
        self.fd_handlers[fd] = handler
        self.poller.register(fd, select.POLLIN)

    def unwatch(self, fd):
        """Stops watching fd (if it is watched)."""
        if self.fd_handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def watching(self, fd):
        return fd in self.fd_handlers

    def add_child(self, job):
        """job's process is running: its end wakes job.waiter."""
        self.children[job.pid] = job

    def running(self):
        """The Jobs whose processes are running."""
        return self.children.values()

    def timeout(self):
        """The time the next poll may wait, in ms (None: no limit).  Nothing
        to wait for, with no task to run, is a bug."""
        import time
        timeout = None
        if self.timers:
            timeout = max(0, int((self.timers[0][0] - time.time()) * 1000) + 1)
        if self.signal and self.kill_at:
            timeout = 100 if timeout is None else min(timeout, 100)
        if not self.children and timeout is None and not self.ready:
            raise AssertionError('nothing left to run, but the build is not done')
        return timeout

    def poll(self, timeout):
        try:
            events = self.poller.poll(timeout)
        except InterruptedError:
            return
        for fd, ev in events:
            handler = self.fd_handlers.get(fd)
            if handler is not None:
                handler(fd)

    def fire_timers(self):
        import heapq
        import time
        now = time.time()
        while self.timers and self.timers[0][0] <= now:
            self.ready.append((heapq.heappop(self.timers)[2], None))

    def pump(self):
        """Runs tasks until every one of them waits for something, then
        hands out the free slots, and again while that wakes tasks."""
        ready = self.ready
        while True:
            while ready:
                task, value = ready.popleft()
                try:
                    want = task.gen.send(value)
                except StopIteration:
                    self.ended(task)
                    continue
                except (Error, OSError) as e:
                    self.ended(task)
                    self.failed(task, e)
                    continue
                self.dispatch(task, want)
            if not self.idle():
                return

    def dispatch(self, task, want):
        if type(want) is list:
            self.wait(task, want)
        elif want is SLOT or want is RESUME:
            self.want_slot(task, want is RESUME)
        elif type(want) is Job:
            want.waiter = task
        elif want[0] == 'start':
            self.ready.append((task, None))
        elif want[0] == 'calls':
            want[1].calls_waiter = task
        else:
            import heapq
            import time
            heapq.heappush(self.timers, (time.time() + want[1], id(task), task))

    def on_signals(self, fd):
        try:
            data = os.read(fd, 512)
        except BlockingIOError:
            return
        # The interruption first: a .do it ended (Ctrl-C reaches them too),
        # reaped for the SIGCHLD of another read before it, was running.
        for signum in data:
            if signum != signal.SIGCHLD and not self.signal:
                self.signal = signum
                self.interrupted(signum)
        self.reap()

    def reap(self):
        import time
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.children.pop(pid, None)
            if job is None:
                continue
            job.ended = time.time()
            if os.WIFEXITED(status):
                job.status = os.WEXITSTATUS(status)
            else:
                job.status = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else 255
            self.ready.append((job.waiter, job.status))

    def signal_jobs(self, signum):
        """Sends signum to every running .do and to everything they started
        (found through /proc where there is one), which is remembered: a
        child run with `&` ignores SIGINT, and may outlive its .do."""
        pids = set(job.pid for job in self.children.values())
        # Leading our process group (a shell's job, a session of its own),
        # all of the group is ours to end.
        group = os.getpgrp() if os.getpgrp() == os.getpid() else None
        self.doomed |= descendants(pids | self.doomed, group)
        for pid in pids | self.doomed:
            try:
                os.kill(pid, signum)
            except OSError:
                pass

    def doomed_alive(self):
        """Forgets the remembered children that are gone; True if any is left.
        A zombie is gone: one whose parent died waits for init to reap it,
        which some inits do only now and then."""
        for pid in list(self.doomed):
            try:
                os.kill(pid, 0)
            except OSError:
                self.doomed.discard(pid)
                continue
            fields = proc_stat(pid)
            if fields and fields[0] == b'Z':
                self.doomed.discard(pid)
        return bool(self.doomed)

    def quiet(self):
        """Interrupted: whether every child is gone, and all they left."""
        return not self.children and not self.doomed_alive()

    def kill_children(self, signum):
        """Passes signum on to the children, and SIGKILL after a grace
        period (escalate)."""
        import time
        self.signal_jobs(signum)
        self.kill_at = time.time() + 1.5

    def escalate(self):
        import time
        if self.kill_at and time.time() >= self.kill_at:
            self.signal_jobs(signal.SIGKILL)
            self.kill_at = 0.0
            self.doomed.clear()           # killed: nothing more to wait for
        elif not self.children and self.doomed and self.kill_at:
            # The .do scripts are gone; what they left gets TERM first.
            if not self.termed:
                self.termed = True
                for pid in self.doomed:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except OSError:
                        pass
        self.reap()


# =============================================================================
# §14 Slots: who may run a .do now
# =============================================================================
# Design note.  At most N .do scripts run at once: each in a slot, the
# implicit one of this process or a jobserver token (§10).  Slots owns the
# JobServer (from the first .do on: a build with nothing to do makes
# none), the tasks waiting for a slot, and the numbers of the slots in use
# (the rows of redo-log --trace).  It calls the loop (to wake tasks, to
# watch the jobserver pipe while tasks wait) and the filter the builder
# gave it (set_filter).
#
# Who holds a slot when.  A task that holds one has has_slot set.  A slot
# goes back in one place, Slots.release, which the loop calls whenever a
# task ends, normally or by an exception, so that no slot is ever lost;
# the builder calls it too where a task gives its slot back early.  A
# .do's slot is held by its node's build task (Builder.t_build), from its
# SLOT until its .do has ended (with -j2 and more, before it is committed:
# the slot starts the next .do meanwhile); while one of the .do's requests
# waits for targets, the slot is given back, and it is taken again, by a
# RESUME made for the build task (Task.owner), only when none waits any
# more (requests in parallel from one .do share that one slot).  Slots are
# handed out when no task can run: a .do waiting to resume goes before a
# new one, and new ones go deepest first.  A call with -jN, and those its
# .do files make, bring their targets up to date N at a time (batches): a
# limit of their own, on top of the run's slots.  Once the run is
# interrupted, no new .do gets a slot (stop).

class Slots:
    """The slots of one run: the implicit one, then jobserver tokens.  Tasks
    of waiting .do scripts get them first; then new .do scripts, deepest
    first (what a waiting script needs before its siblings), in the order
    asked among equals."""

    def __init__(self, loop):
        self.loop = loop
        self.wake = loop.wake
        self.filter = None        # see set_filter
        self.jobserver = None     # the JobServer, from the first .do on (open)
        self.free = 1             # the implicit slot
        self.resume = []          # tasks of waiting .do scripts
        self.start = []           # heap of (-depth, seq, task) to start a .do
        self.seq = 0
        self.stopping = False     # interrupted: no slot for a new .do
        self.ids = []             # free slot numbers, for the trace
        self.count = 0

    def set_filter(self, filter):
        """filter() is None, or a function wanted(node): whether a .do about
        to start for node is still wanted (see grants)."""
        self.filter = filter

    def open(self, jobserver):
        """Slots are handed out from now on: the implicit one, then
        jobserver's tokens."""
        self.jobserver = jobserver

    def close(self):
        if self.jobserver is not None:
            self.jobserver.close()

    def stop(self):
        """Interrupted: the tasks waiting to start a .do get False."""
        self.stopping = True
        self.hand_out_slots()

    def next_start(self):
        """The task that the next free slot starts a .do for, or None."""
        return self.start[0][2] if self.start else None

    def want(self, task, resuming):
        import heapq
        if resuming:
            self.resume.append(task)
        else:
            self.seq += 1
            heapq.heappush(self.start, (-task.node.depth, self.seq, task))

    def waiting(self):
        return bool(self.resume or self.start)

    def give_back(self):
        if self.jobserver.held and not self.waiting():
            self.jobserver.give()
        else:
            self.free += 1

    def grants(self, wanted=None):
        """Yields (task, True) for the tasks that get a slot now, and
        (task, False) for those about to start a .do whose node is no longer
        wanted (wanted(node) is false)."""
        import heapq
        while self.resume or self.start:
            if not self.resume and wanted is not None and not wanted(self.start[0][2].node):
                yield heapq.heappop(self.start)[2], False
                continue
            if self.free > 0:
                self.free -= 1
            elif not self.jobserver.take():
                return
            yield (self.resume.pop(0) if self.resume else heapq.heappop(self.start)[2]), True

    def drain(self):
        """Yields the tasks waiting to start a .do (when the build stops)."""
        waiting, self.start = self.start, []
        return [t for d, s, t in sorted(waiting)]

    def hand_out_slots(self):
        """Gives the free slots to the tasks that want one (a task whose
        target no call wants any more gets False); True if any task was
        woken."""
        if self.jobserver is None:
            return False
        woke = False
        if self.stopping:
            for t in self.drain():
                self.wake((t, False))
                woke = True
        wanted = self.filter()
        for t, granted in self.grants(wanted):
            if granted:
                holder = t.owner or t
                if holder.has_slot:       # two requests resumed one .do
                    self.give_back()
                holder.has_slot = True
            self.wake((t, granted))
            woke = True
        self.watch_tokens()
        return woke

    def release(self, task):
        """The one place a slot goes back (see the design note)."""
        if task.has_slot:
            task.has_slot = False
            self.give_back()

    def watch_tokens(self):
        """Polls the jobserver pipe while tasks wait for a slot."""
        fd = self.jobserver.read_fd
        want = self.waiting() and not self.stopping
        if want and not self.loop.watching(fd):
            self.loop.watch(fd, lambda fd: self.hand_out_slots())
        elif not want and self.loop.watching(fd):
            self.loop.unwatch(fd)

    # -- slot numbers (the rows of the trace) -----------------------------------

    def begin_segment(self, job):
        """job's .do holds a slot from now: the lowest free slot number
        (the rows of the trace, redo-log --trace)."""
        import heapq
        import time
        if self.ids:
            job.slot = heapq.heappop(self.ids)
        else:
            self.count += 1
            job.slot = self.count
        job.seg_start = time.time() if job.ran or job.slot_started else job.started
        job.slot_started = True

    def end_segment(self, job):
        """job's .do gives its slot back (waits, or ended)."""
        import heapq
        import time
        if job.slot:
            job.ran.append((job.seg_start, job.ended or time.time(), job.slot))
            heapq.heappush(self.ids, job.slot)
            job.slot = 0

    @staticmethod
    def batches(limit, nodes):
        """nodes in groups of at most limit (0: no limit), a call's -j:
        each group is brought up to date before the next starts."""
        step = limit or len(nodes) or 1
        for i in range(0, len(nodes), step):
            yield nodes[i:i + step]


# =============================================================================
# §15 The builder: is it up to date? lock, run, commit or fail
# =============================================================================
# Design note.  The builder brings the targets of calls up to date.  Each
# node a call or a .do waits for gets a task, t_update, which checks it
# (t_check, t_why: its dependencies first, in the order its .do asked for
# them) and, if it is out of date, takes a slot and its lock (t_lock), runs
# its .do (t_build) and commits the result or the failure (commit, fail).
# The builder owns the jobs running and the shell started ahead, the count
# of calls stopped by a failure, and the state files not yet fsynced; Locks
# owns the locks.  It calls the graph, the loop, the slots and Locks.
#
# Invariants.  A node is started once (started), then finished once, by
# finish (done, ok), which wakes the tasks waiting for it; reset and cancel
# send it back to be checked again.  Its .do runs only while its task holds
# a slot and its lock (so no other process builds it meanwhile), and is
# committed only once the requests it left have been answered.  Its state
# file is written only under its lock: by commit (after a success: the new
# state first, whose Previous names the old target, then the output put in
# its place, so that an interruption in between reads as "interrupted",
# rebuild), by fail, or by refresh_record (fingerprints refreshed by a
# check, unless another run built it meanwhile).  An interrupted run
# commits nothing.

def find_cycle(me, start):
    """The path me -> start -> ... -> me if start waits, through any
    chain, for me; else None."""
    if me is None:
        return None
    parent = {start.path: None}
    stack = [start]
    while stack:
        x = stack.pop()
        if x is me:
            path = []
            while x is not None:
                path.append(x)
                x = parent[x.path]
            return [me] + path[::-1]
        for t in x.waiting:
            for m in t.nodes:
                if not m.done and m.path not in parent:
                    parent[m.path] = x
                    stack.append(m)
    return None


def ancestry(n):
    """The paths from a target named on the command line down to n."""
    chain = []
    x = n
    while x is not None and len(chain) < 1000:
        chain.append(x.path)
        x = x.parent
    return chain[::-1]


# Design note: cycles between processes.  Two independent runs can each
# hold the lock of a target whose .do waits for the other's: x (run A)
# needs y, y (run B) needs x.  Each run writes into the lock file of every
# target it is building the paths that target now waits for.  A run that
# finds a lock taken follows those paths from lock file to lock file; if
# they lead to a target it holds itself and that (in its own graph) waits
# for the locked one, it is a cycle: reported, never waited on forever.

class Locks:
    """The locks of the targets this run builds, against other redo
    processes, and the cycles through them (see the design note)."""

    def __init__(self, graph, env):
        self.graph = graph
        self.env = env
        self.held = {}            # path -> [fd, waits published]
        self.ancestor_targets = UNKNOWN   # see parent_targets

    def take(self, n):
        """Locks n against other redo processes; False if one holds it."""
        self.graph.make_dirs(os.path.join(os.path.dirname(n.path), STATE_DIR))
        fd = try_lock(state_file(n.path, LOCK_SUFFIX), make_dir=True)
        if fd is None:
            return False
        os.ftruncate(fd, 0)       # what a killed holder published is stale
        self.held[n.path] = [fd, b'']    # and what it publishes (waits)
        return True

    def drop(self, n):
        lock = self.held.pop(n.path, None)
        if lock is not None:
            os.close(lock[0])

    def publish_waits(self, n):
        lock = self.held.get(n.path)
        if lock is None:
            return
        paths = [m.path for t in n.waiting for m in t.nodes if not m.done]
        data = b'\0'.join(os.fsencode(p) for p in paths)
        if data == lock[1]:
            return
        lock[1] = data
        try:
            os.pwrite(lock[0], data, 0)
            os.ftruncate(lock[0], len(data))
        except OSError:
            pass

    def foreign_cycle(self, n):
        """The cycle through other processes' locks that n's lock closes,
        as a list of paths, or None.  It closes at a lock of this run, or
        at REDO_TARGET, whose .do started this run apart from its own
        (see ancestor_cycle)."""
        parents = self.parent_targets()
        seen = set()
        frontier = [(n.path, [n.path])]
        while frontier and len(seen) < 10000:
            path, chain = frontier.pop()
            data = read_bytes_or_none(state_file(path, LOCK_SUFFIX)) or b''
            for p in (os.fsdecode(x) for x in data.split(b'\0') if x):
                if p in seen:
                    continue
                seen.add(p)
                if p in parents and p not in self.held and self.built_above_me(p):
                    return [p] + ancestry(n) + chain[1:] + [p]
                m = self.graph.find(p)
                if m is not None and p in self.held:
                    inner = find_cycle(n, m)
                    if inner:
                        return chain + [p] + [x.path for x in inner[2:]]
                else:
                    frontier.append((p, chain + [p]))
        return None

    def ancestor_cycle(self, n):
        """A redo started apart by a .do (not through the running build)
        still has that .do's target in REDO_TARGET: that target cannot be
        done before this run is, so waiting for its lock is a cycle."""
        if n.path not in self.parent_targets() or not self.built_above_me(n.path):
            return None
        return [n.path] + ancestry(n)

    def parent_targets(self):
        """The targets whose .do files this redo was started under: its
        REDO_TARGET, and, where a .do cleared redo's variables (`env -i`,
        sudo; a redo started so by another such redo), those of every
        ancestor process that has one (from /proc/PID/environ)."""
        if self.ancestor_targets is UNKNOWN:
            found = set()
            if self.env.get(ENV_TARGET):
                found.add(self.env[ENV_TARGET])
            pid = os.getppid()
            key = ENV_TARGET.encode() + b'='
            for _ in range(1000):
                try:
                    data = read_bytes_or_none('/proc/%d/environ' % pid)
                except Error:
                    data = None
                for var in (data or b'').split(b'\0'):
                    if var.startswith(key):
                        found.add(os.fsdecode(var[len(key):]))
                fields = proc_stat(pid) if pid > 1 else None
                if not fields:
                    break
                pid = int(fields[1])
            self.ancestor_targets = found
        return self.ancestor_targets

    def built_above_me(self, path):
        """Whether the process that holds path's lock is an ancestor of this
        one: REDO_TARGET is really being built by the run whose .do started
        this one, not a stale value (a daemon that a .do once started).
        From /proc/locks; where there is none, True."""
        try:
            st = os.stat(state_file(path, LOCK_SUFFIX))
            data = read_bytes_or_none('/proc/locks')
        except (OSError, Error):
            return True
        if data is None:
            return True
        key = ('%02x:%02x:%d' % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)).encode()
        holders = {f[4] for f in (line.split() for line in data.split(b'\n'))
                   if len(f) > 5 and f[1] == b'FLOCK' and f[5] == key}
        pid = os.getppid()
        for _ in range(1000):
            if str(pid).encode() in holders:
                return True
            fields = proc_stat(pid) if pid > 1 else None
            if not fields:
                return False
            pid = int(fields[1])
        return False


class Builder:
    """Brings targets up to date for the calls: checks them, locks them,
    runs their .do files and commits the result or the failure."""

    def __init__(self, graph, loop, slots, locks, term, sync):
        import time
        self.graph = graph
        self.loop = loop
        self.wake = loop.wake
        self.slots = slots
        self.locks = locks
        self.term = term
        self.jobs_by_id = {}
        self.live = {}            # job id -> Job, from go to commit
        self.ahead = None         # the Job started ahead (start_ahead)
        self.ahead_ok = False     # start the next shell ahead (not under make)
        self.next_job = 1
        self.stopping = False     # interrupted: start nothing new
        self.signal = 0
        self.calls_stopped = 0    # calls stopped by a failure, still waiting
        self.run_id = '%d.%d' % (time.time_ns(), os.getpid())
        # State files written and not yet fsynced: done in batches (see
        # fsync_all), at least every SYNC_EVERY seconds and at the end.
        self.unsynced = [] if sync else None
        self.synced_at = time.time()
        self.dir = None           # where jobs talk to the server (open)
        self.sequential = False   # -j1: one thing at a time, in order
        self.output = 'plain'     # how .do files' stderr is shown (Job.show)
        self.logs = True

    def open(self, d, sequential, ahead_ok, output, logs):
        """.do files can run from now on, their requests in d."""
        self.dir = d
        self.sequential = sequential
        self.ahead_ok = ahead_ok
        self.output = output
        self.logs = logs

    def close(self):
        """Drops the jobs still running (interrupted), and their files."""
        for job in list(self.live.values()):
            job.close()
            job.remove_temporaries()
        if self.ahead is not None:
            self.ahead.close()
            self.ahead = None

    def stop(self, signum):
        """Interrupted: nothing new starts, nothing more is committed."""
        self.signal = signum
        self.stopping = True

    def look_ahead(self):
        """Between two turns of the loop: a shell started ahead, if it helps."""
        if self.ahead_ok and self.ahead is None:
            self.start_ahead()

    def sync_if_due(self):
        import time
        if self.unsynced and time.time() - self.synced_at > SYNC_EVERY:
            fsync_all(self.unsynced)
            self.synced_at = time.time()

    def sync(self):
        if self.unsynced:
            fsync_all(self.unsynced)

    # -- the calls' targets: waits, failures, cycles ---------------------------

    def t_call(self, task, job, call, nodes, forced):
        """Brings nodes up to date for one call, at most call.limit of them
        at once; True if all of them are.  For job's .do, if there is one."""
        if call.opts.shuffle:
            import random
            random.shuffle(nodes)
        ok = True
        for part in Slots.batches(call.limit, nodes):
            if not ok and not call.opts.keep_going:
                break
            ok = (yield from self.t_wait(task, job, part, forced, call)) and ok
            ok = ok and not call.stopped
        return ok

    def t_wait(self, task, job, nodes, forced, call):
        if forced:
            # `redo` builds again what this run has built (SPEC §2); one
            # being built is waited for first (another call's `redo` of
            # it too: each call gets a build of its own).
            while True:
                busy = [n for n in nodes if n.started and not n.done]
                if not busy:
                    break
                got = yield from self.t_wait_released(task, job, busy)
                if type(got) is list:
                    return self.say_cycle(call, got)
            for n in nodes:
                if n.done:
                    self.reset(n)
                n.forced = True
        for n in nodes:
            if not n.started:
                self.start_node(n, call, True)
        # Let them run, and keep the slot if that was enough (sources,
        # targets up to date): a .do that asks for files does not let
        # another start.
        yield START
        if all(n.done for n in nodes):
            return all(n.ok for n in nodes)
        got = yield from self.t_wait_released(task, job, nodes)
        if type(got) is list:
            return self.say_cycle(call, got)
        return got

    def t_wait_released(self, task, job, nodes):
        """Waits for nodes; job's .do, if any, gives its slot back meanwhile
        and takes one again once none of its requests waits any more."""
        if job is None:
            return (yield nodes)
        job.waiting += 1
        if job.task.has_slot:
            self.slots.end_segment(job)
        self.slots.release(job.task)
        try:
            got = yield nodes
        finally:
            job.waiting -= 1
        if not job.waiting and job.status is None and not job.task.has_slot:
            yield RESUME
            if job.waiting or job.status is not None:
                self.slots.release(job.task)    # it is waiting again, or gone
            else:
                self.slots.begin_segment(job)
        return got

    def say_cycle(self, call, cycle):
        call.term.error('dependency cycle: %s' % ' -> '.join(quote(self.graph.rel(x.path)) for x in cycle))
        return False

    def end_call(self, call):
        """call, stopped by a failure or not, waits no more."""
        if call.stopped:
            self.calls_stopped -= 1

    def wait_nodes(self, task, nodes):
        pending = []
        failed = False
        for n in nodes:
            if not n.done:
                if not n.started:
                    self.start_node(n, task.call or task.node.call)
                pending.append(n)
            elif not n.ok:
                failed = True
        me = task.node
        for n in pending:
            cycle = find_cycle(me, n)
            if cycle:
                self.wake((task, cycle))
                return
        if not pending:
            self.wake((task, all(n.ok for n in nodes)))
            return
        task.nodes = nodes
        task.count = len(pending)
        task.failed = failed
        for n in pending:
            if n.waiters is None:
                n.waiters = []
            n.waiters.append(task)
        if me is not None:
            me.waiting += (task,)
            self.locks.publish_waits(me)

    def start_node(self, n, call, direct=False):
        n.started = True
        n.call = call
        n.direct = direct
        task = Task(None, n)
        task.gen = self.t_update(n, task)
        self.wake((task, None))

    def finish(self, n, ok):
        if self.ahead is not None and self.ahead.node is n:
            self.ahead.close()
            self.ahead = None
        n.done = True
        n.ok = ok
        n.forced = False
        waiters, n.waiters = n.waiters or (), None
        for t in waiters:
            c = t.call
            if not ok and c is not None and not c.stopped and not c.opts.keep_going:
                c.stopped = True
                self.calls_stopped += 1
            t.count -= 1
            t.failed = t.failed or not ok
            if t.count == 0:
                if t.node is not None:
                    t.node.waiting = tuple(x for x in t.node.waiting if x is not t)
                    self.locks.publish_waits(t.node)
                self.wake((t, not t.failed))

    def cancel(self, n):
        """n's .do is not to start (its calls stopped, or the run was
        interrupted): its waiters see a failure, and a later request checks
        it anew."""
        self.finish(n, False)
        n.done = n.started = False
        n.ok = None

    def reset(self, n):
        """n, done in this run, is to be checked (and maybe built) again."""
        self.graph.take_back()
        n.done = n.started = False
        n.ok = None
        n.fp = None
        n.mode = UNKNOWN

    def wanted(self, n):
        """Whether a call that has not stopped waits for n, through any
        chain of targets waiting for their dependencies."""
        seen = {n.path}
        todo = [n]
        while todo:
            for t in todo.pop().waiters or ():
                if t.call is not None:
                    if not t.call.stopped:
                        return True
                elif t.node is not None and t.node.path not in seen:
                    seen.add(t.node.path)
                    todo.append(t.node)
        return False

    def slot_filter(self):
        """For Slots.hand_out_slots: wanted, while a call is stopped."""
        return self.wanted if self.calls_stopped else None

    def task_failed(self, task, e):
        """An error inside redo fails the target it concerns, as a failed
        .do would (SPEC §5): said, and the run goes on."""
        if isinstance(e, OSError):
            e = os_error(e)
        n = task.node
        if task.call is None and n is not None and not n.done:
            n.call.term.error('%s: %s%s' % (quote(self.graph.rel(n.path)), e, self.chain_text(n)))
            self.finish(n, False)
        else:
            self.term.error(str(e))

    # -- is it up to date? -----------------------------------------------------

    def t_update(self, n, task):
        """The task of node n: check it, build it if it is out of date."""
        while True:
            rec, reason = yield from self.t_check(n)
            if reason is None:
                return                # finished: up to date, a source, or said why not
            if STATE_DIR in n.path.rsplit('/', 2)[1:]:
                n.call.term.error('%s: redo keeps its state there, it cannot be built%s'
                                  % (quote(self.graph.rel(n.path)), self.chain_text(n)))
                self.finish(n, False)
                return
            if self.stopping or not (yield SLOT):
                self.cancel(n)
                return
            locked = yield from self.t_lock(n, task, rec)
            if locked is None:
                return
            if locked:
                break
        try:
            ok = yield from self.t_build(n, task)
        finally:
            self.locks.drop(n)
        self.finish(n, ok)

    def t_check(self, n):
        """(n's state, why n is out of date); the reason is None once n is
        finished: up to date, a source, or an error said."""
        term = n.call.term
        rec = self.graph.record(n)
        if rec is None:
            if self.graph.stat(n)[0] is not None:
                if n.forced and n.top:
                    term.warn('%s exists and was not built by redo: not redoing it'
                              % quote(self.graph.rel(n.path)))
                self.finish(n, True)
            elif self.graph.find_do(n.path) is None:
                term.error('%s: no .do file to build it, and it does not exist%s'
                           % (quote(self.graph.rel(n.path)), self.chain_text(n)))
                self.finish(n, False)
            else:
                return rec, self.out_of_date(n, 'it was never built')
            return rec, None
        reason = yield from self.t_why(n, rec)
        if reason is MODIFIED:
            what = '%s was modified outside redo' % quote(self.graph.rel(n.path))
            if n.call.opts.stop_if_modified:
                term.error(what + ' (REDO_STOP_IF_MODIFIED is set)')
                self.finish(n, False)
            else:
                term.warn(what + ': leaving it alone, it is a source from now on'
                          ' (delete it to have redo build it again)')
                self.finish(n, True)
        elif reason is NO_DO and self.graph.stat(n)[0] is not None:
            self.become_source(n)
        elif reason is None:
            if rec.changed:
                self.refresh_record(n, rec)
            else:
                rec.checked()
            if n.call.opts.debug:
                self.debug(n, 'up to date')
            self.finish(n, True)
        else:
            return rec, self.out_of_date(n, reason)
        return rec, None

    def out_of_date(self, n, reason):
        if n.call.opts.debug:
            self.debug(n, 'out of date: ' + reason)
        return reason

    def t_why(self, n, rec):
        """Why n, which has state rec, is out of date, or None; checking its
        dependencies in the order its .do asked for them (SPEC §4): a target
        among them is brought up to date first, and the first change ends
        the check, so that what the .do no longer asks for is never built."""
        reason = self.graph.why_head(n, rec)
        if reason is not None:
            return reason
        d = n.path.rpartition('/')[0] or '/'
        for dep in rec.deps:
            dn = self.graph.node(abs_path(d, dep.name))
            if dep.kind == 'Ifcreate':
                if self.graph.look(dn)[0] is not None:
                    return '%s exists now' % quote(self.graph.rel(dn.path))
                continue
            if dn.started and not dn.done and not self.graph.is_target(dn):
                # Being checked for another call (the same one, at -j2): it
                # may be a source, which its content decides; wait and see.
                self.adopt(n, dn)
                if type((yield [dn])) is list:
                    return 'its dependencies form a cycle'
            if (dn.done or not dn.started) and not self.graph.is_target(dn):
                # A source (a missing one that failed for another target
                # too): its content decides, not that failure.
                ident, refreshed = self.graph.now(dn, dep)
                if ident == ABSENT and self.graph.find_do(dn.path) is not None:
                    pass                  # gone, or never built: build it
                elif ident == dep.ident:
                    rec.changed |= refreshed
                    continue
                else:
                    return '%s changed' % quote(self.graph.rel(dn.path))
            if not dn.done:
                self.adopt(n, dn)
                if not dn.started:        # mostly up to date: let it finish
                    self.start_node(dn, n.call)
                    yield START
                if not dn.done and type((yield [dn])) is list:
                    return 'its dependencies form a cycle'
            if not dn.ok:
                return '%s failed' % quote(self.graph.rel(dn.path))
            ident, refreshed = self.graph.now(dn, dep)
            if ident != dep.ident:
                return '%s changed' % quote(self.graph.rel(dn.path))
            rec.changed |= refreshed
        return None

    def become_source(self, n):
        """n was built, but no .do can build it now, and its file is there:
        a source from now on (SPEC §3); its state goes."""
        if n.call.opts.debug:
            self.debug(n, 'no .do file builds it any more: a source from now on')
        for suffix in (STATE_SUFFIX, LOG_SUFFIX):
            try:
                unlink_quiet(state_file(n.path, suffix))
            except OSError:
                pass
        self.graph.forget_listing(n.path.rpartition('/')[0] or '/')
        self.graph.mark_modified(n.path)
        n.rec = None
        self.finish(n, True)

    def refresh_record(self, n, rec):
        """Writes the fingerprints refreshed while checking n, unless another
        run is building n or has built it since (its state would be lost).
        Best-effort (SPEC §4): where the state cannot be written (a
        read-only tree), the check still succeeds."""
        try:
            if not self.locks.take(n):
                return
        except Error:
            return
        try:
            fresh = read_record(n.path)
            if fresh is not None and fresh.build == rec.build:
                write_record(n.path, rec, self.unsynced)
                self.graph.note_written(n.path, rec)
        except Error:
            pass
        finally:
            self.locks.drop(n)

    def forget(self, n):
        """Drops what was read of n's state, to read it again."""
        self.graph.take_back()
        n.rec = UNKNOWN
        n.fp = None
        n.mode = UNKNOWN
        self.graph.forget_listing(os.path.dirname(n.path))

    def adopt(self, parent, n):
        if n.parent is None and not n.top:
            n.parent = parent
            n.depth = parent.depth + 1

    def debug(self, n, text):
        (n.call.term if n.call is not None else self.term).line(
            'redo: debug: %s: %s' % (quote(self.graph.rel(n.path)), text))

    def chain_text(self, n):
        chain = []
        x = n.parent
        while x is not None and len(chain) < 1000:
            chain.append(quote(self.graph.rel(x.path)))
            x = x.parent
        if not chain:
            return ''
        return ' (needed by %s)' % ' -> '.join(chain[::-1])

    # -- lock, run -------------------------------------------------------------

    def t_lock(self, n, task, rec):
        """Takes n's lock against other redo processes: True once held (and
        n's state is still rec), False to check n again, None if n is
        finished (a cycle through other runs, said)."""
        if self.locks.take(n):
            # Another run may have built n since it was checked: if its
            # state moved, check again (now holding the lock).
            fresh = read_record(n.path)
            if (fresh and fresh.build) == (rec and rec.build):
                return True
            self.locks.drop(n)
            self.slots.release(task)
            self.forget(n)
            return False
        cycle = self.locks.foreign_cycle(n) or self.locks.ancestor_cycle(n)
        if cycle:
            n.call.term.error('dependency cycle: %s'
                              % ' -> '.join(quote(self.graph.rel(p)) for p in cycle))
            self.finish(n, False)
            return None
        self.slots.release(task)
        yield ('sleep', 0.05)
        self.forget(n)
        return False

    def start_ahead(self):
        """Starts the shell of the .do that gets the next free slot, to wait
        for it (see WRAP_GATE): its start then costs no time between one
        .do and the next, and fills a CPU that waits for the coordinator."""
        task = self.slots.next_start()
        if task is None or self.stopping or self.signal:
            return
        n = task.node
        do = self.graph.find_do(n.path)
        if do is not None:
            try:
                self.ahead = self.new_job(n, do, False)
            except (Error, OSError):
                pass              # said when its slot comes, by t_build

    def take_ahead(self, n, do):
        """The Job started ahead for n, if it runs do; else None."""
        job = None
        if self.ahead is not None and self.ahead.node is n:
            job, self.ahead = self.ahead, None
            if do is None or job.do.path != do.path:
                job.close()
                job = None
        return job

    def new_job(self, n, do, go):
        """A Job for n, its shell started (see Job.spawn)."""
        job = Job(self.graph, n, do, self.next_job, self.dir, self.output, self.logs)
        self.next_job += 1
        o = n.call.opts
        try:
            job.spawn(n.call.env, o.xtrace > 1 or (o.xtrace and n.direct),
                      o.verbose > 1 or (o.verbose and n.direct), go)
        except (Error, OSError):
            job.close()
            raise
        return job

    def t_build(self, n, task):
        """Runs n's .do in the slot task holds; returns True if it succeeded."""
        do = self.graph.find_do(n.path)
        job = self.take_ahead(n, do)
        if do is None:
            n.call.term.error('%s: no .do file to build it%s' % (quote(self.graph.rel(n.path)), self.chain_text(n)))
            return False
        dn = self.graph.node(do.path)
        ident, _ = self.graph.now(dn)
        self.show_start(n)
        if job is not None:
            try:
                job.go()
            except OSError:       # its shell died waiting (EPIPE): start another
                job.close()
                job = None
        if job is None:
            job = self.new_job(n, do, True)
        job.task = task
        self.slots.begin_segment(job)
        job.first_slot = job.slot
        job.add_dep(Dep('Dep', rel_path(do.path, os.path.dirname(n.path)), dn.fp or ABSENT, ident))
        self.loop.add_child(job)
        self.jobs_by_id[job.id] = job
        self.live[job.id] = job
        if job.err_fd is not None:
            fd = job.err_fd
            self.loop.watch(fd, lambda fd: job.read_stderr() or self.loop.unwatch(fd))
        status = yield job
        while job.calls:          # it left requests running: they end first
            yield ('calls', job)
        self.slots.end_segment(job)
        self.loop.unwatch(job.err_fd)
        job.close()
        problem = self.problem(n, job, status)
        if problem is None and task.has_slot and not self.sequential:
            # It succeeded: its slot starts the next .do (that task runs
            # first) while this one is committed.  -j1 keeps the order:
            # commit, then the parent resumes (slots are handed out once
            # it has asked for one), then a new .do starts.
            self.slots.release(task)
            self.slots.hand_out_slots()
            yield START
        del self.jobs_by_id[job.id]
        del self.live[job.id]
        return self.commit(n, job, status, problem)

    def show_start(self, n):
        if n.call.opts.silent:
            return
        t = n.call.term
        t.line('%s %s%s' % (t.paint(t.GREEN, 'redo'), '  ' * n.depth + ' ',
                            t.paint(t.BOLD, self.graph.rel(n.path))), n.path)

    def job(self, jobid):
        """The Job of that id, from its start to its end, or None."""
        return self.jobs_by_id.get(jobid)

    def was_started(self, jobid):
        return 0 < jobid < self.next_job

    def record_deps(self, job, nodes):
        """The dependencies a redo-ifchange of job's .do named (failed ones
        too: redo-log -r shows them).  A source changed since the .do
        started is recorded as unknown: what it read is unknown (SPEC §4);
        a target that failed, as one that changes when it builds again."""
        d = os.path.dirname(job.node.path)
        since = int(job.started * 1e9)
        for n in nodes:
            fp, ident = self.dep_now(n)
            if fp != ABSENT and n.rec is None and _fp_ctime(fp) >= since:
                if self.built_elsewhere(n):
                    fp, ident = self.dep_now(n)
                else:
                    fp, ident = ABSENT, '?'
            elif not n.ok and (n.rec is not None or self.graph.find_do(n.path) is not None):
                fp, ident = ABSENT, '!'   # a target that failed (or never ran)
            job.add_dep(Dep('Dep', rel_path(n.path, d), fp, ident))

    def dep_now(self, n):
        """(fingerprint, identity) of n, as a dependency records them."""
        ident, _ = self.graph.now(n)
        return (n.fp if (n.fp is not None and not ident.startswith(('s:', 'v:'))) else ABSENT), ident

    def built_elsewhere(self, n):
        """Whether n, taken for a source that changed while a .do ran, is a
        target that another run built meanwhile (this run's listing of its
        state directory predates it): its state is then read, and it
        counts as the target it is."""
        if lstat_or_none(state_file(n.path, STATE_SUFFIX)) is None:
            return False
        self.forget(n)
        return self.graph.record(n) is not None

    # -- commit or fail --------------------------------------------------------

    def problem(self, n, job, status):
        """What makes the ended job a failure, or None."""
        do_name = quote(self.graph.rel(job.do.path))
        if status != 0:
            return ('%s exited with status %d' % (do_name, status) if status > 0 else
                    '%s was killed by signal %d' % (do_name, -status))
        n.mode = UNKNOWN                      # what is there now (for commit too)
        n.fp = None
        mode, fp = self.graph.stat(n)
        if fp.partition('@')[0].partition('>')[0] != job.before:   # a symlink's pointee may change
            if mode is None or mode & 0o170000 != 0o040000 \
                    or not (job.before == ABSENT or _fp_is_dir(job.before)):
                return '%s wrote to $1 itself; it should write to $3 or to stdout' % do_name
            job.in_place = True               # mkdir "$1": accepted
        has_out = bool(job.out_size())
        has3 = lstat_or_none(job.tmp3) is not None
        if has_out and has3:
            return '%s wrote to both $3 and stdout' % do_name
        if job.in_place and (has_out or has3):
            return '%s made $1 a directory and wrote to %s too' % (do_name, '$3' if has3 else 'stdout')
        return None

    def commit(self, n, job, status, problem):
        """After the .do ended: puts its output in place and writes the state,
        in this order, so that an interruption anywhere leaves either the old
        target and state, or a state whose Previous matches the old target
        (which reads as "interrupted": rebuild), or the new pair."""
        import time
        seconds = job.ended - job.started
        job.dep_names = set()     # room for writing the state
        if self.signal:
            job.remove_temporaries()
            return False
        old = self.graph.record(n)
        if problem:
            return self.fail(n, job, status, seconds, old, problem)
        if not job.in_place and self.edited_meanwhile(n, old):
            job.remove_temporaries()
            return self.keep_hand_edit(n)
        st3 = lstat_or_none(job.tmp3)
        src = job.tmp3 if st3 is not None else (job.out if job.out_size() else None)
        rec = Record(os.path.basename(n.path))
        rec.build = '%d.%d.%d' % (time.time_ns(), os.getpid(), job.id)
        if job.in_place:
            st = lstat_or_none(n.path)
            rec.output = (fingerprint(st, n.path), identity(n.path, st.st_mode))
        elif src is not None:
            st = st3 if src == job.tmp3 else lstat_or_none(src)
            if st is None:            # .redo/out removed under it
                return self.fail(n, job, status, seconds, old,
                                 'its output was removed before redo could put it in place')
            rec.output = (fingerprint_sans_ctime(fingerprint(st, src)), identity(src, st.st_mode))
        rec.previous = ABSENT if job.in_place else self.previous_of(n, old)
        rec.stamp = job.stamp
        rec.always = job.always
        rec.do = rel_path(job.do.path, os.path.dirname(n.path))
        rec.deps = job.deps
        self.stamp_run(rec, job, 0, seconds)
        problem = self.put_in_place(n, job, rec, src)
        if problem is not None:
            # The old target stays: so do its output and identity.
            return self.fail(n, job, status, seconds, old, problem)
        job.publish_log()
        job.remove_temporaries()
        n.rec = rec
        n.fp = None
        n.mode = UNKNOWN
        return True

    def put_in_place(self, n, job, rec, src):
        """Writes rec, n's new state, then puts src (the .do's output; None:
        it made none) in n's place.  Returns what kept the output from its
        place, or None; raises an Error if the state cannot be written (the
        old target and state stay)."""
        try:
            write_record(n.path, rec, self.unsynced)
        except Error:
            job.remove_temporaries()      # the old target and state stay
            raise
        self.graph.note_written(n.path, rec)
        try:
            if job.in_place:
                pass
            elif src is not None:
                replace_path(src, n.path)
            elif exists(n.path):
                unlink_quiet(n.path)
        except (Error, OSError) as e:
            return str(e)
        return None

    def edited_meanwhile(self, n, old):
        """Whether the target file was changed by hand since it was checked
        (while its dependencies were built, or its .do ran): then the new
        output must not replace it (SPEC §3).  n's lstat is problem()'s."""
        mode, fp = self.graph.stat(n)
        if old is None:
            return mode is not None       # made by hand since it was checked
        if old.result == GARBLED:
            return False
        return self.graph.why_modified(n, old) is MODIFIED

    def keep_hand_edit(self, n):
        what = '%s was modified outside redo while it was being built' % quote(self.graph.rel(n.path))
        self.graph.mark_modified(n.path)
        if n.call.opts.stop_if_modified:
            n.call.term.error(what + ' (REDO_STOP_IF_MODIFIED is set)')
            return False
        n.call.term.warn(what + ': leaving it alone, it is a source from now on'
                         ' (delete it to have redo build it again)')
        return True

    def previous_of(self, n, old):
        """The Previous of n's new state: the fingerprint and identity of
        the file the new output replaces.  Mostly its state's Output; after
        a build interrupted before its rename, its state's Previous (the
        file in place is the one before that build)."""
        known = []
        if old is not None:
            if old.output:
                known.append(old.output)
            fp, _, ident = old.previous.rpartition(' ')
            if fp:
                known.append((fp, ident))
        now = file_now(n.path, known)
        return '%s %s' % now if now else ABSENT

    def fail(self, n, job, status, seconds, old, problem):
        """Records n's build as failed, and says why."""
        job.publish_log()
        job.remove_temporaries()
        # The old state stays, marked failed (a failed target is rebuilt
        # whatever its dependencies say): its dependencies, and its output
        # and identity, as the old target stays (unless the .do wrote $1
        # itself: then that is what redo left there, so a hand edit after
        # the failure is still told apart).  A target never built keeps
        # what its failed run asked for, for redo-log.
        rec = old or Record(os.path.basename(n.path))
        rec.result = 'failed'
        if old is None:
            rec.deps = job.deps
        rec.output = file_now(n.path, [rec.output] if rec.output else [])
        self.stamp_run(rec, job, status, seconds)
        rec.why = problem if status == 0 else ''
        write_record(n.path, rec, self.unsynced)
        self.graph.note_written(n.path, rec)
        n.rec = rec
        n.fp = None
        n.mode = UNKNOWN
        n.call.term.error('%s failed: %s%s' % (quote(self.graph.rel(n.path)), problem, self.chain_text(n)))
        return False

    def stamp_run(self, rec, job, status, seconds):
        rec.run = self.run_id
        rec.exit = status
        rec.started = job.started
        rec.seconds = seconds
        rec.slot = job.first_slot
        rec.ran = ' '.join('%.6f+%.6f@%d' % (a - job.started, b - a, slot)
                           for a, b, slot in job.ran)


# =============================================================================
# §16 The server: the client protocol, requests and answers
# =============================================================================
# Design note.  The server owns the request fifo and the clients' own
# reply fifos, the count of requests from .do files that have ended
# (orphans), and the environments parsed from requests (cached by their
# text).  It calls the graph, the loop and the builder.  Each request
# becomes a task whose answer is written when it ends: t_serve for a
# request of a running .do (counted in its Job's `calls`: the .do is not
# committed before they are answered), t_serve_orphan for one whose .do
# has ended (served as a call of the run's own, nothing recorded).
#
# The protocol, all in REDO_RUN (a private directory), spoken by three
# clients: the sh part at the top of this file, CLIENT_FUNCTIONS (§11) and
# client_request (§18).
#   - The request: the working directory, the environment (what `export -p`
#     prints: the .do files the call builds run with it, as under a
#     separate process), then the arguments, each ended by a NUL
#     (redo-stamp: an empty environment, then stdin).
#   - Kind J: the client writes it to <job>.c, created with O_EXCL: that
#     claims the job's reply fifo <job>.r.  Kind K: the .do's own shell
#     keeps the claim once it has it, and writes <job>.c again for each
#     call.  Kind P: another client holds the claim (calls in parallel
#     from one .do), or the job's fifo is gone (the .do ended): the request
#     goes to <id>.q, the answer to a fifo of its own, <id>.r.
#   - The client then writes `cmd job id kind PID/fd/N` to the fifo `req`
#     (one short write, so atomic between clients; id is the job for J and
#     K; PID/fd/N its stderr, which the coordinator opens through /proc),
#     reads the one-line exit status from its reply fifo, and, for J and P,
#     writes `done job id kind`, which releases the claim or removes its files.
#   - An answer `R` instead of a status: the run ended first (its directory
#     was moved away); the call runs as a redo of its own (REDO_PY).
# The coordinator holds `req` and each reply fifo open read-write, so no
# open ever blocks it, and a client whose coordinator dies reads EOF.  A
# client opens its job's fifo (J, K) while a read-write descriptor of its
# own holds it, closed at once: a coordinator that died before that open
# is an end of file too, not an open that waits for a writer for ever.  A
# fifo of its own (P) the coordinator opens only when the request comes:
# that open waits, and a coordinator killed before it leaves it waiting.

ANSI_C = {'n': '\n', 't': '\t', 'r': '\r', 'a': '\a', 'b': '\b', 'e': '\033',
          'E': '\033', 'f': '\f', 'v': '\v', '\\': '\\', "'": "'", '"': '"', '?': '?'}


def parse_exports(text):
    """{name: value} of what `export -p` prints, in the forms of dash, bash
    (`declare -x` too), ksh and busybox sh, and of the Python client; a
    variable exported but unset is left out.  ValueError if garbled."""
    s = text.decode('utf-8', 'surrogateescape')
    env = {}
    pos, n = 0, len(s)
    try:
        while pos < n:
            while pos < n and s[pos] in ' \t\n':
                pos += 1
            start = pos
            while pos < n and s[pos] not in ' \t\n=':
                pos += 1
            word = s[start:pos]
            if pos < n and s[pos] == '=':
                value, pos = _shell_word(s, pos + 1, n)
                env[word] = value
    except IndexError:
        raise ValueError('garbled')
    return env


def _shell_word(s, pos, n):
    """The value of the shell word at s[pos:], and where it ends."""
    out = []
    while pos < n:
        c = s[pos]
        if c in ' \t\n':
            break
        if c == "'":
            end = s.index("'", pos + 1)
            out.append(s[pos + 1:end])
            pos = end + 1
        elif c == '"':
            pos += 1
            while s[pos] != '"':
                if s[pos] == '\\' and s[pos + 1] in '$`"\\\n':
                    if s[pos + 1] != '\n':
                        out.append(s[pos + 1])
                    pos += 2
                else:
                    out.append(s[pos])
                    pos += 1
            pos += 1
        elif c == '$' and s[pos + 1:pos + 2] == "'":
            pos += 2
            while s[pos] != "'":
                if s[pos] != '\\':
                    out.append(s[pos])
                    pos += 1
                else:
                    pos = _ansi_c_escape(s, pos, out)
            pos += 1
        elif c == '\\':
            if s[pos + 1] != '\n':
                out.append(s[pos + 1])
            pos += 2
        else:
            out.append(c)
            pos += 1
    return ''.join(out), pos


def _ansi_c_escape(s, pos, out):
    """Appends to out the character of the escape at s[pos:] in a $'...'
    word (\\n, \\x41, \\u00e9, \\101); returns where the escape ends."""
    e = s[pos + 1]
    if e in 'xu':
        digits = ''
        pos += 2
        while len(digits) < (2 if e == 'x' else 4) and s[pos] in '0123456789abcdefABCDEF':
            digits += s[pos]
            pos += 1
        out.append(_byte(int(digits or '0', 16)) if e == 'x' else chr(int(digits or '0', 16)))
    elif e in '01234567':
        digits = ''
        pos += 1
        while len(digits) < 3 and s[pos] in '01234567':
            digits += s[pos]
            pos += 1
        out.append(_byte(int(digits, 8) & 0xff))
    else:
        out.append(ANSI_C.get(e, '\\' + e))
        pos += 2
    return pos


def _byte(value):
    """A byte of an escape (`$'\\303'`), as a name decoded with
    surrogateescape holds it (the bytes of a UTF-8 character, escaped one
    by one, are joined again when the environment is encoded)."""
    return chr(value) if value < 0x80 else chr(0xdc00 + value)


def export_text(env):
    """env as `export -p` prints it (the Python client's part of the
    protocol)."""
    return ''.join("export %s='%s'\n" % (k, v.replace("'", "'\\''"))
                   for k, v in env.items() if k.replace('_', 'a').isalnum())


class Server:
    """Answers the requests of the .do files' redo commands (see the design
    note): each becomes a task, with the environment and the stderr of its
    call, and its answer is its exit status."""

    def __init__(self, loop, graph, builder, term):
        self.loop = loop
        self.wake = loop.wake
        self.graph = graph
        self.builder = builder
        self.term = term
        self.dir = None
        self.top_call = None
        self.req_fd = None
        self.req_buf = b''
        self.replies = {}         # (job, pid) -> fd of a client's own fifo
        self.orphans = 0          # calls of .do files that have ended, served
        self.env_cache = {}       # `export -p` of a call -> its environment
        self.env_opts = {}        # id(environment) -> (it, its Options)
        try:
            st = os.fstat(2)
            self.err_id = (st.st_dev, st.st_ino)
        except OSError:
            self.err_id = None

    def open(self, d, top_call):
        """Requests come to the fifo d/req from now on; top_call is the
        run's own call (its .do files' environment is the base of others)."""
        self.dir = d
        self.top_call = top_call
        os.mkfifo(os.path.join(d, 'req'))
        self.req_fd = os.open(os.path.join(d, 'req'), os.O_RDWR | os.O_NONBLOCK)
        self.loop.watch(self.req_fd, self.on_requests)

    def close(self):
        for fd in self.replies.values():
            os.close(fd)
        if self.dir is not None:
            os.close(self.req_fd)
            self.release_late_clients()
            self.dir = None

    def serving_orphans(self):
        """Whether calls of .do files that have ended are still served."""
        return self.orphans > 0

    def on_requests(self, fd):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        lines = (self.req_buf + data).split(b'\n')
        self.req_buf = lines.pop()
        for line in lines:
            parts = line.decode('ascii', 'replace').split(' ')
            if len(parts) == 5:
                err = parts.pop()         # PID/fd/N: the client's stderr
            elif len(parts) == 4:
                err = None
            else:
                continue
            cmd, jobid, pid, kind = parts
            if cmd == 'done':
                self.on_done(jobid, pid, kind)
            else:
                self.on_request(cmd, jobid, pid, kind, err)

    def on_done(self, jobid, rid, kind):
        if kind == 'J':
            # The claim is released, unless its job has ended (Job.close).
            if jobid.isdigit() and self.builder.job(int(jobid)) is not None:
                unlink_quiet(os.path.join(self.dir, '%s.c' % jobid))
            return
        fd = self.replies.pop((jobid, rid), None)
        if fd is not None:
            os.close(fd)
        unlink_quiet(os.path.join(self.dir, '%s.r' % rid))
        # The request file goes last: while it is there, no other client
        # can take its name (see CLIENT_FUNCTIONS).
        unlink_quiet(os.path.join(self.dir, '%s.q' % rid))

    def on_request(self, cmd, jobid, rid, kind, err=None):
        job = self.builder.job(int(jobid)) if jobid.isdigit() else None
        if kind in ('J', 'K'):
            fd = job.fifo_fd if job is not None else None
        else:
            try:
                fd = os.open(os.path.join(self.dir, '%s.r' % rid), os.O_RDWR | os.O_NONBLOCK)
            except OSError:
                return
            self.replies[(jobid, rid)] = fd
        data = read_bytes_or_none(os.path.join(self.dir, '%s.q' % rid if kind == 'P' else '%s.c' % jobid))
        if fd is None:
            return
        orphan = job is None and jobid.isdigit() and self.builder.was_started(int(jobid)) \
            and cmd in ('ifchange', 'redo')
        if job is None and not orphan or data is None:
            self.term.error('%s: not called from a .do that this redo is running' % prog(cmd))
            self.reply(fd, EXIT_USAGE)
            return
        if job is not None and job.err_fd is not None:
            job.read_stderr(drain=True)   # what it said before the call comes first
        cwd, _, rest = data.partition(b'\0')
        env_text, _, rest = rest.partition(b'\0')
        cwd = os.fsdecode(cwd)
        if cmd == 'stamp':
            args = rest
        else:
            args = [os.fsdecode(a) for a in rest.split(b'\0')[:-1]]
        if orphan:
            task = Task(None, None)
            task.gen = self.t_serve_orphan(task, cmd, cwd, env_text, args, fd)
        else:
            task = Task(None, job.node, owner=job.task)
            if not (err and err.replace('/fd/', '', 1).isdigit()):
                err = None                # an old client: its job's stderr
            task.gen = self.t_serve(task, job, cmd, cwd, env_text, args, fd, err)
        self.wake((task, None))
        self.loop.pump()

    def client_path(self, cwd, name):
        """The path of a name a client gave from its $PWD.  A `..` is the
        parent of what the name before it is, as the kernel has it (after
        `cd link`, `../x` is beside where link points); other names keep
        $PWD as it is (the same file either way), so that `cd gen &&
        redo-ifchange x` and `redo-ifchange gen/x` name one target."""
        if '..' in name and '..' in name.split('/'):
            return kernel_path(os.path.join(cwd, name))
        return abs_path(cwd, name)

    def reply(self, fd, status):
        try:
            os.write(fd, b'%d\n' % status)
        except OSError:
            pass

    def t_serve(self, task, job, cmd, cwd, env_text, args, fd, err):
        """Answers one request of job's .do."""
        status = EXIT_OK
        job.calls += 1
        try:
            if cmd in ('ifchange', 'redo'):
                status = yield from self.t_serve_build(task, job, cmd, cwd, env_text, args, err)
            elif cmd == 'ifcreate':
                status = self.serve_ifcreate(job, cwd, args)
            elif cmd == 'always':
                job.always = True
            elif cmd == 'stamp':
                job.stamp = stamp_of_data(args)
            elif cmd == 'recheck':
                self.serve_recheck(cwd, args)
            else:
                status = EXIT_USAGE
        except Done:
            job.term.error('%s: --help, --version and --install come first' % prog(cmd))
            status = EXIT_USAGE
        except (Error, OSError) as e:
            msg = str(e if isinstance(e, Error) else os_error(e))
            if not msg.startswith('redo'):
                msg = '%s: %s' % (prog(cmd), msg)
            job.term.line(job.term.paint(job.term.RED, msg))
            status = e.status if isinstance(e, Error) else EXIT_FAILED
        finally:
            job.calls -= 1
            if not job.calls and job.calls_waiter is not None:
                self.wake((job.calls_waiter, None))
                job.calls_waiter = None
        self.reply(fd, status)

    def t_serve_orphan(self, task, cmd, cwd, env_text, args, fd):
        """A build request of a .do whose target is already done (it left
        the call running in the background and exited): served as a call
        of the run's own, its targets built, nothing recorded."""
        self.orphans += 1
        status = EXIT_FAILED
        try:
            targets, v = parse_options(cmd, args, None, BUILD_FLAGS)
            top = self.top_call
            env = top.env
            if env_text:
                try:
                    env = parse_exports(env_text)
                    env[ENV_RUN], env[ENV_PID] = top.env[ENV_RUN], top.env[ENV_PID]
                except ValueError:
                    pass
            call = Call(Options(env).apply(v), env, top.term)
            task.call = call
            nodes = []
            for a in targets:
                n = self.graph.node(self.client_path(cwd, a))
                if n not in nodes:
                    nodes.append(n)
            ok = yield from self.builder.t_call(task, None, call, nodes, cmd == 'redo')
            self.builder.end_call(call)
            status = EXIT_OK if ok else EXIT_FAILED
        except (Error, Done) as e:
            self.term.error(str(e))
        finally:
            self.orphans -= 1
        self.reply(fd, status)

    def t_serve_build(self, task, job, cmd, cwd, env_text, args, err):
        targets, v = parse_options(cmd, args, None, BUILD_FLAGS)
        if 'install' in v:
            raise Done()
        if v.get('n') or v.get('dry-run'):
            raise Error('-n: a dry run cannot be made inside a build', EXIT_USAGE)
        parent = job.node
        call = self.nested_call(job, env_text, v, err)
        task.call = call
        nodes = []
        seen = set()
        try:
            for a in targets:
                if not a:
                    raise Error('%s: an empty target name' % prog(cmd), EXIT_USAGE)
                n = self.graph.node(self.client_path(cwd, a))
                if n.path not in seen:
                    seen.add(n.path)
                    self.builder.adopt(parent, n)
                    nodes.append(n)
            ok = yield from self.builder.t_call(task, job, call, nodes, cmd == 'redo')
        finally:
            self.builder.end_call(call)
            if call.term is not job.term:
                call.term.close()
        if cmd == 'ifchange':
            self.builder.record_deps(job, nodes)
        return EXIT_OK if ok else EXIT_FAILED

    def nested_call(self, job, env_text, v, err):
        """The Call of a request of job's .do: its environment (as `export
        -p` printed it in the .do), the options it was given over those of
        that environment, its stderr."""
        parent = job.node.call
        env = self.call_env(job, env_text)
        if v:
            opts = Options(env).apply(v)
            env = dict(env)
            opts.export(env)
        else:                     # the usual call: options as its environment's
            opts = self.env_opts.get(id(env))
            if opts is None or opts[0] is not env:
                opts = self.env_opts[id(env)] = (env, Options(env))
            opts = opts[1]
        limit = opts.cli_jobs if ('j' in v or 'jobs' in v) else parent.inherit
        return Call(opts, env, self.call_term(job, err, env), limit, limit)

    def call_env(self, job, text):
        """The environment a request sent, parsed once per distinct text
        (less the variables that name the job, which differ in every one)."""
        if not text:
            return job.node.call.env
        for name in (b' ' + ENV_JOB.encode() + b'=', b' ' + ENV_TARGET.encode() + b'='):
            i = text.find(name)
            if i >= 0:
                j = text.find(b'\n', i)
                text = text[:text.rfind(b'\n', 0, i) + 1] + (text[j + 1:] if j >= 0 else b'')
        env = self.env_cache.get(text)
        if env is None:
            try:
                env = parse_exports(text)
            except ValueError:
                return job.node.call.env
            base = self.top_call.env
            for name in (ENV_RUN, ENV_PID):
                env[name] = base[name]
            if len(self.env_cache) > 1000:
                self.env_cache.clear()
            self.env_cache[text] = env
        return env

    def call_term(self, job, err, env):
        """Where a request's messages and the stderr of what it builds go:
        the stderr the caller had at the call (`redo x 2>err`), found
        through /proc (err is PID/fd/N); that of the calling job where it
        is the same or cannot be known."""
        parent = job.term
        if err is None:
            return parent
        try:
            st = os.stat('/proc/' + err)
        except (OSError, ValueError):
            return parent
        if (st.st_dev, st.st_ino) in (job.err_id, self.err_id):
            return parent
        try:
            fd = os.open('/proc/' + err, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        except OSError:
            return parent
        return Term(env, False, fd, parent)

    def serve_ifcreate(self, job, cwd, args):
        files, _ = parse_options('ifcreate', args, None, {})
        d = os.path.dirname(job.node.path)
        for a in files:
            p = self.client_path(cwd, a)
            if exists(p):
                raise Error('redo-ifcreate: %s exists' % quote(self.graph.rel(p)))
            job.add_dep(Dep('Ifcreate', rel_path(p, d)))
        return EXIT_OK

    def serve_recheck(self, cwd, args):
        """redo-recheck: what this run found up to date or built among
        the targets named and what they depend on (everything, with no
        names) is checked again when next asked for."""
        names, _ = parse_options('recheck', args, None, {})
        if not names:
            todo = list(self.graph.all_nodes())
        else:
            todo = [self.graph.node(self.client_path(cwd, a)) for a in names]
        seen = set()
        while todo:
            n = todo.pop()
            if n.path in seen or (n.started and not n.done):
                continue
            seen.add(n.path)
            if names and self.graph.is_target(n):
                rec = read_record(n.path)
                d = n.path.rpartition('/')[0] or '/'
                for dep in (rec.deps if rec is not None else ()):
                    todo.append(self.graph.node(abs_path(d, dep.name)))
            self.builder.reset(n)
            self.builder.forget(n)
            self.graph.clear_modified(n.path)

    def release_late_clients(self):
        """Calls whose request came too late for this run (a .do left them
        running, `&`): each client waiting on a reply fifo of its own gets
        `R`, to run as a redo of its own, and the fifos go, so that no
        client waits for ever on a run that has ended."""
        gone = '%s.gone' % self.dir    # no new request, fifo or open from now on
        try:
            os.rename(self.dir, gone)
            names = [x for x in os.listdir(gone) if x.endswith('.r')]
        except OSError:
            remove_tree(self.dir)
            return
        fds = []
        for name in names:
            path = os.path.join(gone, name)
            try:
                fds.append(os.open(path, os.O_RDWR | os.O_NONBLOCK))
            except OSError:
                continue
            unlink_quiet(path)
        for fd in fds:
            try:
                os.write(fd, b'R\n')
            except OSError:
                pass
            os.close(fd)
        remove_tree(gone)


# =============================================================================
# §17 The run: the parts made, connected and driven
# =============================================================================
# Design note.  The run makes the parts and connects them; it holds the
# graph, the options and the top-level call, and drives the loop until
# that call and the orphan requests are done, or, interrupted, until every
# child is gone; then it writes the summaries (§9) and fsyncs.  What
# running .do files needs (the run directory with the request fifo and
# bin/ of command symlinks, the jobserver, the environment of the .do
# files) is made when the first slot is asked for (start_jobs), so that a
# build with nothing to do creates nothing.

def make_run_dir(base):
    """A new private directory in base for a run, named after its process."""
    for i in range(100):
        d = os.path.join(base, 'redo-%d-%d-%s' % (os.getuid(), os.getpid(), os.urandom(3).hex()))
        try:
            os.mkdir(d, 0o700)
            return d
        except FileExistsError:
            continue
        except OSError as e:
            raise Error('cannot create a directory in %s: %s' % (quote(base), e.strerror), EXIT_USAGE)
    raise Error('cannot create a directory in %s' % quote(base), EXIT_USAGE)


def remove_dead_run_dirs(base):
    """Removes the run directories of this user's redo processes that died
    without cleaning up (kill -9)."""
    prefix = 'redo-%d-' % os.getuid()
    try:
        names = [n for n in os.listdir(base) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].partition('-')[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            remove_tree(os.path.join(base, name))
        except OSError:
            pass


class Run:
    """One build by this process: the parts made and connected, the loop
    driven until the targets named are done (see the design note)."""

    def __init__(self, opts, env, cwd, term):
        import time
        self.graph = Graph(env, cwd)
        self.env = env
        self.opts = opts
        self.term = term
        self.loop = Loop()
        self.slots = Slots(self.loop)
        self.builder = Builder(self.graph, self.loop, self.slots, Locks(self.graph, env), term, opts.sync)
        self.slots.set_filter(self.builder.slot_filter)
        self.server = Server(self.loop, self.graph, self.builder, term)
        self.loop.connect(self.slots.release, self.builder.task_failed, self.builder.wait_nodes,
                          self.want_slot, self.slots.hand_out_slots, self.interrupt)
        self.was_running = []     # the targets an interruption stopped
        self.top_call = None
        self.signal = 0
        self.started = time.time()
        self.top_done = False
        self.progress_at = 0.0
        self.dir = None
        self.top_ok = False

    # -- setting up and tearing down ------------------------------------------

    def open(self):
        """Ready to check targets: signals and the poll loop.  What running
        .do scripts needs comes on the first job (start_jobs), so that a
        build with nothing to do creates nothing."""
        self.inherited = (None, None)
        if not self.opts.cli_jobs:
            self.inherited = JobServer.join(self.env.get(ENV_MAKEFLAGS, ''))
        self.loop.open()

    def start_jobs(self):
        """The run directory (request fifo, bin/ of command symlinks), the
        job slots and the environment of the .do scripts."""
        # Files there are made and removed at every call: tmpfs where there
        # is one, unless TMPDIR says otherwise.
        base = self.env.get('TMPDIR')
        if not base:
            base = '/dev/shm' if os.access('/dev/shm', os.W_OK | os.X_OK) else '/tmp'
        remove_dead_run_dirs(base)
        self.dir = d = make_run_dir(base)
        bin_dir = os.path.join(d, 'bin')
        os.mkdir(bin_dir)
        me = os.path.realpath(__file__)
        for name in COMMAND_NAMES:
            os.symlink(me, os.path.join(bin_dir, 'redo' if name == 'redo' else 'redo-' + name))
        self.server.open(d, self.top_call)
        env = dict(self.env)
        for name in (ENV_JOB, ENV_TARGET):
            env.pop(name, None)
        env[ENV_RUN] = d
        env[ENV_PID] = str(os.getpid())
        env[ENV_PYTHON] = sys.executable
        env[ENV_SELF] = me
        env['PATH'] = bin_dir + os.pathsep + env.get('PATH', os.defpath)
        self.opts.export(env)
        self.top_call.env = env   # the environment of the .do files it runs
        # -j, then make's jobserver, then REDO_JOBS, then one per CPU.
        server, warning = self.inherited
        if warning:
            self.term.warn(warning)
        sequential = False
        ahead_ok = server is None     # make's tokens are not ours to anticipate
        if server is None:
            o = self.opts
            o.jobs = o.cli_jobs or o.jobs or (1 if warning else min(os.cpu_count() or 1, MAX_JOBS))
            server = JobServer.create(o.jobs)
            env[ENV_MAKEFLAGS] = server.makeflags(env.get(ENV_MAKEFLAGS, ''), o.jobs)
            sequential = o.jobs == 1
        output = self.opts.output or ('plain' if sequential else 'lines')
        self.builder.open(d, sequential, ahead_ok, output, self.opts.logs)
        self.slots.open(server)

    def close(self):
        if not self.loop.close():
            return
        self.builder.close()
        self.slots.close()
        self.server.close()
        self.dir = None

    # -- the loop ---------------------------------------------------------------

    def build(self, paths, forced, memo=None):
        """Brings the nodes at paths up to date; returns the exit status.
        memo: (path, key) where a run that succeeds leaves its memo (§9)."""
        tops = []
        for p in paths:
            n = self.graph.node(p)
            n.top = True
            if n not in tops:
                tops.append(n)
        o = self.opts
        sequential = (o.cli_jobs or o.jobs) == 1
        self.top_call = call = Call(o, None, self.term, 1 if sequential else 0)
        task = Task(None, None, call)
        task.gen = self.t_top(task, call, tops, forced)
        loop = self.loop
        loop.wake((task, None))
        while True:
            loop.pump()
            if self.signal:
                if loop.quiet():
                    break
            elif self.top_done and not self.server.serving_orphans():
                break
            timeout = loop.timeout()
            if self.term.progress:
                self.show_progress()
                timeout = 500 if timeout is None else min(timeout, 500)
            self.builder.look_ahead()
            loop.poll(timeout)
            self.builder.sync_if_due()
            loop.fire_timers()
            if self.signal:
                loop.escalate()
        self.term.show_status('')
        tmp = None
        if not self.signal:
            if memo is not None and self.top_ok:
                tmp = self.start_memo(tops, *memo)
            self.graph.save_summaries()
        self.builder.sync()
        if tmp is not None:
            self.end_memo(tmp, memo[0])
        if self.signal:
            return self.say_interrupted()
        return EXIT_OK if self.top_ok else EXIT_FAILED

    def start_memo(self, tops, path, key):
        """The memo of this run (§9), started if it makes one: its
        temporary file, or None.  A cache: an error only costs it."""
        try:
            if self.graph.memo_ok(tops):
                return start_memo(path, key, self.graph.memo_pieces())
        except (Error, OSError):
            pass
        return None

    def end_memo(self, tmp, path):
        try:
            last = None if self.signal else self.graph.memo_dirs()
        except (Error, OSError):
            last = None
        end_memo(tmp, path, last)

    def say_interrupted(self):
        """The last word of an interrupted run, and its exit status."""
        name = {signal.SIGINT: 'SIGINT', signal.SIGTERM: 'SIGTERM',
                signal.SIGHUP: 'SIGHUP'}.get(self.signal, 'signal %d' % self.signal)
        running = self.was_running
        self.term.error('interrupted by %s%s' % (name, '; stopped %s, left as before'
                                                 % ', '.join(quote(p) for p in running[:10])
                                                 + (' and %d more' % (len(running) - 10)
                                                    if len(running) > 10 else '')
                                                 if running else ''))
        return EXIT_SIGNAL + self.signal

    def show_progress(self):
        """The terminal's status line: targets done of those known so far,
        the running ones, the time since the start."""
        import time
        now = time.time()
        if now - self.progress_at < 0.1:
            return
        self.progress_at = now
        done = sum(1 for n in self.graph.all_nodes() if n.done and n.started)
        known = sum(1 for n in self.graph.all_nodes() if n.started)
        running = ' '.join(self.graph.rel(j.node.path) for j in self.loop.running())
        text = '[%d/%d] %.0fs %s' % (done, known, now - self.started, running)
        self.term.show_status(text[:self.term.width() - 1])

    def t_top(self, task, call, tops, forced):
        self.top_ok = yield from self.builder.t_call(task, None, call, tops, forced)
        self.top_done = True

    def want_slot(self, task, resuming):
        if self.dir is None:
            self.start_jobs()
        self.slots.want(task, resuming)

    def interrupt(self, signum):
        """SIGINT, SIGTERM, SIGHUP: pass it on to every running .do (Ctrl-C
        reaches them anyway), start nothing new, SIGKILL what is left after
        a grace period, then exit with 128+signum."""
        self.signal = signum
        self.builder.stop(signum)
        self.was_running = sorted(self.graph.rel(j.node.path) for j in self.loop.running())
        self.slots.stop()
        self.loop.kill_children(signum)


# =============================================================================
# §18 The Python client
# =============================================================================
# The same protocol (§16) as the sh client, for when a .do reaches redo.py
# some other way than through REDO_RUN/bin (`python3 redo.py ifchange x`,
# an installed `redo-ifchange` earlier on a PATH the script set itself).

def coordinator_dir(env):
    """REDO_RUN if a coordinator is there and alive, else None."""
    d = env.get(ENV_RUN)
    if not d or not os.path.exists(os.path.join(d, 'req')):
        return None
    try:
        os.kill(int(env.get(ENV_PID, '')), 0)
    except (ValueError, OSError):
        return None
    return d


def client_request(d, env, cmd, body):
    job = env.get(ENV_JOB, '0')
    pid = os.getpid()
    kind, rid = 'J', job
    try:                  # the job's fifo, if no other client has claimed it
        if os.stat(os.path.join(d, '%s.r' % job)).st_mode & 0o170000 != 0o010000:
            raise FileNotFoundError
        with open(os.path.join(d, '%s.c' % job), 'xb') as f:
            f.write(body)
    except (FileExistsError, FileNotFoundError):
        kind, rid = 'P', str(pid)
        with open(os.path.join(d, '%s.q' % rid), 'wb') as f:
            f.write(body)
        os.mkfifo(os.path.join(d, '%s.r' % rid))
    # Read-write opens of the fifos never block, even with the coordinator
    # gone; its death shows as end of file on the reply.
    req = os.open(os.path.join(d, 'req'), os.O_RDWR)
    answer = b''
    try:
        os.write(req, ('%s %s %s %s %d/fd/2\n' % (cmd, job, rid, kind, pid)).encode())
        if coordinator_dir(env) is not None:
            # The job's fifo: opened while a writer of our own holds it
            # (see CLIENT_FUNCTIONS).
            fifo = os.path.join(d, '%s.r' % rid)
            w = os.open(fifo, os.O_RDWR) if kind == 'J' else None
            try:
                r = os.open(fifo, os.O_RDONLY)
            finally:
                if w is not None:
                    os.close(w)
            with open(r, 'rb') as f:
                answer = f.readline()
        os.write(req, ('done %s %s %s\n' % (job, rid, kind)).encode())
    finally:
        os.close(req)
    try:
        return int(answer)
    except ValueError:
        if answer.strip() == b'R' or coordinator_dir(env) is None:
            return None           # the run ended before it could answer
        raise Error('%s: lost contact with the running redo' % prog(cmd), EXIT_USAGE)


# =============================================================================
# §19 Commands
# =============================================================================
# Each cmd_* takes (args, env) and returns an exit status.

USAGE = {
    'redo': 'redo [-j N] [-k] [-x|-xx] [-v|-vv] [-d] [-s] [--no-progress] [targets...]',
    'ifchange': 'redo-ifchange [options as redo] [targets...]',
    'ifcreate': 'redo-ifcreate files...',
    'always': 'redo-always',
    'stamp': 'redo-stamp <data',
    'recheck': 'redo-recheck [targets...]',
    'ood': 'redo-ood [targets or directories...]',
    'targets': 'redo-targets [targets or directories...]',
    'sources': 'redo-sources [targets or directories...]',
    'whichdo': 'redo-whichdo target',
    'log': 'redo-log [-r] [-u] [-f] [--trace FILE] [targets...]',
    'dot': 'redo-dot [targets...]',
    'affects': 'redo-affects files...',
    'cleanup': 'redo-cleanup',
    'clean': 'redo-clean [-n] [targets or directories...]',
    'cleandead': 'redo-cleandead [-n] [targets...]',
    'rebuild': 'redo-rebuild [-n] [options as redo] [targets...]',
}

SELECTION = ('\nNamed directories: the targets under them; named targets: those and,\n'
             'recursively, the targets they depend on.')

HELP = {
    'redo': 'Builds each target (default: all) now, whether or not it is up to date.',
    'ifchange': 'Records that the running target depends on each target, and builds\n'
                'those that are out of date.  At top level, just builds them.',
    'ifcreate': 'Records that the running target must be rebuilt if one of the files\n'
                'comes into existence.  It is an error if one exists now.',
    'always': 'Marks the running target out of date in every new run.',
    'stamp': 'Reads stdin; the running target counts as unchanged for its dependents\n'
             'when the data is the same as last time.',
    'recheck': 'Inside a build: what this run has checked or built of the targets and\n'
               'what they depend on (everything, with no targets) is checked again\n'
               'when next asked for.  Outside a build: does nothing.',
    'ood': 'Lists the targets under this directory that are out of date.' + SELECTION,
    'targets': 'Lists the targets under this directory that redo has built.' + SELECTION,
    'sources': 'Lists the source files that targets under this directory depend on.'
               + SELECTION,
    'whichdo': 'Prints the .do files that could build target, in search order, ending\n'
               'with the one that exists (exit 0), or all of them (exit 1).',
    'log': 'Prints the stderr kept from the last build of each target (default: all);\n'
           '-r also that of what it depended on, as a tree (-u, apenwarr\'s "unchanged\n'
           'too", changes nothing: -r shows them all); -f follows a build of the target\n'
           'that is running until it ends; --trace FILE writes the last run as Chrome\n'
           'trace-event JSON (open it in Perfetto or chrome://tracing).',
    'dot': 'Prints the dependency graph in Graphviz dot: targets as boxes, sources\n'
           'as ellipses, out-of-date targets in red.',
    'affects': 'Lists the targets that would be rebuilt if these files changed or were created.',
    'cleanup': 'Removes redo\'s temporary, lock and log files under this directory\n'
               '(never targets, sources or the state of what was built).',
    'clean': 'Removes the targets redo built under this directory (or the named\n'
             'directories), and their state, so that the next build makes them\n'
             'anew; a named target alone.  Never a source, a file redo did not\n'
             'build, or a target modified by hand.  -n, --dry-run: list them only.',
    'cleandead': 'Removes the targets under this directory, and their state, that\n'
                 'the targets (default: all) no longer need: those their .do files\n'
                 'stopped asking for.  -n, --dry-run: list them only.',
    'rebuild': 'Builds the targets (default: all) and every target they depend on\n'
               'again, up to date or not, without removing them first (make -B):\n'
               'marks them out of date, then builds as redo-ifchange.  -n, --dry-run:\n'
               'list them only.',
}

BUILD_OPTIONS = """Options:
  -j, --jobs N      run up to N .do scripts at once (default: number of CPUs)
  -k, --keep-going  build everything that does not depend on a failure
  -x, -xx           run the top-level (-x) or every (-xx) .do with sh -x
  -v, -vv           run the top-level (-v) or every (-vv) .do with sh -v
  -d, --debug       explain why each target is or is not out of date
  -s, --silent      do not print a line for each target built
  -n, --dry-run     print the targets that would run (as far as the state
                    tells), build nothing
  --shuffle         build the targets of each call in a random order
  --output MODE     the .do files' stderr: lines (each line after its
                    target's name; the default in parallel), group (-O: all
                    of a target's at once, when it ends), plain (as is; -j1)
  --no-progress     no progress line on the terminal
  --install DIR     put redo.py and a symlink per command in DIR, and exit
                    (with --copy: copies instead of symlinks)
"""


def usage(cmd):
    text = 'usage: %s\n\n%s\n' % (USAGE[cmd], HELP[cmd])
    if cmd in ('redo', 'ifchange'):
        text += '\n' + BUILD_OPTIONS
    elif cmd == 'rebuild':
        text += '\n' + BUILD_OPTIONS.split('  --install')[0]
    return text + '\nredo.py %s, MIT licence.  See the README for more.\n' % VERSION


def parse_options(cmd, args, opts, allowed):
    """Parses the options in `allowed` (short letters and long names) out of
    args; returns the operands.  Handles --help and --version itself by
    raising Done."""
    name = prog(cmd)
    rest = []
    i = 0
    values = {}
    while i < len(args):
        a = args[i]
        i += 1
        if a == '--':
            rest += args[i:]
            break
        if a in ('-h', '--help'):
            raise Done(usage(cmd))
        if a in ('-V', '--version'):
            raise Done('%s (redo.py) %s\n' % (name, VERSION))
        if a.startswith('--'):
            opt, eq, value = a[2:].partition('=')
            if opt not in allowed:
                raise Error('%s: unknown option %s (see --help)' % (name, a), EXIT_USAGE)
            if allowed[opt]:
                if not eq:
                    if i >= len(args):
                        raise Error('%s: %s needs a value' % (name, a), EXIT_USAGE)
                    value = args[i]
                    i += 1
                values[opt] = value
            else:
                values[opt] = values.get(opt, 0) + 1
        elif a.startswith('-') and len(a) > 1:
            i = _short_options(name, a, args, i, allowed, values)
        else:
            rest.append(a)
    return rest, values


def _short_options(name, a, args, i, allowed, values):
    """Reads a, one or more short options (`-k`, `-kx`, `-j2`), into
    values; the value of the last one may be args[i].  Returns the index
    of the argument after them."""
    j = 1
    while j < len(a):
        ch = a[j]
        j += 1
        if ch not in allowed:
            raise Error('%s: unknown option -%s (see --help)' % (name, ch), EXIT_USAGE)
        if allowed[ch]:
            value = a[j:]
            if not value:
                if i >= len(args):
                    raise Error('%s: -%s needs a value' % (name, ch), EXIT_USAGE)
                value = args[i]
                i += 1
            values[ch] = value
            break
        values[ch] = values.get(ch, 0) + 1
    return i


class Done(Exception):
    """--help or --version: print the text, exit 0."""


def usage_error(cmd):
    """The error for operands a command cannot take."""
    return Error('%s: usage: %s' % (prog(cmd), USAGE[cmd]), EXIT_USAGE)


BUILD_FLAGS = {'j': True, 'jobs': True, 'k': False, 'keep-going': False,
               'x': False, 'v': False, 'd': False, 'debug': False,
               'explain': False, 's': False, 'silent': False, 'no-progress': False,
               'shuffle': False, 'O': False, 'output': True, 'n': False, 'dry-run': False,
               'install': True, 'copy': False}


def makeflags_letters(env):
    """The one-letter options of the make that runs this redo (`make -kn`:
    MAKEFLAGS starts with the word `kn`), as any sub-make reads them."""
    flags = env.get(ENV_MAKEFLAGS, '')
    if not flags or flags[0] in ' -' or not env.get('MAKELEVEL'):
        return ''
    word = flags.split(None, 1)[0]
    return word if '=' not in word else ''


def build_options(cmd, args, env):
    targets, v = parse_options(cmd, args, None, BUILD_FLAGS)
    letters = makeflags_letters(env)
    for letter in 'nks':
        if letter in letters:
            v.setdefault(letter, 1)
    check_jobs(v, env)
    opts = Options(env).apply(v)
    opts.logs = bool_env(env, ENV_LOGS, True)
    # With REDO_LOGS=0 the scripts write to the terminal themselves, where a
    # progress line would mix into their text.
    opts.progress = not v.get('no-progress') and not _flag(env, ENV_NO_PROGRESS) and opts.logs
    if 'install' in v:
        raise Done(install(v['install'], bool(v.get('copy'))))
    opts.dry_run = bool(v.get('n') or v.get('dry-run'))
    return opts, targets


def install(dest, copy):
    """--install DIR [--copy]: redo.py and a symlink (or copy) per command
    in DIR.  Returns what to print."""
    import shutil
    me = os.path.realpath(__file__)
    target = os.path.join(dest, 'redo.py')
    try:
        os.makedirs(dest, exist_ok=True)
        if os.path.realpath(target) != me:
            shutil.copyfile(me, target + '.new')
            os.chmod(target + '.new', 0o755)
            os.replace(target + '.new', target)
        for name in COMMAND_NAMES:
            # Copied from DIR/redo.py, each put in place by a rename: this
            # very program may be one of them (`DIR/redo --install DIR`).
            path = os.path.join(dest, prog(name))
            unlink_quiet(path + '.new')
            if copy:
                shutil.copyfile(target, path + '.new')
                os.chmod(path + '.new', 0o755)
            else:
                os.symlink('redo.py', path + '.new')
            os.replace(path + '.new', path)
    except OSError as e:
        raise Error('--install %s: %s' % (quote(dest), os_error(e)), EXIT_USAGE)
    return 'installed redo.py and %d commands (%s) in %s\n' % (
        len(COMMAND_NAMES), 'copies' if copy else 'symlinks', dest)


def cmd_redo(args, env, cmd='redo'):
    opts, targets = build_options(cmd, args, env)
    if cmd == 'redo' and not targets:
        targets = ['all']
    for t in targets:
        if not t:
            raise Error('%s: an empty target name' % prog(cmd), EXIT_USAGE)
    d = coordinator_dir(env)
    if d is not None:
        body = (os.fsencode(getcwd()) + b'\0' + os.fsencode(export_text(env)) + b'\0'
                + b''.join(os.fsencode(a) + b'\0' for a in args))
        status = client_request(d, env, cmd, body)
        if status is not None:
            return status
        env = dict(env)           # a redo of its own, then
        env.pop(ENV_RUN, None)
    if not targets:
        return EXIT_OK
    cwd = getcwd()
    if opts.dry_run:
        return dry_run(Graph(env, cwd), [abs_path(cwd, t) for t in targets],
                       cmd == 'redo', opts.debug)
    paths = [abs_path(cwd, t) for t in targets]
    memo = None
    seen = []
    if cmd == 'ifchange' and not opts.debug:
        try:
            memo = memo_place(cmd, cwd, args, env, paths[0])
        except Error:
            pass                  # redo.py itself cannot be looked at
        if memo is not None and memo_holds(memo[0], memo[1], seen):
            return EXIT_OK
    term = Term(env, opts.progress)
    # The graph is made of long-lived objects: the cyclic collector would
    # walk them again and again for nothing (a third of a no-op check).
    import gc
    gc.disable()
    run = Run(opts, env, cwd, term)
    run.graph.seed(seen)
    del seen
    try:
        run.open()
        return run.build(paths, cmd == 'redo', memo)
    finally:
        run.close()


def dry_run(g, paths, forced, debug):
    """-n: prints, as the build would (`redo  target`, indented, parents
    first), the targets that would run as far as the recorded graph tells:
    those out of date, and with `redo` the targets named.  What a .do would
    ask for that it did not ask for last time cannot be known."""
    memo = {}
    out = []
    seen = set()
    stack = [(p, 0) for p in reversed(paths)]
    while stack:
        path, depth = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        n = g.node(path)
        reason = g.why_static(n, memo)
        if depth == 0 and forced and (g.record(n) is not None or not exists(path)) \
                and g.find_do(path) is not None:
            reason = reason or 'redo was asked to build it'
        if reason is None or reason == 'it does not exist':
            continue
        out.append('redo %s%s%s' % ('  ' * depth + ' ', g.rel(path),
                                    '  (%s)' % reason if debug else ''))
        rec = g.record(n)
        d = os.path.dirname(path)
        for dep in reversed(rec.deps if rec is not None and rec.result != GARBLED else ()):
            if dep.kind == 'Dep':
                stack.append((abs_path(d, dep.name), depth + 1))
    print_paths(out)
    return EXIT_OK


def cmd_ifchange(args, env):
    return cmd_redo(args, env, 'ifchange')


def in_build_only(cmd, env, body):
    d = coordinator_dir(env)
    status = None if d is None else client_request(d, env, cmd, body)
    if status is None:
        raise Error('%s: must be run by a .do script during a build' % prog(cmd), EXIT_USAGE)
    return status


def cmd_ifcreate(args, env):
    files, _ = parse_options('ifcreate', args, None, {})
    body = b''.join(os.fsencode(a) + b'\0' for a in [getcwd(), ''] + ['--'] + files)
    return in_build_only('ifcreate', env, body)


def cmd_always(args, env):
    parse_options('always', args, None, {})
    return in_build_only('always', env, os.fsencode(getcwd()) + b'\0\0')


def cmd_stamp(args, env):
    parse_options('stamp', args, None, {})
    data = std_stream('stdin').read()
    return in_build_only('stamp', env, os.fsencode(getcwd()) + b'\0\0' + data)


def cmd_recheck(args, env):
    names, _ = parse_options('recheck', args, None, {})
    d = coordinator_dir(env)
    if d is None:
        return EXIT_OK            # outside a build: nothing was checked
    body = b''.join(os.fsencode(a) + b'\0' for a in [getcwd(), ''] + ['--'] + names)
    status = client_request(d, env, 'recheck', body)
    return EXIT_OK if status is None else status


def walk_records(root):
    """Yields (path, Record) for every target with state under root (a
    garbled state file too: its target is out of date, but still one)."""
    for d, dirs, files in os.walk(root):
        if STATE_DIR in dirs:
            sd = os.path.join(d, STATE_DIR)
            try:
                names = sorted(os.listdir(sd))
            except OSError:
                names = []
            for name in names:
                if name.endswith(STATE_SUFFIX):
                    rec = read_record_file(os.path.join(sd, name))
                    if rec is None:
                        continue
                    if rec.result == GARBLED and state_key(rec.target) != rec.target:
                        continue  # a long name, hashed: not known any more
                    yield os.path.join(d, rec.target), rec
        dirs[:] = sorted(x for x in dirs if x != STATE_DIR)


def print_paths(paths):
    out = std_stream('stdout')
    for p in paths:
        out.write(os.fsencode(p) + b'\n')
    out.flush()


def is_known_target(g, path, rec):
    """Whether redo built path at least once and no hand edited it since
    (a garbled state counts: a target still, out of date)."""
    if rec.result == GARBLED:
        return True
    if not rec.build:
        return False              # its only build failed
    return g.why_modified(g.node(path), rec) is not MODIFIED


def reachable_records(g, roots):
    """Yields (path, Record) of each of the roots that has state and of
    every target they depend on, recursively, each once: depth first, in
    the order the .do files asked for them."""
    seen = set()
    stack = list(reversed(roots))
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        rec = g.record(g.node(path))
        if rec is None:
            continue
        yield path, rec
        d = os.path.dirname(path)
        stack.extend(abs_path(d, dep.name) for dep in reversed(rec.deps) if dep.kind == 'Dep')


def select_records(g, names):
    """Yields (path, Record) of the targets that names select, each once: a
    target, it and what it depends on (reachable_records); a directory,
    every target under it; no names, every target under the current
    directory.  A name that is neither selects nothing."""
    if not names:
        yield from walk_records(g.cwd)
        return
    seen = set()
    for name in names:
        path = abs_path(g.cwd, name)
        if g.record(g.node(path)) is not None:
            found = reachable_records(g, [path])
        elif os.path.isdir(path):
            found = walk_records(path)
        else:
            continue
        for p, rec in found:
            if p not in seen:
                seen.add(p)
                yield p, rec


def cmd_targets(args, env):
    names, _ = parse_options('targets', args, None, {})
    g = Graph(env, getcwd())
    print_paths(g.rel(p) for p, rec in select_records(g, names) if is_known_target(g, p, rec))
    return EXIT_OK


def cmd_sources(args, env):
    names, _ = parse_options('sources', args, None, {})
    g = Graph(env, getcwd())
    found = set()
    for p, rec in select_records(g, names):
        d = os.path.dirname(p)
        for dep in rec.deps:
            if dep.kind == 'Dep':
                dp = abs_path(d, dep.name)
                if dp in found:
                    continue
                drec = g.record(g.node(dp))
                if drec is None or drec.result != GARBLED and drec.build \
                        and g.why_modified(g.node(dp), drec) is MODIFIED:
                    found.add(dp)
    print_paths(sorted(g.rel(p) for p in found))
    return EXIT_OK


def cmd_ood(args, env):
    names, _ = parse_options('ood', args, None, {})
    g = Graph(env, getcwd())
    print_paths(g.rel(p) for p, rec in select_records(g, names)
                if g.why_static(g.node(p)) is not None)
    return EXIT_OK


def cmd_whichdo(args, env):
    names, _ = parse_options('whichdo', args, None, {})
    if len(names) != 1:
        raise usage_error('whichdo')
    if not names[0]:
        raise Error('redo-whichdo: an empty target name', EXIT_USAGE)
    g = Graph(env, getcwd())
    found = []
    for cand in do_candidates(abs_path(g.cwd, names[0]), g.top):
        found.append(g.rel(cand[0]))
        if exists(cand[0]):
            print_paths(found)
            return EXIT_OK
    print_paths(found)
    return EXIT_FAILED


def cmd_affects(args, env):
    files, _ = parse_options('affects', args, None, {})
    if not files:
        raise usage_error('affects')
    g = Graph(env, getcwd())
    users = {}
    for p, rec in walk_records(g.cwd):
        d = os.path.dirname(p)
        for dep in rec.deps:      # ifcreate too: a file that comes is a change
            users.setdefault(abs_path(d, dep.name), []).append(p)
        if rec.do:                # and a .do that would be found first
            do = abs_path(d, rec.do)
            for cand in do_candidates(p, g.top, g.exists_memo):
                if cand[0] == do:
                    break
                users.setdefault(cand[0], []).append(p)
    todo = [abs_path(g.cwd, f) for f in files]
    seen = set()
    while todo:
        for u in users.get(todo.pop(), ()):
            if u not in seen:
                seen.add(u)
                todo.append(u)
    print_paths(sorted(g.rel(p) for p in seen))
    return EXIT_OK


def cmd_cleanup(args, env):
    """Removes the temporary, lock and log files under the current
    directory, but those of a target being built (its lock is held) and
    the temporary files of a live process."""
    parse_options('cleanup', args, None, {})
    for d, dirs, files in os.walk(getcwd()):
        if STATE_DIR in dirs:
            cleanup_state_dir(os.path.join(d, STATE_DIR))
        dirs[:] = [x for x in dirs if x != STATE_DIR]
    return EXIT_OK


def cleanup_state_dir(sd):
    """Removes the lock, log and temporaries of each target in sd, holding
    its lock while it does: a target being built (its lock held) keeps them
    all, and one whose build starts meanwhile waits for the lock.  The .tmp
    files and moved-aside outputs of live processes stay too."""
    try:
        names = os.listdir(sd)
    except OSError as e:
        raise Error('cannot read %s: %s' % (quote(sd), e.strerror))
    files = {}                    # state key -> its files to remove
    for name in names:
        if name.endswith(LOCK_SUFFIX):
            files.setdefault(name[:-len(LOCK_SUFFIX)], [])
        elif name.endswith(LOG_SUFFIX):
            files.setdefault(name[:-len(LOG_SUFFIX)], []).append(os.path.join(sd, name))
        elif name.endswith('.tmp') and not pid_alive(name[:-4].rpartition('.')[2]):
            unlink_quiet(os.path.join(sd, name))
    try:
        prune_memos(os.path.join(sd, MEMO_DIR))
    except (OSError, Error):
        pass
    for kind in (TMP3_DIR, STDOUT_DIR, LOG_TMP_DIR):
        kd = os.path.join(sd, kind)
        try:
            entries = os.listdir(kd)
        except OSError:
            continue
        for name in entries:
            if name.startswith('old.'):
                if not pid_alive(name[4:]):
                    remove_tree(os.path.join(kd, name))
            else:
                files.setdefault(state_key(name), []).append(os.path.join(kd, name))
    d = os.path.dirname(sd)       # $3 and moved-aside outputs beside targets
    try:
        entries = os.listdir(d)
    except OSError:
        entries = []
    for name in entries:
        if name.startswith(TMP3_PREFIX):
            files.setdefault(state_key(name[len(TMP3_PREFIX):]), []).append(os.path.join(d, name))
        elif name.startswith('.redo-old.') and not pid_alive(name[10:]):
            remove_tree(os.path.join(d, name))
    for key, paths in files.items():
        remove_locked(os.path.join(sd, key + LOCK_SUFFIX), paths)


def remove_locked(lock, paths):
    """Removes paths, then the lock file, holding the lock (made if need
    be); nothing if a build holds it.  A run that opened the lock file
    meanwhile finds it gone once it has the lock, and takes a new one
    (Locks.take)."""
    import fcntl
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        except OSError:
            pass                  # cannot be locked: not one redo made
        for path in paths:
            remove_tree(path)
        unlink_quiet(lock)
    finally:
        os.close(fd)


def pid_alive(text):
    """Whether the process numbered text (digits) lives; False if text is
    not a number."""
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


# -- redo-clean, redo-cleandead, redo-rebuild -------------------------------
# Each takes every target's lock while it changes the target's files or
# state, as redo-cleanup does: a target being built (its lock held) is left
# alone, and a build that starts meanwhile waits.

DRY_RUN = {'n': False, 'dry-run': False}


def cmd_clean(args, env):
    names, v = parse_options('clean', args, None, DRY_RUN)
    g = Graph(env, getcwd())
    todo = []
    for name in names:
        path = abs_path(g.cwd, name)
        rec = g.record(g.node(path))
        if rec is not None:
            todo.append((path, rec))
        elif os.path.isdir(path):
            todo.extend(walk_records(path))
        else:
            raise Error('redo-clean: %s: neither a target redo built nor a directory'
                        % quote(name), EXIT_USAGE)
    if not names:
        todo = walk_records(g.cwd)
    return remove_targets(g, 'clean', todo, v)


def cmd_cleandead(args, env):
    names, v = parse_options('cleandead', args, None, DRY_RUN)
    g = Graph(env, getcwd())
    roots = [abs_path(g.cwd, n) for n in names or ['all']]
    for path in roots:
        if g.record(g.node(path)) is None:
            raise Error('redo-cleandead: %s: redo has no record of building it'
                        % quote(g.rel(path)))
    live = set()
    for path, rec in reachable_records(g, roots):
        if rec.result == GARBLED:
            # What it depends on is unknown: anything could be.
            raise Error('redo-cleandead: %s: its state file cannot be read (build it first)'
                        % quote(g.rel(path)))
        live.add(path)
    return remove_targets(g, 'cleandead',
                          [(p, rec) for p, rec in walk_records(g.cwd) if p not in live], v)


def remove_targets(g, cmd, todo, v):
    """Removes each target of todo [(path, Record)] and its state, or with
    -n lists them; keeps those that are sources now (modified by hand, or no
    .do builds them any more), saying so."""
    dry = v.get('n') or v.get('dry-run')
    listed = []
    dirs = set()
    seen = set()
    for path, rec in todo:
        if path in seen:
            continue
        seen.add(path)
        why = why_kept(g, path, rec)
        if why is not None:
            sys.stderr.write('%s: keeping %s: %s\n' % (prog(cmd), quote(g.rel(path)), KEPT[why]))
        if why is MODIFIED:
            continue
        if dry:
            if why is None:
                listed.append(g.rel(path))
        elif remove_target(path, rec, why is None):
            dirs.add(os.path.dirname(path))
    for d in sorted(dirs):
        tidy_state_dir(os.path.join(d, STATE_DIR))
    print_paths(listed)
    return EXIT_OK


KEPT = {MODIFIED: MODIFIED + ' (remove it by hand, and redo builds it again)',
        NO_DO: NO_DO + ': a source from now on'}


def why_kept(g, path, rec):
    """Why redo-clean keeps the file of the target at path, a source now,
    or None.  MODIFIED (by hand): its state stays too, as redo's memory of
    the edit; NO_DO: its state goes, as a build would remove it (SPEC §3).
    A garbled state counts as redo's: a build would overwrite the file."""
    if rec.result == GARBLED:
        return None
    n = g.node(path)
    if g.why_modified(n, rec) is MODIFIED:
        return MODIFIED
    if g.find_do(path) is None and exists(path):
        return NO_DO
    return None


def remove_target(path, rec, with_file=True):
    """Removes the state, log and temporaries of the target at path, and
    its file unless with_file is false, holding its lock; False if a build
    holds it, or its state changed since rec was read (a build just ended:
    it stays)."""
    lock = state_file(path, LOCK_SUFFIX)
    fd = try_lock(lock)
    if fd is None:
        return False
    try:
        fresh = read_record(path)
        if fresh is None or fresh.result != rec.result or fresh.build != rec.build:
            return False
        try:
            if with_file:
                unlink_quiet(path)
        except OSError as e:
            raise Error('cannot remove %s: %s' % (quote(path), e.strerror))
        for p in (state_file(path, STATE_SUFFIX), state_file(path, LOG_SUFFIX),
                  tmp3_path(path), tmp_file(path, TMP3_DIR), tmp_file(path, STDOUT_DIR),
                  tmp_file(path, LOG_TMP_DIR), lock):
            discard(p)
        return True
    finally:
        os.close(fd)


def tidy_state_dir(sd):
    """Removes sd (a .redo) once no target has state in it: its summary
    and empty work directories go first.  Anything else there (a lock
    held, .redo/top) keeps it."""
    try:
        names = os.listdir(sd)
    except OSError:
        return
    if any(name.endswith(STATE_SUFFIX) for name in names):
        return
    discard(os.path.join(sd, SUMMARY))
    for kind in (TMP3_DIR, STDOUT_DIR, LOG_TMP_DIR):
        try:
            os.rmdir(os.path.join(sd, kind))
        except OSError:
            pass
    try:
        os.rmdir(sd)
    except OSError:
        pass


def cmd_rebuild(args, env):
    names, v = parse_options('rebuild', args, None,
                             dict(DRY_RUN, **{k: f for k, f in BUILD_FLAGS.items()
                                              if k not in ('install', 'copy')}))
    if coordinator_dir(env) is not None:
        # The running redo holds what it has checked: a mark it does not
        # read could be written over.
        raise Error('redo-rebuild: cannot run inside a build (there, `redo TARGET` '
                    'builds the target again)', EXIT_USAGE)
    g = Graph(env, getcwd())
    roots = [abs_path(g.cwd, n) for n in names or ['all']]
    todo = [(p, rec) for p, rec in reachable_records(g, roots)
            if rec.result == GARBLED or g.why_modified(g.node(p), rec) is not MODIFIED]
    if v.get('n') or v.get('dry-run'):
        print_paths(g.rel(p) for p, rec in todo)
        return EXIT_OK
    unsynced = None if _flag(env, ENV_NO_SYNC) else []
    for path, rec in todo:
        if rec.result == 'ok':
            mark_out_of_date(path, rec, unsynced)
    if unsynced:
        fsync_all(unsynced)
    return cmd_redo(args if names else args + ['all'], env, 'rebuild')


def mark_out_of_date(path, rec, unsynced):
    """Writes the state of the target at path as MARKED, holding its lock,
    unless a build holds it or its state changed since rec was read."""
    fd = try_lock(state_file(path, LOCK_SUFFIX))
    if fd is None:
        return
    try:
        fresh = read_record(path)
        if fresh is not None and fresh.result == 'ok' and fresh.build == rec.build:
            fresh.result = MARKED
            write_record(path, fresh, unsynced)
    finally:
        os.close(fd)


LOG_FLAGS = {'r': False, 'recursive': False, 'u': False, 'unchanged': False,
             'f': False, 'follow': False, 'trace': True}


def cmd_log(args, env):
    # -u: apenwarr's redo-log shows the dependencies that were not rebuilt
    # only with it; this one shows them always, so it changes nothing.
    names, v = parse_options('log', args, None, LOG_FLAGS)
    g = Graph(env, getcwd())
    if 'trace' in v:
        return write_trace(g, v['trace'])
    if not names:
        names = ['all']
    recursive = v.get('r') or v.get('recursive')
    follow = v.get('f') or v.get('follow')
    out = std_stream('stdout')
    seen = set()
    stack = [(abs_path(g.cwd, n), 0) for n in reversed(names)]
    status = EXIT_OK
    while stack:
        path, depth = stack.pop()
        if depth == 0 and follow and path not in seen and lock_held(path):
            follow_log(g, path, out)
            seen.add(path)
            rec = read_record(path)
            if recursive and rec is not None:
                d = os.path.dirname(path)
                stack.extend((abs_path(d, dep.name), 1) for dep in reversed(rec.deps)
                             if dep.kind == 'Dep')
            continue
        rec = g.record(g.node(path))
        if rec is None:
            why = why_no_log(g, path)
            if depth == 0:
                sys.stderr.write('redo-log: %s: %s\n' % (quote(g.rel(path)), why))
                status = EXIT_FAILED
            elif not exists(path) and path not in seen:
                seen.add(path)        # redo's word on a dependency it could not build
                out.write(('%sredo %s (not built: %s)\n' % ('  ' * depth, g.rel(path), why))
                          .encode('utf-8', 'surrogateescape'))
            continue
        if path in seen:
            continue
        seen.add(path)
        write_log(g, path, rec, '  ' * depth, out)
        if recursive:
            d = os.path.dirname(path)
            for dep in reversed(rec.deps):
                if dep.kind == 'Dep':
                    stack.append((abs_path(d, dep.name), depth + 1))
    out.flush()
    return status


def write_log(g, path, rec, indent, out):
    """The stored log of the target at path, whose state is rec, after
    its head line, each line after indent."""
    out.write((indent + log_head(g, path, rec)).encode('utf-8', 'surrogateescape'))
    log = read_bytes_or_none(state_file(path, LOG_SUFFIX)) or b''
    for line in log.splitlines():
        out.write(indent.encode() + b'  ' + line + b'\n')
    if rec.result == 'failed' and rec.why:
        out.write(('%s  redo: %s failed: %s\n' % (indent, g.rel(path), rec.why))
                  .encode('utf-8', 'surrogateescape'))


def log_head(g, path, rec):
    """The line that heads a target's log: its last build's result."""
    return 'redo %s (%s, %s, %.3fs)\n' % (
        g.rel(path), 'ok' if rec.result in ('ok', MARKED) else 'FAILED',
        'exit %d' % rec.exit if rec.exit >= 0 else 'killed by signal %d' % -rec.exit,
        rec.seconds)


def why_no_log(g, path):
    """Why the file at path, which has no state, has no log: redo's own
    message when it could not build it."""
    if exists(path):
        return 'a source file: redo does not build it'
    if g.find_do(path) is None:
        return 'no .do file to build it, and it does not exist'
    return 'redo has not built it yet'


def lock_held(path):
    """Whether a build holds the lock of the target at path.  Told by a
    shared lock taken for an instant: a build that tries to start just then
    waits for its next try (50 ms)."""
    import fcntl
    try:
        fd = os.open(state_file(path, LOCK_SUFFIX), os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def follow_log(g, path, out):
    """redo-log -f: prints the stderr of the running build of path as it
    comes (it goes to .redo/log/NAME, which becomes NAME.log when the
    build ends), until its lock is released; then the line of its result."""
    import time
    before = read_record(path)
    since = time.time()
    out.write(('redo %s (building)\n' % g.rel(path)).encode('utf-8', 'surrogateescape'))
    out.flush()
    live = tmp_file(path, LOG_TMP_DIR)
    fd = None                     # the log being written, once seen
    seen_log = None               # its (dev, inode)
    part = [b'']                  # a line not ended yet
    def show(data, final=False):
        lines = (part[0] + data).split(b'\n')
        part[0] = lines.pop()
        if final and part[0]:
            lines.append(part[0])
        for line in lines:
            out.write(b'  ' + line + b'\n')
        out.flush()
    while True:
        running = lock_held(path)
        fd, seen_log = newest_log(live, fd, seen_log)
        if fd is not None:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                show(data)
        if not running:
            break
        time.sleep(0.1)
    if fd is not None:
        os.close(fd)
    else:
        # Its stderr came and went between two looks.
        st = lstat_or_none(state_file(path, LOG_SUFFIX))
        if st is not None and st.st_mtime >= since:
            show(read_bytes_or_none(state_file(path, LOG_SUFFIX)) or b'')
    show(b'', final=True)
    rec = read_record(path)
    if rec is None or rec.result == GARBLED or before is not None and \
            (rec.run, rec.started) == (before.run, before.started):
        out.write(('redo %s (interrupted)\n' % g.rel(path)).encode('utf-8', 'surrogateescape'))
    else:
        out.write(log_head(g, path, rec).encode('utf-8', 'surrogateescape'))
    out.flush()


def newest_log(live, fd, seen_log):
    """(fd, seen_log) of the log being written at live: fd, open on the
    one with (dev, inode) seen_log, is replaced by a newer one."""
    st = lstat_or_none(live)
    if st is not None and (st.st_dev, st.st_ino) != seen_log:
        # A new log: the one this build writes (a killed run's is
        # removed when the .do starts, and a new one made).
        try:
            new = os.open(live, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            new = None
        if new is not None:
            if fd is not None:
                os.close(fd)
            fd, seen_log = new, (st.st_dev, st.st_ino)
    return fd, seen_log


def write_trace(g, dest):
    """The last run under this directory as Chrome trace-event JSON: one
    complete ('X') event per target, on the thread of the slot it ran in."""
    import json
    recs = list(walk_records(g.cwd))
    runs = [rec.run for p, rec in recs if rec.run]
    if not runs:
        raise Error('redo-log: no build recorded under %s' % quote(g.cwd))
    def when(run):                # its start, in ns; a garbled one is oldest
        start = run.split('.')[0]
        return int(start) if start.isdigit() else -1
    last = max(runs, key=when)
    events = [{'name': 'process_name', 'ph': 'M', 'pid': 1, 'tid': 0,
               'args': {'name': 'redo ' + g.cwd}}]
    t0 = min(rec.started for p, rec in recs if rec.run == last)
    for p, rec in recs:
        if rec.run != last:
            continue
        args = {'exit' if rec.exit >= 0 else 'signal': abs(rec.exit),
                'result': rec.result, 'do': rec.do}
        ran = []
        for part in rec.ran.split():
            try:
                times, _, slot = part.partition('@')
                a, _, d = times.partition('+')
                ran.append((float(a), float(d), int(slot)))
            except ValueError:
                ran = []
                break
        if not ran:
            ran = [(0.0, rec.seconds, rec.slot)]
        elif len(ran) > 1:
            args['waited'] = round(rec.seconds - sum(d for a, d, slot in ran), 6)
        for a, d, slot in ran:    # its time in a slot: waiting is not work
            events.append({'name': g.rel(p), 'cat': 'target', 'ph': 'X', 'pid': 1,
                           'tid': slot, 'ts': round((rec.started + a - t0) * 1e6),
                           'dur': round(d * 1e6), 'args': args})
    data = json.dumps({'traceEvents': events, 'displayTimeUnit': 'ms'}, indent=1)
    if dest == '-':
        out = std_stream('stdout')
        out.write(data.encode() + b'\n')
        out.flush()
    else:
        try:
            with open(dest, 'w') as f:
                f.write(data + '\n')
        except OSError as e:
            raise Error('redo-log: cannot write %s: %s' % (quote(dest), e.strerror), EXIT_USAGE)
    return EXIT_OK


def cmd_dot(args, env):
    names, _ = parse_options('dot', args, None, {})
    g = Graph(env, getcwd())
    if names:
        todo = [abs_path(g.cwd, n) for n in names]
    else:
        todo = [p for p, rec in walk_records(g.cwd)]
    lines = ['digraph redo {', '  rankdir=LR;', '  node [fontsize=10];']
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        n = g.node(p)
        rec = g.record(n)
        label = _dot_quote(g.rel(p))
        if rec is None:
            lines.append('  %s [shape=ellipse];' % label)
            continue
        ood = g.why_static(n) is not None
        lines.append('  %s [shape=box%s];' % (label, ', color=red, fontcolor=red' if ood else ''))
        d = os.path.dirname(p)
        for dep in rec.deps:
            dp = abs_path(d, dep.name)
            style = ' [style=dashed]' if dep.kind == 'Ifcreate' else ''
            lines.append('  %s -> %s%s;' % (label, _dot_quote(g.rel(dp)), style))
            if dep.kind == 'Dep':
                todo.append(dp)
            elif dp not in seen:
                seen.add(dp)
                lines.append('  %s [shape=ellipse, style=dashed];' % _dot_quote(g.rel(dp)))
    lines.append('}')
    print_paths(lines)
    return EXIT_OK


def _dot_quote(s):
    return '"%s"' % s.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


# =============================================================================
# §20 Dispatch and main
# =============================================================================

COMMANDS = {
    'redo': cmd_redo, 'ifchange': cmd_ifchange, 'ifcreate': cmd_ifcreate,
    'always': cmd_always, 'stamp': cmd_stamp, 'recheck': cmd_recheck, 'ood': cmd_ood,
    'targets': cmd_targets, 'sources': cmd_sources, 'whichdo': cmd_whichdo,
    'log': cmd_log, 'dot': cmd_dot, 'affects': cmd_affects,
    'cleanup': cmd_cleanup, 'clean': cmd_clean, 'cleandead': cmd_cleandead,
    'rebuild': cmd_rebuild,
}


def command_of(argv):
    """(command, args) from the program name, or from the first argument
    when started as redo.py (or any name but redo and redo-*): for the
    command `redo` every argument is a target, even one named `sources`.
    `clean` and the like are targets too (PREFIXED_ONLY)."""
    name = os.path.basename(argv[0])
    if name.startswith('redo-') and name[5:] in COMMANDS:
        return name[5:], argv[1:]
    if len(argv) > 1 and name != 'redo':
        first = argv[1]
        if first.startswith('redo-') and first[5:] in COMMANDS:
            return first[5:], argv[2:]
        if first in COMMANDS and first not in PREFIXED_ONLY:
            return first, argv[2:]
    return 'redo', argv[1:]


def error_line(cmd, e):
    """An error as main prints it: one line that starts with the name of
    the command, whichever part of redo raised it."""
    msg = str(e)
    name = prog(cmd)
    if msg.startswith('redo: '):          # Options.apply's
        msg = msg[len('redo: '):]
    if not msg.startswith(name + ': '):
        msg = '%s: %s' % (name, msg)
    return msg + '\n'


def _exit_on_signal(signum, frame):
    """Until a command sets its own: leave at once, quietly, 128+signum."""
    os._exit(EXIT_SIGNAL + signum)


def main(argv):
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    guard_std_fds()
    cmd, args = command_of(argv)
    env = os.environ
    try:
        return COMMANDS[cmd](args, env)
    except Done as d:
        try:
            std_stream('stdout').write(str(d).encode())
        except Error as e:
            sys.stderr.write(error_line(cmd, e))
            return e.status
        return EXIT_OK
    except Error as e:
        sys.stderr.write(error_line(cmd, e))
        return e.status
    except BrokenPipeError:
        # The reader went away (`redo-targets | head`): not worth a word.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return EXIT_FAILED
    except OSError as e:
        sys.stderr.write(error_line(cmd, os_error(e)))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_SIGNAL + 2


if __name__ == '__main__':
    # `python3 redo.py`: imports must not find the project's own files.
    if sys.path and sys.path[0] in ('', os.path.dirname(os.path.abspath(__file__))):
        del sys.path[0]
    status = main(sys.argv)
    # Everything is written and closed by now: leave without the
    # interpreter's teardown, which frees every object one by one (2 to 4 ms,
    # a tenth of a no-op check).  Unless the output cannot be flushed: then
    # the usual exit says so.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        sys.exit(status)
    if type(status) is not int:
        sys.exit(status)
    os._exit(status)
