#!/usr/bin/env python3
"""bench.py: how fast is redo.py, next to other redos and to plain sh?

Run it from anywhere (standard library only, Python 3.8+):

    python3 t/bench.py                  # N=1000 and N=10000, 100000 sources,
                                        # 5 runs each (long)
    python3 t/bench.py --quick          # N=1000 only, no sources tree, 3 runs
    python3 t/bench.py --quick --only redo.py
    python3 t/bench.py --vs ~/src/redo/bin --vs goredo=/opt/goredo/bin
    python3 t/bench.py -n 200 --chain 100 --runs 3 --json out.json

What it builds
--------------
Trees are generated in a temporary directory (kept with --keep):

  wide-N    N sources srcK (one line each), N targets tK where tK.do is
            `redo-ifchange srcK; cat srcK >"$3"`, and a virtual target `all`
            whose all.do is one `redo-ifchange t0 t1 ... tN-1` line
            (one call; Linux takes a long argv). N = 1000 and 10000 by
            default; --quick keeps 1000 only; -n N (repeatable) sets them
            (-n 0 alone: no wide tree).
  chain-D   a chain of D targets: c0.do does `redo-ifchange src` and writes
            "0 <first line of src>"; cK.do does `redo-ifchange cK-1` and writes
            "K <the rest of cK-1's line>", so a change of src travels all the
            way up. D = 1000 (--chain D; 0 leaves it out). The top is cD-1.
  sources-N N sources sK (one short line each) and an all.do that is one
            `redo-ifchange s0 s1 ... sN-1` line: N sources checked in one
            call, for the memory and the no-op time of a large call. The
            names are short so that the call also fits in one argv for a
            tool that execs redo-ifchange (about 1.5 MB at N = 100000;
            ARG_MAX is usually 2 MiB; the script says so when it does not
            fit). Only the full and noop steps are run (there is nothing
            to touch or change but sources). N = 100000 (--sources N; 0
            leaves it out); --quick leaves it out unless --sources is given.
            A default run stays reasonable with it: on 2 CPUs and tmpfs it
            adds about two minutes (a copy of the tree, a full build and a
            no-op per run and series, 3-5 s in all), where wide-10000 takes
            ten or more.

What it measures
----------------
For every implementation and job count, on a fresh copy of the tree, in this
order (each one a whole process, timed with perf_counter around it):

  full    `redo-ifchange -jJ TOP` on the fresh copy: everything is built.
  noop    the same command again right away: nothing needs building
          (redo.py answers it from the memo the full build left: README,
          Speed).
  touch   after os.utime gives one source a new mtime, content unchanged
          (srcN/2, or src in the chain). redo.py rebuilds nothing (SPEC §4).
  change  after that source's content changed: the wide tree rebuilds one
          target (and runs all.do), the chain rebuilds all D targets.

(The sources tree has full and noop only.)

J is 1 and 2, passed as -j1 / -j2 to the top-level redo-ifchange. An
implementation whose redo-ifchange does not take -jN is run once, with its
default job count (shown as "-j -"), and that is said in the notes.

Each series is repeated R times (--runs R, default 5; 3 with --quick), runs
interleaved across implementations; the tables show the median.

Peak memory is the ru_maxrss that os.wait4 returns for the top-level process:
the largest resident set of any single process in the tree it spawned (the
coordinator, usually), not the sum over all of them.

After each step the script also checks the outputs (every target's content
follows its sources) and counts the targets rebuilt (target files whose inode,
mtime or size changed). A wrong output counts as a failure.

The floor
---------
"floor (sh)" is the cost of the .do bodies alone, with no build tool: a
generated sh script (the driver, one `/bin/sh` for the whole step) that,
for each .do that must run in a step, in dependency order, sequentially,
runs

    /bin/sh -e -c "$P" tK.do tK tK tK >.floor-out/tK

where $P is `alias redo=: redo-ifchange=: redo-ifcreate=: redo-always=:
redo-stamp=:; . "./$0"`. That is one sh process per .do (the driver's fork,
which execs sh), and nothing else: the redo commands in the .do are aliases
of the builtin `:` (their arguments are expanded, no process starts), the
.do is sourced under `sh -e` with $0 = tK.do and $1 $2 $3 set as redo.py
does it, and its stdout goes to a file of its own, as redo gives it. $3 is
the target itself, so there is no mv after (all.do writes nothing; its $3
is `all`). Its steps: full runs every .do (then all.do for the wide
tree; only all.do for the sources tree); noop and touch run an empty script
(one sh start: nothing needs doing); change runs tN/2.do and all.do for the
wide tree, every cK.do for the chain. At -j2 the full build of the wide
tree splits the tK.do runs into two halves, run by two sh at once, then
runs all.do: what the .do bodies gain from a second CPU, with no build tool
in the way. Every other floor step is the same at -j1 and -j2 (nothing
there can run in parallel). The columns that compare with the floor
(ms/target>floor, x floor, cpu ms/t>floor) always use the floor's -j1
median of the same tree and step, also in the floor's -j2 row.

Which implementations
---------------------
  redo.py      always: ../redo.py next to this file, copied when the script
               starts (editing it meanwhile changes nothing), behind a
               temporary bin directory of symlinks to the copy (redo,
               redo-ifchange, redo-ifcreate, ...).
  --vs DIR     a directory holding another implementation's redo and
               redo-ifchange; label it with --vs NAME=DIR (default: the dir
               name, or its parent's name when it is called bin).
  PATH         every other `redo` on PATH that is not redo.py (not a link to
               it and not a copy of it), labelled PATH:DIR.
  --only L     run only the implementations labelled L (repeatable), e.g.
               --only redo.py to leave out every peer. The floor always runs.

Each runs with PATH = its bin directory + the original PATH, in an
environment without REDO_* variables or MAKEFLAGS/MFLAGS (so that a run from
inside a build does not join it). --no-sync sets REDO_NO_SYNC=1 for everyone;
by default each implementation syncs (or not) as it does by default.

An implementation is first tried on a one-target tree. If that fails, or any
step fails later (non-zero exit, time-out, wrong output), the report names
the step and run, the exit status and the last lines of its output, and the
rest of that implementation's runs at that job count are skipped; the other
implementations go on.

Reading the output
------------------
One table per tree and step:

  implementation   who ran it (floor (sh) first)
  -j               the job count passed, "-" when the tool took none
  median s         median wall-clock seconds of the whole top-level process
  ms/target>floor  (median - floor median) / targets in the tree, in ms: what
                   the tool costs per target on top of running the .do files
                   (for noop and touch: the cost of checking one target;
                   below 0 at -j2: faster than the sequential floor; per
                   source for the sources tree; "-" in the floor -j1 row,
                   the reference)
  x redo.py        median / redo.py's median at the same -j (below 1: faster;
                   a "-" row is compared with redo.py -j1)
  x floor          median / floor median
  cpu s            median CPU time, user + system, of the top-level process
                   and every process it waited for (wait4's rusage): the
                   work done, whatever the -j. On C CPUs no run can take
                   less than cpu s / C seconds
  cpu ms/t>floor   (cpu s - the floor's -j1 cpu s) / targets, in ms: the
                   CPU the tool spends per target beyond the .do bodies,
                   whatever the -j (per source for the sources tree)
  busy             cpu s / (J x median s), J the -j value (os.cpu_count()
                   in a "-" row): how busy the run kept the CPUs its -j
                   allows; 1 is every one of them all the time. It can pass
                   1 when a tool uses more CPUs than its -j (redo.py starts
                   the next .do's shell ahead on an idle CPU)
  peak MiB         median of the peak RSS (see above)
  rebuilt          targets whose file was replaced; "!" marks a count that
                   differs from what SPEC.md asks of redo.py (full: all,
                   noop: 0, touch: 0, change: 1 wide / D chain; 0 for the
                   sources tree, which has no file target)

After the tables, when redo.py ran, its goals, each with the measured
median and "ok" or "MISS" ("not measured" when that series failed), for
the trees that were run:

  full -j2, wide trees     wall <= 0.55 x cpu s (busy >= 0.91)
  full -j1/-j2, wide and   cpu ms/t>floor <= 1.0
    chain trees
  noop -j1/-j2             wall <= 0.03 s at 1000 targets, 0.2 s at 10000,
                           2 s at 100000 (wide or sources tree)
  wide-10000, sources-     peak < 50 MB (wide-10000), < 250 MB
    100000                 (sources-100000): the largest median peak of
                           any step and -j, in MB of 10^6 bytes

Then the notes (e.g. "-j2 skipped") and the failures in detail.

Options: --runs R, --quick, -n N, --chain D, --sources N, --vs [NAME=]DIR,
--only LABEL, --no-sync, --keep, --json FILE (every raw time, CPU time, RSS
and count), --timeout SEC (per top-level command, default 1800), --tmpdir
DIR (where the work directory goes; file systems differ).

Exit status: 0 when redo.py and the floor ran every step correctly, 1 when
one of them failed (peers' failures are only reported), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

# ---------------------------------------------------------------------------
# §1 Constants
# ---------------------------------------------------------------------------

REDO_PY = Path(__file__).resolve().parent.parent / "redo.py"
OURS = "redo.py"
FLOOR = "floor (sh)"
COMMANDS = (
    "redo", "redo-ifchange", "redo-ifcreate", "redo-always", "redo-stamp",
    "redo-ood", "redo-targets", "redo-sources", "redo-whichdo", "redo-log",
    "redo-dot", "redo-affects", "redo-cleanup",
)
STEPS = ("full", "noop", "touch", "change")
STEP_TITLES = {
    "full": "full build",
    "noop": "no-op rebuild",
    "touch": "after touch of one source (content unchanged)",
    "change": "after changing one source's content",
}
JOB_LEVELS = ("1", "2")
DEFAULT_JOBS = "-"          # the tool took no -jN: its own default
DROPPED_ENV_PREFIXES = ("REDO",)
DROPPED_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DO_BUILT")
TAIL_LINES = 12
PROBE_TIMEOUT = 60
SH = "/bin/sh"              # what redo.py runs a .do with
FLOOR_OUT = ".floor-out"    # the floor's stdout files, one per .do run
# The floor's .do runs: the redo commands are aliases of `:` (no process,
# no work but expanding their arguments), then the .do is sourced.
FLOOR_PRELUDE = ("alias redo=: redo-ifchange=: redo-ifcreate=: "
                 "redo-always=: redo-stamp=:; . \"./$0\"")
DEFAULT_SOURCES = 100000    # --sources without --quick

# The goals redo.py is measured against (printed after the tables).
GOAL_BUSY_J2 = 0.55         # full build at -j2: wall <= this x cpu
GOAL_CPU_MS = 1.0           # full build: cpu ms per target over the floor
GOAL_NOOP_S = {1000: 0.03, 10000: 0.2, 100000: 2.0}    # items -> seconds
GOAL_PEAK_MB = {("wide", 10000): 50, ("sources", 100000): 250}

# ---------------------------------------------------------------------------
# §2 Process running
# ---------------------------------------------------------------------------


@dataclass
class Context:
    """What every run shares; made once in main."""
    work: Path                  # the temporary work directory
    env: Dict[str, str]         # the environment minus outer-build variables
    runs: int
    timeout: float              # seconds per top-level command
    gnu_time: Optional[str]     # GNU time, to take peak RSS, if there is one


@dataclass
class Outcome:
    """One finished top-level command."""
    seconds: float
    rss_kib: int
    status: int             # exit status; -SIG when killed by a signal
    message: str = ""       # why it could not run / was killed, if so
    cpu: float = 0.0        # user + system seconds of the whole process tree


def exit_status(wait_status: int) -> int:
    """The exit status in a wait status, or -SIGNAL (Python 3.8 has no waitstatus_to_exitcode)."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def kill_group(pid: int) -> None:
    """Kills the process group led by pid, if it still exists."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def find_gnu_time() -> Optional[str]:
    """/usr/bin/time if it is GNU time (its -f %M is the peak RSS in KiB)."""
    for candidate in ("/usr/bin/time", shutil.which("gtime")):
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        try:
            version = subprocess.run(
                [candidate, "--version"], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if b"GNU" in version:
            return candidate
    return None


def run_timed(ctx: Context, argv: List[str], cwd: Path, env: Dict[str, str],
              log: Path) -> Outcome:
    """Runs argv to its end with output into log; times it, takes its RSS.

    A forked child's peak RSS counts what it had before exec, so wait4 from
    here would report at least our own size. GNU time, where there is one,
    is a small process in between that reports the peak of what it ran.
    """
    if not ctx.gnu_time:
        return run_waited(argv, cwd, env, log, ctx.timeout)
    rss_file = log.with_name(log.name + ".rss")
    out = run_waited([ctx.gnu_time, "-f", "%M", "-o", str(rss_file)] + argv,
                     cwd, env, log, ctx.timeout)
    try:
        out.rss_kib = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        out.rss_kib = 0
    return out


def run_waited(argv: List[str], cwd: Path, env: Dict[str, str],
               log: Path, timeout: float) -> Outcome:
    """Runs argv to its end with output into log; its time and wait4 RSS.

    The command leads its own process group so that a time-out (or our own
    Ctrl-C) can stop everything it started.
    """
    timed_out = threading.Event()
    with open(log, "wb") as out:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return Outcome(0.0, 0, 127, "cannot start %s: %s" % (argv[0], e))
        timer = threading.Timer(timeout, lambda: (timed_out.set(),
                                                   kill_group(proc.pid)))
        timer.start()
        try:
            _, wait_status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill_group(proc.pid)
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    proc.returncode = exit_status(wait_status)   # already reaped
    message = "timed out after %gs" % timeout if timed_out.is_set() else ""
    return Outcome(seconds, rss_kib(usage.ru_maxrss), proc.returncode, message,
                   usage.ru_utime + usage.ru_stime)


def rss_kib(ru_maxrss: int) -> int:
    """ru_maxrss in KiB (macOS reports bytes, the others KiB)."""
    return ru_maxrss // 1024 if sys.platform == "darwin" else ru_maxrss


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log file, for error reports."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").rstrip("\n")
    return "\n".join(text.split("\n")[-lines:])


def clean_env(no_sync: bool) -> Dict[str, str]:
    """Our environment minus anything that would tie a run to an outer build."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(DROPPED_ENV_PREFIXES) and k not in DROPPED_ENV}
    if no_sync:
        env["REDO_NO_SYNC"] = "1"
    return env


def env_with_bin(base: Dict[str, str], bindir: Path) -> Dict[str, str]:
    """base with bindir in front of PATH."""
    env = dict(base)
    env["PATH"] = str(bindir) + os.pathsep + base.get("PATH", os.defpath)
    return env


def copy_tree(src: Path, dst: Path) -> None:
    """Copies a tree, times kept: `cp -pR` (more than twice as fast as
    shutil.copytree on 100000 small files), else shutil."""
    try:
        if subprocess.run(["cp", "-pR", str(src), str(dst)],
                          stdin=subprocess.DEVNULL).returncode == 0:
            return
    except OSError:
        pass
    remove_tree(dst)
    shutil.copytree(str(src), str(dst), symlinks=True)


def remove_tree(path: Path) -> None:
    """Removes a directory tree, even one with read-only directories in it."""
    def make_writable_and_retry(func, name, _exc):
        os.chmod(os.path.dirname(name), 0o755)
        func(name)
    if path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


# ---------------------------------------------------------------------------
# §3 Trees
# ---------------------------------------------------------------------------


@dataclass
class Tree:
    """A generated benchmark tree and what a correct build of it yields."""
    name: str
    kind: str               # "wide", "chain" or "sources"
    pristine: Path          # never built in; copied for every run
    top: str                # the target given to the top-level command
    targets: List[str]      # file targets, for rebuilt counts
    source: str             # the source that touch and change modify
    expected: Callable[[Path], Dict[str, str]]   # target -> content
    expect_rebuilt: Dict[str, int]
    floors: Dict[str, Path] = field(default_factory=dict)   # step -> script
    steps: Tuple[str, ...] = STEPS
    count: int = 0          # what the per-item columns divide by
    unit: str = "targets"   # what count counts


def floor_line(target: str) -> str:
    """The floor's run of one .do: one sh, stdout into a file, no mv.

    The sh sources the .do as redo.py does (`. "$0"` under `sh -e`) with
    $1 $2 $3 set; $3 is the target itself, so nothing is moved after.
    """
    return '%s -e -c "$P" %s.do %s %s %s >%s/%s' % (
        SH, target, target, target, target, FLOOR_OUT, target)


def write_floor(path: Path, targets: List[str], mkdir: bool = True) -> Path:
    """Writes a sh script that runs each target's .do in order."""
    lines = ["set -e", "P='%s'" % FLOOR_PRELUDE]
    if mkdir and targets:
        lines.append("mkdir -p %s" % FLOOR_OUT)
    lines += [floor_line(t) for t in targets]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_floor_halves(dir: Path, targets: List[str], last: str) -> Path:
    """The -j2 floor: targets split between two sh at once, then last."""
    half = len(targets) // 2
    a = write_floor(dir / "half1.sh", targets[:half], mkdir=False)
    b = write_floor(dir / "half2.sh", targets[half:], mkdir=False)
    path = dir / "full-j2.sh"
    path.write_text(
        "set -e\nP='%s'\nmkdir -p %s\n%s %s & p=$!\n%s %s\nwait $p\n%s\n" % (
            FLOOR_PRELUDE, FLOOR_OUT, SH, a, SH, b, floor_line(last)))
    return path


def make_wide_tree(work: Path, n: int) -> Tree:
    """The wide tree: n independent targets under one virtual `all`."""
    name = "wide-%d" % n
    root = work / "pristine" / name
    root.mkdir(parents=True)
    targets = ["t%d" % k for k in range(n)]
    for k, target in enumerate(targets):
        (root / ("src%d" % k)).write_text("source %d\n" % k)
        (root / (target + ".do")).write_text(
            'redo-ifchange src%d\ncat src%d >"$3"\n' % (k, k))
    (root / "all.do").write_text("redo-ifchange " + " ".join(targets) + "\n")
    mid = n // 2
    tree = Tree(
        name=name, kind="wide", pristine=root, top="all", targets=targets,
        source="src%d" % mid,
        expected=lambda d: {t: (d / ("src" + t[1:])).read_text()
                            for t in targets},
        expect_rebuilt={"full": n, "noop": 0, "touch": 0, "change": 1},
        count=n)
    floors = work / "floors" / name
    floors.mkdir(parents=True)
    tree.floors = {
        "full": write_floor(floors / "full.sh", targets + ["all"]),
        "full-j2": write_floor_halves(floors, targets, "all"),
        "noop": write_floor(floors / "none.sh", []),
        "change": write_floor(floors / "change.sh", ["t%d" % mid, "all"]),
    }
    tree.floors["touch"] = tree.floors["noop"]
    return tree


def chain_expected(d: Path, depth: int) -> Dict[str, str]:
    """What every cK of a chain holds, given the chain's src."""
    with open(d / "src") as f:
        line = f.readline().rstrip("\n")
    return {"c%d" % k: "%d %s\n" % (k, line) for k in range(depth)}


def make_chain_tree(work: Path, depth: int) -> Tree:
    """The deep chain: cK depends on cK-1, c0 on src."""
    name = "chain-%d" % depth
    root = work / "pristine" / name
    root.mkdir(parents=True)
    (root / "src").write_text("chain source\n")
    (root / "c0.do").write_text(
        'redo-ifchange src\nread -r line <src\necho "0 $line" >"$3"\n')
    for k in range(1, depth):
        (root / ("c%d.do" % k)).write_text(
            'redo-ifchange c%d\nread -r k rest <c%d\necho "%d $rest" >"$3"\n'
            % (k - 1, k - 1, k))
    targets = ["c%d" % k for k in range(depth)]
    tree = Tree(
        name=name, kind="chain", pristine=root, top=targets[-1],
        targets=targets, source="src",
        expected=lambda d: chain_expected(d, depth),
        expect_rebuilt={"full": depth, "noop": 0, "touch": 0,
                        "change": depth},
        count=depth)
    floors = work / "floors" / name
    floors.mkdir(parents=True)
    tree.floors = {"full": write_floor(floors / "full.sh", targets),
                   "noop": write_floor(floors / "none.sh", []),
                   "change": write_floor(floors / "change.sh", targets)}
    tree.floors["touch"] = tree.floors["noop"]
    return tree


def argv_bytes(names: List[str]) -> int:
    """What execve counts for an argv of names: the strings and pointers."""
    return sum(len(n) + 1 + 8 for n in names)


def make_sources_tree(work: Path, n: int) -> Tree:
    """n sources s0..sN-1 and an all.do that is one redo-ifchange of them all.

    The names are short so that the call also fits in one argv for a tool
    that execs redo-ifchange (about 1.5 MB at n = 100000; ARG_MAX is
    usually 2 MiB). Only full and noop are run: nothing here is a target.
    """
    name = "sources-%d" % n
    root = work / "pristine" / name
    root.mkdir(parents=True)
    sources = ["s%d" % k for k in range(n)]
    for k, source in enumerate(sources):
        with open(str(root / source), "w") as f:
            f.write("%d\n" % k)
    (root / "all.do").write_text("redo-ifchange " + " ".join(sources) + "\n")
    try:
        arg_max = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        arg_max = 0
    if arg_max and argv_bytes(sources) > arg_max:
        progress("%s: one argv of %d names takes %d bytes, over ARG_MAX %d: "
                 "a tool that execs redo-ifchange will fail" % (
                     name, n, argv_bytes(sources), arg_max))
    tree = Tree(
        name=name, kind="sources", pristine=root, top="all", targets=[],
        source="", expected=lambda d: {},
        expect_rebuilt={"full": 0, "noop": 0}, steps=("full", "noop"),
        count=n, unit="sources")
    floors = work / "floors" / name
    floors.mkdir(parents=True)
    tree.floors = {"full": write_floor(floors / "full.sh", ["all"]),
                   "noop": write_floor(floors / "none.sh", [])}
    return tree


def prepare_step(tree: Tree, copy: Path, step: str, run: int) -> None:
    """Makes the change to the tree copy that a step measures."""
    path = copy / tree.source
    if step == "touch":
        st = path.stat()
        new = max(time.time_ns(), st.st_mtime_ns + 1000000)
        os.utime(path, ns=(st.st_atime_ns, new))
    elif step == "change":
        old = path.read_text().rstrip("\n")
        path.write_text("%s, changed in run %d\n" % (old, run + 1))


def snapshot(copy: Path, targets: List[str]) -> Dict[str, tuple]:
    """(inode, mtime, size) of each target file that exists."""
    out = {}
    for t in targets:
        try:
            st = os.stat(copy / t)
        except OSError:
            continue
        out[t] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def count_rebuilt(before: Dict[str, tuple], after: Dict[str, tuple]) -> int:
    """How many targets were replaced (or created) between two snapshots."""
    return sum(1 for t, sig in after.items() if before.get(t) != sig)


def why_wrong(tree: Tree, copy: Path) -> Optional[str]:
    """None when every target holds what its sources say; else the first miss."""
    for target, want in tree.expected(copy).items():
        try:
            got = (copy / target).read_text()
        except OSError as e:
            return "target %s missing after the build (%s)" % (
                target, e.strerror)
        if got != want:
            return "target %s holds %r, expected %r" % (target, got, want)
    return None


# ---------------------------------------------------------------------------
# §4 Implementations
# ---------------------------------------------------------------------------


@dataclass
class Impl:
    """One redo (or the floor) and how to start it."""
    label: str
    bindir: Path                    # put first on PATH
    jobs: List[str] = field(default_factory=lambda: list(JOB_LEVELS))
    notes: List[str] = field(default_factory=list)
    error: Optional[str] = None     # set when it cannot run at all
    is_floor: bool = False          # plain sh running generated scripts

    def argv(self, tree: Tree, step: str, jobs: str) -> List[str]:
        """The top-level command for one step."""
        if self.is_floor:
            return [SH, str(tree.floors.get(step + "-j" + jobs,
                                            tree.floors[step]))]
        flags = [] if jobs == DEFAULT_JOBS else ["-j" + jobs]
        return [str(self.bindir / "redo-ifchange")] + flags + [tree.top]


def make_our_bin(work: Path) -> Impl:
    """redo.py behind a bin directory of symlinks named like each command.

    The links point at a copy taken now, so that editing redo.py while the
    benchmark runs neither changes what is measured nor makes exec fail
    (ETXTBSY).
    """
    bindir = work / "bin-redo.py"
    bindir.mkdir()
    impl = Impl(OURS, bindir)
    if not REDO_PY.is_file():
        impl.error = "%s does not exist" % REDO_PY
        return impl
    if not os.access(str(REDO_PY), os.X_OK):
        impl.error = "%s is not executable (chmod +x)" % REDO_PY
    snapshot = bindir / "redo.py"
    shutil.copy2(str(REDO_PY), str(snapshot))
    for name in COMMANDS:
        (bindir / name).symlink_to(snapshot.name)
    return impl


def make_floor_bin(work: Path) -> Impl:
    """The floor: its scripts alias the redo commands, so its bin is empty."""
    bindir = work / "bin-floor"
    bindir.mkdir()
    return Impl(FLOOR, bindir, is_floor=True)


def is_ours(exe: Path) -> bool:
    """Is exe redo.py itself, a link to it, or a copy of it?"""
    real = exe.resolve()
    if real == REDO_PY:
        return True
    try:
        return (real.stat().st_size == REDO_PY.stat().st_size
                and real.read_bytes() == REDO_PY.read_bytes())
    except OSError:
        return False


def label_for_dir(d: Path) -> str:
    """A short label for a --vs directory: its name, or its parent's."""
    d = d.resolve()
    return d.parent.name if d.name == "bin" and d.parent.name else d.name


def make_vs(spec: str) -> Impl:
    """An Impl from a --vs [NAME=]DIR argument."""
    name, sep, d = spec.partition("=")
    if not sep:
        name, d = "", spec
    bindir = Path(d).expanduser().resolve()
    impl = Impl(name or label_for_dir(bindir), bindir)
    if not (bindir / "redo-ifchange").is_file():
        impl.error = "no redo-ifchange in %s" % bindir
    return impl


def find_path_peers(path: str, skip: List[Path]) -> List[Impl]:
    """Every other redo on PATH with a redo-ifchange beside it."""
    seen = {p.resolve() for p in skip}
    peers = []
    for d in path.split(os.pathsep):
        exe = Path(d or ".") / "redo"
        if not (exe.is_file() and os.access(str(exe), os.X_OK)):
            continue
        real = exe.resolve()
        if real in seen or is_ours(exe):
            continue
        seen.add(real)
        impl = Impl("PATH:" + d, Path(d).resolve())
        if not (impl.bindir / "redo-ifchange").is_file():
            impl.error = "no redo-ifchange beside %s" % exe
        peers.append(impl)
    return peers


def unique_labels(impls: List[Impl]) -> None:
    """Renames repeated labels to label#2, label#3, ..."""
    seen: Dict[str, int] = {}
    for impl in impls:
        seen[impl.label] = seen.get(impl.label, 0) + 1
        if seen[impl.label] > 1:
            impl.label = "%s#%d" % (impl.label, seen[impl.label])


def slug(label: str) -> str:
    """A label made safe as a file name."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label)


def probe_one(ctx: Context, impl: Impl, d: Path, env: Dict[str, str],
              flags: List[str], target: str) -> Tuple[bool, str]:
    """Builds one trivial target with flags; (worked, what went wrong)."""
    (d / (target + ".do")).write_text('echo ok >"$3"\n')
    log = d / (target + ".log")
    argv = [str(impl.bindir / "redo-ifchange")] + flags + [target]
    out = run_waited(argv, d, env, log, min(ctx.timeout, PROBE_TIMEOUT))
    built = (d / target).is_file() and (d / target).read_text() == "ok\n"
    if out.status == 0 and built:
        return True, ""
    why = out.message or "exit status %d" % out.status
    if out.status == 0:
        why = "exit status 0 but %s was not built" % target
    return False, "`%s` in %s: %s\n%s" % (
        " ".join(["redo-ifchange"] + flags + [target]), d, why, tail(log))


def probe(ctx: Context, impl: Impl) -> None:
    """Checks that impl builds at all, and which -jN it takes."""
    d = ctx.work / "probe" / slug(impl.label)
    d.mkdir(parents=True)
    env = env_with_bin(ctx.env, impl.bindir)
    ok, why = probe_one(ctx, impl, d, env, [], "plain")
    if not ok:
        impl.error = "cannot build a one-line target: " + why
        return
    impl.jobs = [j for j in JOB_LEVELS
                 if probe_one(ctx, impl, d, env, ["-j" + j], "j" + j)[0]]
    rejected = [j for j in JOB_LEVELS if j not in impl.jobs]
    if not impl.jobs:
        impl.jobs = [DEFAULT_JOBS]
        impl.notes.append("its redo-ifchange takes no -jN: run once with "
                          "its default job count; -j1/-j2 skipped")
    elif rejected:
        impl.notes.append("its redo-ifchange rejects %s: skipped" % ", ".join(
            "-j" + j for j in rejected))


# ---------------------------------------------------------------------------
# §5 Measuring
# ---------------------------------------------------------------------------


@dataclass
class Series:
    """The samples of one (tree, implementation, -j, step)."""
    seconds: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)
    rss_kib: List[int] = field(default_factory=list)
    rebuilt: List[int] = field(default_factory=list)


@dataclass
class Failure:
    """Why a (tree, implementation, -j) stopped."""
    step: str
    run: int
    status: int
    message: str
    output: str


@dataclass
class Results:
    """Everything measured, keyed by (tree, label, jobs[, step])."""
    series: Dict[tuple, Series] = field(default_factory=dict)
    failures: Dict[tuple, Failure] = field(default_factory=dict)

    def get(self, tree: str, label: str, jobs: str, step: str) -> Series:
        return self.series.setdefault((tree, label, jobs, step), Series())


def run_steps(ctx: Context, impl: Impl, jobs: str, tree: Tree, copy: Path,
              run: int, results: Results) -> str:
    """Runs the tree's steps on a fresh copy; returns a progress summary."""
    remove_tree(copy)
    copy_tree(tree.pristine, copy)
    env = env_with_bin(ctx.env, impl.bindir)
    summary = []
    for step in tree.steps:
        prepare_step(tree, copy, step, run)
        before = snapshot(copy, tree.targets)
        log = copy.parent / ("%s.%s.log" % (copy.name, step))
        out = run_timed(ctx, impl.argv(tree, step, jobs), copy, env, log)
        rebuilt = count_rebuilt(before, snapshot(copy, tree.targets))
        problem = (out.message or ("exit status %d" % out.status
                                   if out.status else None)
                   or why_wrong(tree, copy))
        if problem:
            results.failures[(tree.name, impl.label, jobs)] = Failure(
                step, run + 1, out.status, problem, tail(log))
            summary.append("%s FAILED" % step)
            break
        series = results.get(tree.name, impl.label, jobs, step)
        series.seconds.append(out.seconds)
        series.cpu.append(out.cpu)
        series.rss_kib.append(out.rss_kib)
        series.rebuilt.append(rebuilt)
        summary.append("%s %.2fs" % (step, out.seconds))
    return ", ".join(summary)


def measure_tree(ctx: Context, tree: Tree, impls: List[Impl],
                 results: Results) -> None:
    """R rounds; each round runs every (implementation, -j) once."""
    combos = [(impl, jobs) for impl in impls if not impl.error
              for jobs in impl.jobs]
    for run in range(ctx.runs):
        for impl, jobs in combos:
            if (tree.name, impl.label, jobs) in results.failures:
                continue
            copy = ctx.work / "runs" / tree.name / (
                "%s-j%s" % (slug(impl.label), jobs))
            copy.parent.mkdir(parents=True, exist_ok=True)
            summary = run_steps(ctx, impl, jobs, tree, copy, run, results)
            progress("[%s] run %d/%d %s -j%s: %s" % (
                tree.name, run + 1, ctx.runs, impl.label, jobs, summary))


def progress(line: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# §6 Reporting
# ---------------------------------------------------------------------------

COLUMNS = ("implementation", "-j", "median s", "ms/target>floor",
           "x redo.py", "x floor", "cpu s", "cpu ms/t>floor", "busy",
           "peak MiB", "rebuilt")


def median(xs: List[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def fmt(x: Optional[float], spec: str) -> str:
    return "-" if x is None else format(x, spec)


def job_count(jobs: str) -> int:
    """The CPUs a -j value asks for; os.cpu_count() for the tool's default."""
    return int(jobs) if jobs != DEFAULT_JOBS else (os.cpu_count() or 1)


def busy(cpu: Optional[float], wall: Optional[float],
         jobs: str) -> Optional[float]:
    """cpu / (jobs x wall): how busy the CPUs the -j allows were kept."""
    if cpu is None or not wall:
        return None
    return cpu / (job_count(jobs) * wall)


def over_floor(x: Optional[float], floor: Optional[float],
               count: int) -> Optional[float]:
    """(x - floor) / count, in ms; None when either is missing."""
    if x is None or floor is None or not count:
        return None
    return (x - floor) / count * 1000


def rebuilt_cell(counts: List[int], expected: int) -> str:
    """The rebuilt count(s) of a series, with ! when not what SPEC asks."""
    lo, hi = min(counts), max(counts)
    cell = str(lo) if lo == hi else "%d-%d" % (lo, hi)
    return cell + ("!" if (lo, hi) != (expected, expected) else "")


def table_row(tree: Tree, impl: Impl, jobs: str, step: str,
              results: Results, runs: int) -> List[str]:
    """One table row: the medians of a series and how they compare.

    The floor columns compare with the floor's -j1 series of the same step;
    that row itself shows "-" there.
    """
    s = results.get(tree.name, impl.label, jobs, step)
    fail = results.failures.get((tree.name, impl.label, jobs))
    if not s.seconds:
        why = "FAILED (see below)" if fail else "not run"
        return [impl.label, jobs, why] + [""] * (len(COLUMNS) - 3)
    med, cpu = median(s.seconds), median(s.cpu)
    floor_s = results.get(tree.name, FLOOR, "1", step)
    floor, floor_cpu = median(floor_s.seconds), median(floor_s.cpu)
    if impl.label == FLOOR and jobs == "1":
        floor = floor_cpu = None        # the reference itself
    ours_jobs = "1" if jobs == DEFAULT_JOBS else jobs
    ours = median(results.get(tree.name, OURS, ours_jobs, step).seconds)
    label = impl.label
    if len(s.seconds) < runs:
        label += " (%d run%s)" % (len(s.seconds), "" if len(s.seconds) == 1
                                  else "s")
    return [label, jobs, fmt(med, ".3f"),
            fmt(over_floor(med, floor, tree.count), ".3f"),
            fmt(med / ours if ours and impl.label != FLOOR else None, ".2f"),
            fmt(med / floor if floor else None, ".2f"),
            fmt(cpu, ".3f"),
            fmt(over_floor(cpu, floor_cpu, tree.count), ".3f"),
            fmt(busy(cpu, med, jobs), ".2f"),
            fmt(median(s.rss_kib) / 1024, ".1f"),
            rebuilt_cell(s.rebuilt, tree.expect_rebuilt[step])]


def format_table(rows: List[List[str]]) -> str:
    """Columns padded to their widest cell; the first one left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def report(trees: List[Tree], impls: List[Impl], results: Results,
           runs: int) -> str:
    """The whole text report: tables, goals, then notes and failures."""
    parts = []
    for tree in trees:
        for step in tree.steps:
            rows = [list(COLUMNS)]
            for impl in impls:
                if impl.error:
                    continue
                for jobs in impl.jobs:
                    rows.append(table_row(tree, impl, jobs, step, results,
                                          runs))
            parts.append("%s: %s (%d %s, median of %d run%s)\n%s" % (
                tree.name, STEP_TITLES[step], tree.count, tree.unit, runs,
                "" if runs == 1 else "s",
                format_table(rows)))
    if any(i.label == OURS and not i.error for i in impls):
        parts.append("Goals (%s, medians)\n%s" % (
            OURS, format_table(goal_rows(trees, results))))
    notes = ["  %s: %s" % (i.label, n) for i in impls for n in i.notes]
    notes += ["  %s: NOT RUN: %s" % (i.label, indent_rest(i.error))
              for i in impls if i.error]
    if notes:
        parts.append("Notes\n" + "\n".join(notes))
    if results.failures:
        parts.append("Failures\n" + "\n".join(
            format_failure(key, f) for key, f in results.failures.items()))
    return "\n\n".join(parts) + "\n"


def verdict(met: Optional[bool]) -> str:
    return "not measured" if met is None else "ok" if met else "MISS"


def goal_busy(tree: Tree, results: Results) -> List[str]:
    """Full build at -j2: wall <= GOAL_BUSY_J2 x cpu."""
    s = results.get(tree.name, OURS, "2", "full")
    wall, cpu = median(s.seconds), median(s.cpu)
    met = None if wall is None or not cpu else wall <= GOAL_BUSY_J2 * cpu
    got = "-" if met is None else "wall/cpu %.2f (busy %.2f)" % (
        wall / cpu, busy(cpu, wall, "2"))
    return [tree.name, "full", "2",
            "wall <= %.2f x cpu (busy >= %.2f)" % (
                GOAL_BUSY_J2, 1 / (2 * GOAL_BUSY_J2)), got, verdict(met)]


def goal_cpu(tree: Tree, jobs: str, results: Results) -> List[str]:
    """Full build: cpu per target over the floor's -j1 cpu <= GOAL_CPU_MS."""
    cpu = median(results.get(tree.name, OURS, jobs, "full").cpu)
    floor = median(results.get(tree.name, FLOOR, "1", "full").cpu)
    ms = over_floor(cpu, floor, tree.count)
    return [tree.name, "full", jobs,
            "cpu ms/%s over floor <= %.1f" % (tree.unit[:-1], GOAL_CPU_MS),
            fmt(ms, ".3f"), verdict(None if ms is None else ms <= GOAL_CPU_MS)]


def goal_noop(tree: Tree, jobs: str, limit: float,
              results: Results) -> List[str]:
    """No-op: wall <= limit."""
    wall = median(results.get(tree.name, OURS, jobs, "noop").seconds)
    return [tree.name, "noop", jobs, "wall <= %g s" % limit,
            fmt(wall, ".3f"), verdict(None if wall is None else wall <= limit)]


def goal_peak(tree: Tree, limit: int, results: Results) -> List[str]:
    """Peak RSS (the largest median of any step and -j) < limit MB."""
    peaks = [median(s.rss_kib) for k, s in results.series.items()
             if k[0] == tree.name and k[1] == OURS and s.rss_kib]
    mb = max(peaks) * 1024 / 1e6 if peaks else None
    return [tree.name, "all", "all", "peak < %d MB" % limit,
            fmt(mb, ".1f") + ("" if mb is None else " MB"),
            verdict(None if mb is None else mb < limit)]


def goal_rows(trees: List[Tree], results: Results) -> List[List[str]]:
    """redo.py's goals for the trees that were run, measured and judged."""
    rows = [["tree", "step", "-j", "goal", "measured", ""]]
    for tree in trees:
        if tree.kind == "wide":
            rows.append(goal_busy(tree, results))
        if tree.kind in ("wide", "chain"):
            rows += [goal_cpu(tree, j, results) for j in JOB_LEVELS]
        if tree.kind in ("wide", "sources") and tree.count in GOAL_NOOP_S:
            rows += [goal_noop(tree, j, GOAL_NOOP_S[tree.count], results)
                     for j in JOB_LEVELS]
        if (tree.kind, tree.count) in GOAL_PEAK_MB:
            rows.append(goal_peak(tree, GOAL_PEAK_MB[tree.kind, tree.count],
                                  results))
    return rows


def indent_rest(text: str) -> str:
    """text with every line after the first indented under a list item."""
    return text.replace("\n", "\n      ")


def format_failure(key: tuple, f: Failure) -> str:
    tree, label, jobs = key
    head = "  %s -j%s on %s: %s, run %d: %s" % (
        label, jobs, tree, f.step, f.run, f.message)
    if not f.output:
        return head
    return head + "\n    last lines of its output:\n" + "\n".join(
        "      | " + line for line in f.output.split("\n"))


def machine_summary(ctx: Context) -> str:
    """Where the numbers come from."""
    rss = ("peak RSS by " + ctx.gnu_time if ctx.gnu_time else
           "no GNU time: peak RSS by wait4, at least this script's own size")
    return "python %s, %s, %s CPUs, /bin/sh = %s\n%s; work dir %s" % (
        platform.python_version(), platform.platform(), os.cpu_count(),
        os.path.realpath("/bin/sh"), rss, ctx.work)


def write_json(path: Path, trees: List[Tree], impls: List[Impl],
               results: Results, args: argparse.Namespace) -> None:
    """Every raw number, for later comparison."""
    data = {
        "machine": {"python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "sh": os.path.realpath("/bin/sh")},
        "options": {"runs": args.runs, "sizes": args.sizes,
                    "chain": args.chain, "sources": args.sources,
                    "no_sync": args.no_sync},
        "trees": [{"name": t.name, "kind": t.kind, "targets": len(t.targets),
                   "count": t.count, "unit": t.unit, "top": t.top,
                   "steps": list(t.steps),
                   "expect_rebuilt": t.expect_rebuilt} for t in trees],
        "implementations": [{"label": i.label, "bin": str(i.bindir),
                             "jobs": i.jobs, "notes": i.notes,
                             "error": i.error} for i in impls],
        "series": [{"tree": k[0], "implementation": k[1], "jobs": k[2],
                    "step": k[3], "seconds": s.seconds,
                    "median_seconds": median(s.seconds),
                    "cpu_seconds": s.cpu,
                    "median_cpu_seconds": median(s.cpu),
                    "peak_rss_kib": s.rss_kib, "rebuilt": s.rebuilt}
                   for k, s in results.series.items() if s.seconds],
        "failures": [{"tree": k[0], "implementation": k[1], "jobs": k[2],
                      "step": f.step, "run": f.run, "status": f.status,
                      "message": f.message, "output": f.output}
                     for k, f in results.failures.items()],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


# ---------------------------------------------------------------------------
# §7 Command line and main
# ---------------------------------------------------------------------------


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench.py", description="Time redo.py against other redo "
        "implementations and plain sh. See the docstring (pydoc t/bench.py).")
    p.add_argument("--runs", type=int, metavar="R",
                   help="runs per measurement (default 5; 3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="N=1000 only, 3 runs by default")
    p.add_argument("-n", type=int, action="append", dest="sizes",
                   metavar="N", help="wide tree size (repeatable); "
                   "default 1000 and 10000; 0: none")
    p.add_argument("--chain", type=int, default=1000, metavar="D",
                   help="depth of the chain tree (default 1000; 0: none)")
    p.add_argument("--sources", type=int, metavar="N",
                   help="N sources in one redo-ifchange call (default "
                   "%d; 0 with --quick; 0: none)" % DEFAULT_SOURCES)
    p.add_argument("--vs", action="append", default=[], metavar="[NAME=]DIR",
                   help="also time the redo in DIR (repeatable)")
    p.add_argument("--only", action="append", default=[], metavar="LABEL",
                   help="time only these implementations (repeatable)")
    p.add_argument("--no-sync", action="store_true",
                   help="set REDO_NO_SYNC=1 for every implementation")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write every raw number to FILE")
    p.add_argument("--timeout", type=float, default=1800, metavar="SEC",
                   help="limit per top-level command (default 1800)")
    p.add_argument("--tmpdir", metavar="DIR",
                   help="make the work directory in DIR")
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if not args.sizes:
        args.sizes = [1000] if args.quick else [1000, 10000]
    if args.sources is None:
        args.sources = 0 if args.quick else DEFAULT_SOURCES
    if (args.runs < 1 or min(args.sizes) < 0 or args.chain < 0
            or args.sources < 0):
        p.error("--runs must be at least 1, -n, --chain and --sources "
                "at least 0")
    args.sizes = [n for n in args.sizes if n]
    if not (args.sizes or args.chain or args.sources):
        p.error("no tree to run (-n 0, --chain 0 and --sources 0)")
    return args


def choose_impls(ctx: Context, args: argparse.Namespace) -> List[Impl]:
    """The floor, redo.py, the --vs ones and the PATH ones, probed."""
    ours = make_our_bin(ctx.work)
    vs = [make_vs(spec) for spec in args.vs]
    skip = [REDO_PY] + [i.bindir / "redo" for i in vs]
    peers = vs + find_path_peers(ctx.env.get("PATH", ""), skip)
    impls = [ours] + peers
    unique_labels(impls)
    if args.only:
        for label in set(args.only) - {i.label for i in impls}:
            progress("--only %s: no implementation has that label" % label)
        impls = [i for i in impls if i.label in args.only]
    for impl in impls:
        if not impl.error:
            probe(ctx, impl)
        progress("implementation %s: %s" % (
            impl.label, impl.error.split("\n")[0] if impl.error else
            "%s, -j %s" % (impl.bindir, "/".join(impl.jobs))))
    return [make_floor_bin(ctx.work)] + impls


def make_trees(work: Path, args: argparse.Namespace) -> List[Tree]:
    trees = [make_wide_tree(work, n) for n in args.sizes]
    if args.chain:
        trees.append(make_chain_tree(work, args.chain))
    if args.sources:
        trees.append(make_sources_tree(work, args.sources))
    return trees


def exit_code(impls: List[Impl], results: Results) -> int:
    """1 when redo.py or the floor failed anywhere, else 0."""
    ours = {FLOOR, OURS}
    failed = any(i.error for i in impls if i.label in ours) or any(
        key[1] in ours for key in results.failures)
    return 1 if failed else 0


def main(argv: List[str]) -> int:
    args = parse_args(argv[1:])
    work = Path(tempfile.mkdtemp(prefix="redo-bench-", dir=args.tmpdir))
    ctx = Context(work, clean_env(args.no_sync), args.runs, args.timeout,
                  find_gnu_time())
    try:
        progress(machine_summary(ctx))
        impls = choose_impls(ctx, args)
        trees = make_trees(work, args)
        results = Results()
        for tree in trees:
            measure_tree(ctx, tree, impls, results)
        print(report(trees, impls, results, args.runs), end="")
        if args.json:
            write_json(args.json, trees, impls, results, args)
        return exit_code(impls, results)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        if args.keep:
            progress("kept %s" % work)
        else:
            remove_tree(work)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
