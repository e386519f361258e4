"""Random projects for redo.py, after Shake's random-rules test.

A seed gives a project (sources, .do files, targets over them) and a
sequence of steps: a few random edits of the tree, then a build with a
random -j.  After every step the Sim checks what redo did against

- a model: the exit status, which targets a fresh build reaches and which
  fail, which .do may run (a .do appends its target to $RLOG when it
  starts, so runs are counted), which must run;
- an oracle: the sources and .do files copied to a fresh directory and
  built from scratch (with -k), whose targets the incremental tree must
  equal, byte for byte and mode for mode;
- hygiene: every redo call under a timeout, no traceback, nothing left
  in .redo/tmp, .redo/out, .redo/log or TMPDIR, the sources untouched, no
  stray file in the tree.

Everything random comes from the seed, so a failure replays with the same
seed and step count (the build itself may still race differently).
test_random.py holds the tests, the feature switches and the list of
features off because of a known defect.
"""

import hashlib
import os
import random
import shutil
import stat
import subprocess
import time

from concurrency import kill_session, session_pids  # noqa: F401  (test_random uses them)

# Every switch of the generator.  A project uses a random subset of the
# enabled ones (see Sim.__init__).
# redo's temporaries beside the targets ($3, an output moved aside)
REDO_TEMPS = ('.redo3.', '.redo-old.')

FEATURES = (
    # shape of the project
    'dirs',          # targets and sources in nested directories
    'default_do',    # targets built by default*.do (in their directory or a parent)
    'shebang',       # some .do files start with #!/bin/sh
    # outputs
    'stdout', 'file3', 'dir3', 'virtual',
    'dir3_input',    # a $3 directory read by other targets (else only all.do asks for it)
    # what .do files do
    'stamp',         # redo-stamp (virtual targets whose dependents read their input)
    'always',        # redo-always
    'ifcreate',      # redo-ifcreate of an optional source
    'amp',           # redo-ifchange a & redo-ifchange b & wait
    'xargs',         # ... | xargs -P 3 -n 1 redo-ifchange
    'parallel_deep', # & and xargs -P in .do files below all.do too (else in all.do only)
    'nested_redo',   # `redo x` (then redo-ifchange x) inside a .do
    'nested_redo_twice',  # `redo x` twice in one .do
    'fail',          # failures nobody handles (FAIL in a trigger source, a deleted source)
    'fail_or',       # `if redo-ifchange f; then ... else ... fi`: handled failures
    'redo_or',       # `redo f || echo ...`
    'list',          # ls *.item > items.list; one X.proc per listed X.item; items.sum
    'list_delete',   # an edit deletes a listed .item
    # checks
    'check_unneeded',  # fail if a .do ran for a target that nothing needs now
    'check_interrupt_message',  # an interrupted build says so (test_fault)
    'check_dead_leftovers',     # the next run removes what a killed run left (test_fault)
    'check_state_write_errors', # disk full, write errors: a clear failure (test_fault)
    'check_readonly',           # a no-op on a read-only tree succeeds (test_fault)
    'check_orphans',            # nothing redo started waits forever once redo is gone
    'lock_error_j1',            # a lock that cannot be taken, at -j1 (test_fault)
    'check_gate_faults',        # a shell started ahead that cannot read its cue (test_fault)
    'check_launcher_faults',    # the launcher (sh, then Python's bootstrap) meets
                                # I/O errors with a clear line (test_fault)
    # how a step is built
    'j1_parallel',   # -j1 for a project with & or xargs -P in its .do files
    'keep_going',    # -k on some steps
    'shuffle',       # --shuffle on some steps
    'subdir_cwd',    # redo started in a subdirectory (../all)
    'redo_top',      # `redo all` (rather than redo-ifchange) on some steps
    # edits
    'edit', 'same_size', 'touch', 'delete_src', 'add_src', 'chmod',
    'edit_target', 'delete_target', 'edit_do', 'add_do', 'delete_do', 'orphan',
)

OUTPUTS = ('stdout', 'file3', 'dir3', 'virtual')

WORDS = ('alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu '
         'nu xi omicron pi rho sigma tau upsilon phi chi psi omega').split()

# Sourced by every .do: rd prints a file, or a directory's files.
RLIB = r'''rd() {
  if [ -d "$1" ]; then
    for _f in $(ls "$1"); do echo "[$_f]"; cat "$1/$_f"; done
  else
    cat "$1"
  fi
}
'''

TRANSFORMS = {'cat': '', 'sort': ' | sort', 'wc': ' | wc -c', 'head': ' | head -n 1',
              'upper': ' | tr a-z A-Z', 'mode': ''}

TIMEOUT = 20          # seconds for any one redo call: a hang guard


class Failure(AssertionError):
    pass


def rel(p, d):
    return os.path.relpath(p, d or '.')


def ancestors(d):
    """d, its parent, ..., '' (the project root)."""
    out = [d]
    while d:
        d = os.path.dirname(d)
        out.append(d)
    return out


def fstate(p):
    """What a file is, for comparisons: None (absent), ('f', mode, bytes),
    ('d', mode, ((name, state), ...)) without .redo, ('l', target)."""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return ('l', os.readlink(p))
    if stat.S_ISDIR(st.st_mode):
        return ('d', st.st_mode & 0o7777,
                tuple((n, fstate(os.path.join(p, n))) for n in sorted(os.listdir(p)) if n != '.redo'))
    if stat.S_ISREG(st.st_mode):
        with open(p, 'rb') as f:
            return ('f', st.st_mode & 0o7777, f.read())
    return ('?', stat.S_IFMT(st.st_mode))


def show(s, limit=300):
    if s is None:
        return 'absent'
    r = repr(s)
    return r if len(r) <= limit else r[:limit] + '...'


class Inp:
    __slots__ = ('path', 'handled')

    def __init__(self, path, handled=False):
        self.path, self.handled = path, handled


class Rule:
    """How one target is built."""

    def __init__(self, name, kind, out='stdout'):
        self.name, self.kind, self.out = name, kind, out
        self.transform = 'cat'
        self.inputs = []       # [Inp], in the order asked for
        self.call = 'one'      # one | each | amp | xargs
        self.nested = []       # [(target, times, ored)]: `redo target`
        self.always = False
        self.trigger = None    # a source: FAIL in it makes the .do exit 1
        self.opt = None        # an optional source: ifchange if there, else ifcreate
        self.stampsrc = None   # kind stamp: the file whose sorted lines are the stamp
        self.listdir = None    # kinds list, sum, proc
        self.do_mode = 'specific'   # or 'default'

    @property
    def virtual(self):
        return self.out == 'virtual'


class Sim:
    """One random project, its model, and the steps that build it."""

    def __init__(self, seed, enabled, base, bindir, log=None, root=None, tmpdir=None, subset=True):
        self.seed = seed
        self.rng = random.Random(seed)
        rng = self.rng
        enabled = set(enabled)
        # A random subset of what is enabled: small projects that use few
        # features isolate a defect quickly; some seeds use everything.
        if rng.random() < 0.3 or not subset:
            self.features = set(enabled)
        else:
            self.features = {f for f in sorted(enabled) if rng.random() < 0.75 or f.startswith('check_')}
        if not self.features & set(OUTPUTS):
            self.features.add('stdout')
        self.base = str(base)
        self.root = root or os.path.join(self.base, 'proj')
        self.tmpdir = tmpdir or os.path.join(self.base, 'tmp')
        self.rlog = os.path.join(self.base, 'runs.log')
        self.bindir = str(bindir)
        self.logf = log or (lambda s: None)
        for d in (self.base, self.root, self.tmpdir):
            os.makedirs(d, exist_ok=True)
        self.rlib = os.path.join(self.base, 'rlib.sh')
        with open(self.rlib, 'w') as f:
            f.write(RLIB)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('REDO') and k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')}
        env.update(PATH='%s:%s' % (self.bindir, env.get('PATH', '/usr/bin:/bin')),
                   REDO_NO_SYNC='1', REDO_DEBUG=os.environ.get('RANDPROJ_DEBUG', ''), NO_COLOR='1', LC_ALL='C', RLIB=self.rlib)
        self.env = env
        self.rules = {}          # target -> Rule, in the order made
        self.sources = set()     # every source path ever made (relative)
        self.do_files = {}       # .do path -> ('specific', T) | ('default', dir, ext) | ('proc', dir) | ('override', T)
        self.labels = {}         # (.do path, target or '*') -> int, changed by edit_do
        self.hand = set()        # targets edited by hand: sources from then on
        self.orphans = set()     # targets whose .do was deleted: sources
        self.deleted = {}        # deleted source -> its last content
        self.rec = {}            # target -> what its last good build depended on
        self.history = []        # lines describing each step
        self.oracle_cache = {}
        self.excused_tmp = set()   # temporaries a faulty run left (see check_dead_leftovers)
        self.replay = None         # how to replay a failure, if not as test_random_steps
        self.nstep = 0
        self.generate()

    # --- the project -----------------------------------------------------

    def has(self, f):
        return f in self.features

    def text(self, n=None):
        rng = self.rng
        return ''.join(' '.join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) + '\n'
                       for _ in range(n or rng.randint(1, 5)))

    def generate(self):
        rng = self.rng
        dirs = ['']
        if self.has('dirs'):
            dirs += rng.sample(['sub', 'sub/deep', 'lib', 'lib/x/y'], rng.randint(1, 3))
            for d in list(dirs):
                for a in ancestors(d):
                    if a not in dirs:
                        dirs.append(a)
        self.dirs = sorted(dirs)
        for d in self.dirs:
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        srcs = []
        for i in range(rng.randint(3, 8)):
            p = os.path.join(rng.choice(self.dirs), 's%d.src' % i)
            self.write_src(p, self.text())
            srcs.append(p)
        triggers = []
        failing = self.has('fail') or self.has('fail_or')
        if failing:
            for i in range(rng.randint(1, 2)):
                p = os.path.join(rng.choice(self.dirs), 'f%d.src' % i)
                self.write_src(p, self.text(1) + ('FAIL\n' if rng.random() < 0.2 else ''))
                triggers.append(p)
        opts = []
        if self.has('ifcreate'):
            for i in range(rng.randint(1, 2)):
                p = os.path.join(rng.choice(self.dirs), 'o%d.opt' % i)
                self.sources.add(p)
                if rng.random() < 0.5:
                    self.write_src(p, self.text(1))
                else:
                    self.deleted[p] = self.text(1)
                opts.append(p)
        outs = [o for o in OUTPUTS if self.has(o)]
        top_calls = ['one', 'each'] + [c for c in ('amp', 'xargs') if self.has(c)]
        calls = top_calls if self.has('parallel_deep') else ['one', 'each']
        targets = []
        for i in range(rng.randint(4, 12)):
            d = rng.choice(self.dirs)
            name = os.path.join(d, 't%d.%s' % (i, rng.choice(['out', 'txt'])))
            kind = 'stamp' if self.has('stamp') and rng.random() < 0.15 else 'plain'
            r = Rule(name, kind, 'virtual' if kind == 'stamp' else rng.choice(outs))
            r.transform = rng.choice(list(TRANSFORMS))
            r.call = rng.choice(calls)
            usable = [t for t in targets if self.has('dir3_input') or not self.is_dir_target(t)]
            readable = srcs + [t for t in usable if not self.rules[t].trigger
                               and self.fails_free(t)]
            if kind == 'stamp':
                files = srcs + [t for t in targets if self.rules[t].out in ('stdout', 'file3')
                                and self.fails_free(t)]
                r.stampsrc = rng.choice(files)
                r.inputs = [Inp(r.stampsrc)]
            else:
                pool = readable if r.virtual else srcs + usable
                for p in rng.sample(pool, min(len(pool), rng.randint(1, 3))):
                    # a virtual target's dependents read its inputs: none of
                    # them handled (a dependent would read a failed one)
                    handled = not r.virtual and not self.fails_free(p) and self.must_handle()
                    r.inputs.append(Inp(p, handled))
                if failing and not r.virtual and rng.random() < 0.25:
                    r.trigger = rng.choice(triggers)
                if opts and not r.virtual and rng.random() < 0.3:
                    r.opt = rng.choice(opts)
                if self.has('always') and rng.random() < 0.2:
                    r.always = True
                if self.has('nested_redo') and targets and rng.random() < 0.3:
                    cands = [t for t in usable if (self.fails_free(t) or self.has('redo_or'))
                             and (self.has('nested_redo_twice') or t not in self.nested_callees())]
                    if cands:
                        x = rng.choice(cands)
                        times = 2 if self.has('nested_redo_twice') and rng.random() < 0.5 else 1
                        r.nested.append((x, times, not self.fails_free(x)))
                        if x not in [i.path for i in r.inputs]:
                            # none handled in a virtual target, as above (the
                            # random numbers drawn stay the same)
                            handled = not self.fails_free(x) and self.must_handle()
                            r.inputs.append(Inp(x, handled and not r.virtual))
            if self.has('default_do') and rng.random() < 0.6:
                r.do_mode = 'default'
                r.default_at = rng.choice(ancestors(d))
            self.rules[name] = r
            targets.append(name)
        if self.has('list'):
            self.make_list()
            targets.append(self.sum)
        used = {i.path for r in self.rules.values() for i in r.inputs}
        roots = [t for t in targets if t not in used or rng.random() < 0.2]
        a = Rule('all', 'all', 'virtual')
        a.call = rng.choice(top_calls)
        a.inputs = [Inp(t, not self.fails_free(t) and self.must_handle()) for t in roots]
        self.rules['all'] = a
        self.place_do_files()

    def is_dir_target(self, t):
        """A $3 directory, or a virtual target read through to one."""
        r = self.rules[t]
        if r.out == 'dir3':
            return True
        return r.virtual and r.kind != 'stamp' and any(
            i.path in self.rules and self.is_dir_target(i.path) for i in r.inputs)

    def nested_callees(self):
        return {x for r in self.rules.values() for x, _, _ in r.nested}

    def must_handle(self):
        """An input that may fail: handled (`if redo-ifchange`) or not."""
        if self.has('fail_or') and (not self.has('fail') or self.rng.random() < 0.5):
            return True
        return False

    def fails_free(self, t):
        """True if target t can never fail (no trigger below it)."""
        r = self.rules.get(t)
        if r is None:
            return not (self.has('fail') and self.has('delete_src'))
        if r.trigger:
            return False
        return all(self.fails_free(i.path) or i.handled for i in r.inputs)

    def make_list(self):
        rng = self.rng
        d = rng.choice(self.dirs)
        self.listdir = d
        self.list = os.path.join(d, 'items.list')
        self.sum = os.path.join(d, 'items.sum')
        self.items = 0
        lr = Rule(self.list, 'list', rng.choice(['stdout', 'file3']))
        lr.always = True
        lr.listdir = d
        lr.stamp = rng.random() < 0.4 and lr.out == 'file3' and self.has('stamp')
        sr = Rule(self.sum, 'sum')
        sr.listdir = d
        sr.call = rng.choice(['one', 'each'] + [c for c in ('amp', 'xargs')
                                                if self.has(c) and self.has('parallel_deep')])
        self.rules[self.list] = lr
        self.rules[self.sum] = sr
        self.proc_transform = rng.choice(list(TRANSFORMS))
        at = rng.choice(ancestors(d))
        self.proc_do = os.path.join(at, 'default.proc.do')
        self.do_files[self.proc_do] = ('proc', at)
        for _ in range(rng.randint(0, 4)):
            self.add_item()

    def add_item(self):
        p = os.path.join(self.listdir, 'i%d.item' % self.items)
        self.items += 1
        self.write_src(p, self.text())
        t = p[:-len('.item')] + '.proc'
        r = Rule(t, 'proc')
        r.listdir = self.listdir
        r.do_mode = 'proc'
        self.rules[t] = r
        return p

    def write_src(self, p, text, mode=0o644):
        self.sources.add(p)
        self.deleted.pop(p, None)
        full = os.path.join(self.root, p)
        with open(full, 'w') as f:
            f.write(text)
        os.chmod(full, mode)

    def place_do_files(self):
        for t, r in self.rules.items():
            if r.kind == 'proc':
                continue
            if r.do_mode == 'default':
                ext = t.rsplit('.', 1)[1]
                p = os.path.join(r.default_at, 'default.%s.do' % ext)
                self.do_files[p] = ('default', r.default_at, ext)
            else:
                self.do_files[os.path.join(os.path.dirname(t), os.path.basename(t) + '.do')] = ('specific', t)
        for p in self.do_files:
            self.write_do(p)

    # --- .do text --------------------------------------------------------

    def label(self, dofile, t):
        return self.labels.setdefault((dofile, t), 0)

    def header(self, dofile):
        h = self.stable_random(dofile) < 0.3 and self.has('shebang')
        return (['#!/bin/sh', 'set -e'] if h else []) + ['. "$RLIB"']

    def stable_random(self, key):
        return int(hashlib.sha1(('%d %s' % (self.seed, key)).encode()).hexdigest()[:8], 16) / 2.0 ** 32

    def do_text(self, p):
        kind = self.do_files[p]
        d = os.path.dirname(p)
        L = self.header(p)
        if kind[0] in ('specific', 'override'):
            L += self.body(self.rules[kind[1]], d, self.label(p, kind[1]) + (100 if kind[0] == 'override' else 0))
        elif kind[0] == 'proc':
            tr = self.proc_transform
            lab = self.label(p, '*') + (0 if os.path.basename(p) == 'default.proc.do' else 100)
            L += ['echo "$PWD/$1" >>"$RLOG"', 'redo-ifchange "${1%.proc}.item"',
                  'echo "proc ${1%%.proc} %d"' % lab]
            if tr == 'mode':
                L.append('if [ -x "${1%.proc}.item" ]; then echo x; else echo -; fi')
            L.append('rd "${1%%.proc}.item"%s' % TRANSFORMS[tr])
        else:
            _, at, ext = kind
            L.append('case "$1" in')
            for t, r in self.rules.items():
                if r.do_mode == 'default' and t.endswith('.' + ext) and \
                        (at == '' or t.startswith(at + '/')) and r.kind != 'proc':
                    L.append('%s)' % rel(t, at))
                    L += ['  ' + x for x in self.body(r, at, self.label(p, t))]
                    L.append('  ;;')
            L.append('*) echo "no rule for $1" >&2; exit 1 ;;')
            L.append('esac')
        return '\n'.join(L) + '\n'

    def write_do(self, p):
        with open(os.path.join(self.root, p), 'w') as f:
            f.write(self.do_text(p))

    def request(self, paths, call, d):
        mayfail = not all(self.fails_free(p) for p in paths)
        ps = [rel(p, d) for p in paths]
        if not ps:
            return []
        if call == 'xargs':
            return ['printf "%%s\\n" %s | xargs -P 3 -n 1 redo-ifchange' % ' '.join(ps)]
        if call == 'one' or len(ps) == 1:
            return ['redo-ifchange ' + ' '.join(ps)]
        if call == 'each':
            return ['redo-ifchange ' + p for p in ps]
        bg = ['redo-ifchange %s & p%d=$!' % (p, n) for n, p in enumerate(ps)]
        if mayfail:
            # every call runs to its end (what a fresh -k build reaches is
            # then known); without failures the .do may exit at the first
            return bg + ['e=0'] + ['wait $p%d || e=1' % n for n in range(len(ps))] + ['[ $e = 0 ]']
        return bg + ['wait $p%d' % n for n in range(len(ps))]

    def read_expr(self, p, tr, d):
        """Shell lines printing what a reader with transform tr makes of
        input p (a virtual input is read through: its own inputs)."""
        r = self.rules.get(p)
        if r is not None and r.virtual and p not in self.hand and p not in self.orphans:
            if r.kind == 'stamp':
                return ['rd %s | sort%s' % (rel(r.stampsrc, d), TRANSFORMS[tr])]
            out = []
            for i in r.inputs:
                out += self.read_expr(i.path, tr, d)
            return out
        q = rel(p, d)
        if tr == 'mode':
            return ['if [ -x %s ]; then echo x; else echo -; fi' % q, 'rd %s' % q]
        return ['rd %s%s' % (q, TRANSFORMS[tr])]

    def body(self, r, d, label):
        R = lambda p: rel(p, d)  # noqa: E731
        L = ['echo "$PWD/$1" >>"$RLOG"', '[ -z "$RSLEEP" ] || sleep "$RSLEEP"']
        if r.always:
            L.append('redo-always')
        if r.kind == 'list':
            if r.out == 'stdout':
                L += ['echo items', "ls | grep '\\.item$' || :"]
            else:
                L.append("{ echo items; ls | grep '\\.item$' || :; } >\"$3\"")
                if r.stamp:
                    L.append('redo-stamp <"$3"')
            return L
        if r.kind == 'sum':
            L.append('redo-ifchange items.list')
            lst = "$(sed -n 's/\\.item$/.proc/p' items.list)"
            if r.call == 'one':
                L.append('redo-ifchange %s' % lst)
            elif r.call == 'each':
                L.append('for f in %s; do redo-ifchange "$f"; done' % lst)
            elif r.call == 'xargs':
                L.append("sed -n 's/\\.item$/.proc/p' items.list | xargs -P 3 -n 1 redo-ifchange")
            else:
                L.append('ps=; for f in %s; do redo-ifchange "$f" & ps="$ps $!"; done' % lst)
                L.append('for p in $ps; do wait $p; done')
            L.append('echo "sum %d"' % label)
            L.append('for f in %s; do echo "== $f"; cat "$f"; done' % lst)
            return L
        for x, times, ored in r.nested:
            for _ in range(times):
                L.append('redo %s%s' % (R(x), (' || echo "redo %s failed" >&2' % R(x)) if ored else ''))
        if r.trigger:
            L.append('redo-ifchange %s' % R(r.trigger))
            L.append('if grep -q FAIL %s; then echo "%s: FAIL in %s" >&2; exit 1; fi'
                     % (R(r.trigger), r.name, R(r.trigger)))
        if r.opt:
            o = R(r.opt)
            L.append('if [ -e %s ]; then redo-ifchange %s; o=1; else redo-ifcreate %s; o=; fi' % (o, o, o))
        L += self.request([i.path for i in r.inputs if not i.handled], r.call, d)
        for n, i in enumerate(r.inputs):
            if i.handled:
                if self.stable_random('%s %s' % (r.name, i.path)) < 0.5:
                    L.append('if redo-ifchange %s; then h%d=1; else h%d=; fi' % (R(i.path), n, n))
                else:
                    L.append('h%d=1; redo-ifchange %s || h%d=' % (n, R(i.path), n))
        if r.kind == 'all':
            return L
        if r.kind == 'stamp':
            L.append('rd %s | sort | redo-stamp' % R(r.stampsrc))
            return L
        C = ['echo "%s %d"' % (r.name, label)]
        if r.opt:
            C.append('if [ -n "$o" ]; then cat %s; else echo no-opt; fi' % R(r.opt))
        for n, i in enumerate(r.inputs):
            e = self.read_expr(i.path, r.transform, d)
            if i.handled:
                C += ['if [ -n "$h%d" ]; then' % n] + ['  ' + x for x in e] + \
                     ['else', '  echo "failed %s"' % i.path, 'fi']
            else:
                C += e
        if r.out == 'stdout':
            L += C
        elif r.out == 'file3':
            L += ['{'] + ['  ' + x for x in C] + ['} >"$3"']
        elif r.out == 'dir3':
            L += ['mkdir "$3"', '{'] + ['  ' + x for x in C] + ['} >"$3/a"', 'echo "%s" >"$3/b"' % r.name]
        return L

    # --- the model -------------------------------------------------------

    def exists(self, p):
        return os.path.lexists(os.path.join(self.root, p))

    def is_target(self, p):
        """A path redo builds now (not a source, not a hand-edited or
        orphaned target)."""
        return p in self.rules and p not in self.hand and p not in self.orphans

    def whichdo(self, p, without=None):
        d, b = os.path.split(p)
        cands = [os.path.join(d, b + '.do')]
        parts = b.split('.')
        exts = ['.'.join(parts[i:]) for i in range(1, len(parts))]
        for a in ancestors(d):
            cands += [os.path.join(a, 'default.%s.do' % e) for e in exts]
            cands.append(os.path.join(a, 'default.do'))
        for c in cands:
            if c != without and os.path.isfile(os.path.join(self.root, c)):
                return c
        return None

    def items_now(self):
        d = os.path.join(self.root, self.listdir)
        return sorted(n for n in os.listdir(d) if n.endswith('.item'))

    def evaluate(self, tops):
        """What a fresh build with -k of tops does: returns (reached,
        fails, deps) where reached is every target it builds, fails[t]
        whether t fails, deps[t] the dependencies t records, in order:
        ('do', path) | ('dep', path) | ('ifcreate', path)."""
        fails, deps, nested = {}, {}, {}

        def ev(t):
            if t in fails:
                return fails[t]
            if not self.is_target(t):
                fails[t] = not self.exists(t)
                return fails[t]
            do = self.whichdo(t)
            if do is None:
                fails[t] = not self.exists(t)
                return fails[t]
            fails[t] = True     # a cycle would show as a failure
            r = self.rules[t]
            ds = [('do', do)]
            deps[t] = ds

            def group(ps):
                ds.extend(('dep', p) for p in ps)
                return any([ev(p) for p in ps])
            f = False
            for x, times, ored in r.nested:
                nested[(t, x)] = times
                if ev(x) and not ored:
                    f = True
                    break
            if not f and r.trigger:
                f = group([r.trigger]) or 'FAIL' in self.read(r.trigger)
            if not f and r.opt:
                if self.exists(r.opt):
                    f = group([r.opt])
                else:
                    ds.append(('ifcreate', r.opt))
            if not f and r.kind == 'sum':
                f = group([self.list])
                if not f:
                    procs = [os.path.join(self.listdir, n[:-len('.item')] + '.proc') for n in self.items_now()]
                    if r.call == 'each':
                        for p in procs:
                            if group([p]):
                                f = True
                                break
                    else:
                        f = group(procs)
            if not f and r.kind == 'proc':
                f = group([t[:-len('.proc')] + '.item'])
            if not f:
                plain = [i.path for i in r.inputs if not i.handled]
                if r.call == 'each' and r.kind != 'stamp':
                    for p in plain:
                        if group([p]):
                            f = True
                            break
                else:
                    f = group(plain)
            if not f:
                for i in r.inputs:
                    if i.handled:
                        group([i.path])
            fails[t] = f
            return f
        for t in tops:
            ev(t)
        reached = {t for t in fails if self.is_target(t) and self.whichdo(t)}
        return reached, fails, deps, nested

    def read(self, p):
        try:
            with open(os.path.join(self.root, p), 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except (FileNotFoundError, IsADirectoryError):
            return ''

    def stamp_of(self, t, post, others):
        r = self.rules[t]
        s = post[r.stampsrc] if r.stampsrc in self.rules else others.get(r.stampsrc)
        return tuple(sorted(s[2].splitlines())) if s and s[0] == 'f' else None

    # --- running redo ----------------------------------------------------

    def run(self, args, cwd=None, env=None, timeout=TIMEOUT, what='redo'):
        """Runs a command in its own session under a timeout; a timeout
        kills the session and fails the test."""
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.Popen(args, cwd=cwd or self.root, env=e, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            ps = subprocess.run(['ps', '-s', str(p.pid), '-o', 'pid,ppid,stat,args'],
                                capture_output=True, text=True, timeout=10).stdout
            kill_session(p.pid)
            out, err = p.communicate(timeout=10)
            self.fail('%s did not finish in %d s (a hang): %s (in %s)\n--- its processes then:\n%s--- stderr:\n%s'
                      % (what, timeout, ' '.join(args), cwd or self.root, ps,
                         err.decode('utf-8', 'replace')[-3000:]))
        finally:
            kill_session(p.pid)
        return p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')

    def fail(self, msg):
        raise Failure('seed %d, step %d: %s\n\n%s' % (self.seed, self.nstep, msg, self.replay_note()))

    def replay_note(self):
        replay = self.replay or ('python3 -m pytest -q t/test_random.py -k test_random_steps '
                                 '--random-seed=%d --random-steps=%d\n  (or: python3 t/randproj.py %d %d DIR: '
                                 'the same steps, the project kept in DIR)'
                                 % (self.seed, self.nstep, self.seed, self.nstep))
        return ('replay: %s\nproject: %s (history in %s)\nfeatures: %s\nlast steps:\n  %s'
                % (replay, self.root, os.path.join(self.base, 'history.txt'),
                   ' '.join(sorted(self.features)), '\n  '.join(self.history[-6:])))

    # --- snapshots and checks -------------------------------------------

    def snapshot(self, root=None):
        """(targets, others): the state of every target path, and of every
        other file in the tree (.redo left out, target directories whole)."""
        root = root or self.root
        targets = {t: fstate(os.path.join(root, t)) for t in self.rules}
        others = {}
        for d, dirs, files in os.walk(root):
            rd = os.path.relpath(d, root)
            rd = '' if rd == '.' else rd
            keep = []
            for n in sorted(dirs):
                p = os.path.join(rd, n)
                if n == '.redo' or n.startswith(REDO_TEMPS):
                    continue
                if p in self.rules:
                    continue
                if os.path.islink(os.path.join(d, n)):
                    others[p] = fstate(os.path.join(d, n))
                else:
                    keep.append(n)
            dirs[:] = keep
            for n in files:
                p = os.path.join(rd, n)
                if p not in self.rules and not n.startswith(REDO_TEMPS):
                    others[p] = fstate(os.path.join(d, n))
        return targets, others

    def leftovers(self, root=None, tmpdir=None):
        """Temporaries left: run directories in TMPDIR, files in .redo/tmp,
        .redo/out and .redo/log, half-written state files (.redo/*.tmp)
        and memos (.redo/memo/*.tmp)."""
        root, tmpdir = root or self.root, tmpdir or self.tmpdir
        left = ['TMPDIR/' + n for n in os.listdir(tmpdir)]
        for d, dirs, files in os.walk(root):
            base, parent = os.path.basename(d), os.path.basename(os.path.dirname(d))
            left += [os.path.relpath(os.path.join(d, n), root) for n in dirs + files
                     if n.startswith(REDO_TEMPS)]
            dirs[:] = [n for n in dirs if not n.startswith(REDO_TEMPS)]
            if base in ('tmp', 'out', 'log') and parent == '.redo':
                left += [os.path.relpath(os.path.join(d, n), root) for n in dirs + files]
            if base == 'memo' and parent == '.redo':
                left += [os.path.relpath(os.path.join(d, n), root) for n in files if n.endswith('.tmp')]
            if base == '.redo':
                left += [os.path.relpath(os.path.join(d, n), root) for n in files if n.endswith('.tmp')]
        return left

    def hygiene(self, root, tmpdir, what, excused=()):
        left = [x for x in self.leftovers(root, tmpdir) if x not in excused]
        if left:
            self.fail('%s left temporaries: %s' % (what, ' '.join(sorted(left)[:20])))

    def no_traceback(self, out, err, what):
        for name, s in (('stderr', err), ('stdout', out)):
            if 'Traceback' in s:
                self.fail('%s printed a traceback on %s:\n%s' % (what, name, s[-4000:]))

    def runs(self, path, root):
        """Target -> how many times its .do started, from a run log."""
        counts = {}
        if not os.path.exists(path):
            return counts
        real = os.path.realpath(root)
        with open(path) as f:
            for line in f:
                t = os.path.relpath(os.path.normpath(os.path.realpath(os.path.dirname(line.rstrip('\n')))) + '/'
                                    + os.path.basename(line.rstrip('\n')), real)
                counts[t] = counts.get(t, 0) + 1
        os.unlink(path)
        return counts

    def sources_now(self):
        """[(path, state)] of every file that is no target now: what a
        clean copy of the tree holds."""
        copy = []
        for d, dirs, files in os.walk(self.root):
            rd = os.path.relpath(d, self.root)
            rd = '' if rd == '.' else rd
            dirs[:] = sorted(n for n in dirs if n != '.redo' and not n.startswith(REDO_TEMPS)
                             and not self.is_target(os.path.join(rd, n)))
            for n in sorted(files):
                p = os.path.join(rd, n)
                if not self.is_target(p) and not n.startswith(REDO_TEMPS):
                    copy.append((p, fstate(os.path.join(d, n))))
        return copy

    def clean_copy(self, dest, copy=None):
        """Copies the sources and .do files to dest (a new directory)."""
        os.makedirs(dest)
        for d in self.dirs:
            os.makedirs(os.path.join(dest, d), exist_ok=True)
        for p, _ in copy or self.sources_now():
            os.makedirs(os.path.dirname(os.path.join(dest, p)), exist_ok=True)
            shutil.copy2(os.path.join(self.root, p), os.path.join(dest, p))

    def oracle(self, tops):
        """A fresh build of a clean copy: (exit status, target states,
        runs).  Cached on the content of what was copied."""
        copy = self.sources_now()
        key = hashlib.sha256(repr((copy, tops)).encode()).hexdigest()
        if key in self.oracle_cache:
            return self.oracle_cache[key]
        ob = os.path.join(self.base, 'oracle')
        shutil.rmtree(ob, ignore_errors=True)
        oroot, otmp = os.path.join(ob, 'proj'), os.path.join(ob, 'tmp')
        os.makedirs(otmp)
        self.clean_copy(oroot, copy)
        olog = os.path.join(ob, 'runs.log')
        rc, out, err = self.run(['redo-ifchange', '-k', '-j2'] + tops, cwd=oroot,
                                env={'TMPDIR': otmp, 'RLOG': olog}, what='the fresh build (oracle)')
        self.no_traceback(out, err, 'the fresh build (oracle)')
        self.hygiene(oroot, otmp, 'the fresh build (oracle)')
        targets, _ = self.snapshot(oroot)
        res = (rc, targets, self.runs(olog, oroot), err)
        self.oracle_cache[key] = res
        shutil.rmtree(ob, ignore_errors=True)
        return res

    def forget(self):
        """Removes redo's state and every target (not the hand-edited
        ones): the next build starts afresh."""
        for d, dirs, files in os.walk(self.root):
            if '.redo' in dirs:
                shutil.rmtree(os.path.join(d, '.redo'))
                dirs.remove('.redo')
        for t in self.rules:
            p = os.path.join(self.root, t)
            if self.is_target(t) and os.path.lexists(p):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
        self.rec = {}

    # --- edits -----------------------------------------------------------

    def src_files(self, exts=('.src', '.item', '.opt'), hand=False):
        out = [p for p in sorted(self.sources) if p.endswith(exts) and self.exists(p)]
        if hand:
            out += sorted(p for p in self.hand | self.orphans if os.path.isfile(os.path.join(self.root, p)))
        return out

    def edit(self):
        """One random edit of the tree; returns its description, or None
        if the chosen kind had nothing to act on."""
        rng = self.rng
        kinds = [k for k in ('edit', 'same_size', 'touch', 'delete_src', 'add_src', 'chmod', 'edit_target',
                             'delete_target', 'edit_do', 'add_do', 'delete_do', 'orphan') if self.has(k)]
        weights = {'edit': 3, 'same_size': 2, 'touch': 2, 'delete_src': 1, 'add_src': 1.5, 'chmod': 1,
                   'edit_target': 1, 'delete_target': 1, 'edit_do': 1.5, 'add_do': 1, 'delete_do': 1,
                   'orphan': 0.3}
        if not kinds:
            return None
        if self.has('fail') or self.has('fail_or'):
            kinds.append('fail_toggle')
            weights['fail_toggle'] = 1.5
        k = rng.choices(kinds, [weights[x] for x in kinds])[0]
        root = self.root
        if k == 'edit':
            ps = self.src_files(hand=True)
            if not ps:
                return None
            p = rng.choice(ps)
            old = self.read(p)
            lines = old.splitlines(True)
            if lines and rng.random() < 0.5:
                lines[rng.randrange(len(lines))] = self.text(1)
            else:
                lines.insert(rng.randint(0, len(lines)), self.text(1))
            new = ''.join(lines)
            if new == old:
                new += 'x\n'
            mode = os.stat(os.path.join(root, p)).st_mode & 0o777
            with open(os.path.join(root, p), 'w') as f:
                f.write(new)
            os.chmod(os.path.join(root, p), mode)
            return 'edit %s' % p
        if k == 'same_size':
            ps = [p for p in self.src_files(hand=True) if any(c.isalpha() for c in self.read(p))]
            if not ps:
                return None
            p = rng.choice(ps)
            old = self.read(p)
            pos = rng.choice([i for i, c in enumerate(old) if c.isalpha()])
            c = rng.choice([x for x in 'abcdefghijklmnopqrstuvwxyz' if x != old[pos]])
            with open(os.path.join(root, p), 'r+') as f:
                f.seek(pos)
                f.write(c)
            return 'same-size edit %s (byte %d -> %s)' % (p, pos, c)
        if k == 'touch':
            ps = self.src_files(hand=True) + sorted(p for p in self.do_files if self.exists(p))
            p = rng.choice(ps)
            t = time.time() + rng.choice([0, 0, -5, 3])
            os.utime(os.path.join(root, p), (t, t))
            return 'touch %s' % p
        if k == 'delete_src':
            exts = ()
            if self.has('fail'):
                exts += ('.src',)
            if self.has('list_delete'):
                exts += ('.item',)
            if self.has('ifcreate'):
                exts += ('.opt',)
            ps = self.src_files(exts) if exts else []
            if not ps:
                return None
            p = rng.choice(ps)
            self.deleted[p] = self.read(p)
            os.unlink(os.path.join(root, p))
            return 'delete %s' % p
        if k == 'add_src':
            ch = []
            if self.deleted:
                ch.append('back')
            if self.has('list'):
                ch.append('item')
            if not ch:
                return None
            if rng.choice(ch) == 'item':
                return 'add %s' % self.add_item()
            p = rng.choice(sorted(self.deleted))
            text = self.deleted[p] if rng.random() < 0.5 else self.text()
            if p.endswith('.src') and p.split('/')[-1].startswith('f') and 'FAIL' in text and rng.random() < 0.7:
                text = text.replace('FAIL\n', '')
            self.write_src(p, text)
            return 'add back %s' % p
        if k == 'chmod':
            ps = self.src_files(hand=True)
            if not ps:
                return None
            p = rng.choice(ps)
            full = os.path.join(root, p)
            m = os.stat(full).st_mode & 0o777
            os.chmod(full, m ^ 0o111)
            return 'chmod %o %s' % (m ^ 0o111, p)
        if k == 'edit_target':
            ps = [t for t, r in self.rules.items() if self.is_target(t) and r.kind != 'list'
                  and os.path.isfile(os.path.join(root, t))]
            if not ps:
                return None
            p = rng.choice(sorted(ps))
            with open(os.path.join(root, p), 'a') as f:
                f.write('edited by hand %d\n' % rng.randint(0, 999))
            self.hand.add(p)
            self.rec.pop(p, None)
            return 'edit target %s by hand' % p
        if k == 'delete_target':
            ps = [t for t in self.rules if t not in self.orphans and self.exists(t)]
            if not ps:
                return None
            p = rng.choice(sorted(ps))
            full = os.path.join(root, p)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
            self.hand.discard(p)
            return 'delete target %s' % p
        if k == 'edit_do':
            ps = sorted(p for p in self.do_files if self.exists(p))
            p = rng.choice(ps)
            kind = self.do_files[p]
            if kind[0] in ('specific', 'override'):
                key = (p, kind[1])
            elif kind[0] == 'proc':
                key = (p, '*')
            else:
                keys = [t for t, r in self.rules.items() if r.do_mode == 'default'
                        and t.endswith('.' + kind[2]) and (kind[1] == '' or t.startswith(kind[1] + '/'))]
                key = (p, rng.choice(sorted(keys)))
            self.labels[key] = self.label(*key) + 1
            self.write_do(p)
            return 'edit %s (label of %s)' % (p, key[1])
        if k == 'add_do':
            ps = sorted(t for t, r in self.rules.items() if r.do_mode in ('default', 'proc')
                        and not self.exists(t + '.do') and self.is_target(t))
            if not ps:
                return None
            t = rng.choice(ps)
            p = t + '.do'
            if self.rules[t].kind == 'proc':
                self.do_files[p] = ('proc', os.path.dirname(t))
            else:
                self.do_files[p] = ('override', t)
            self.write_do(p)
            return 'add %s' % p
        if k == 'delete_do':
            ps = sorted(p for p, kind in self.do_files.items()
                        if self.exists(p) and (kind[0] == 'override' or (kind[0] == 'proc' and p.endswith('.proc.do')
                                                                         and not p.endswith('default.proc.do'))))
            if not ps:
                return None
            p = rng.choice(ps)
            os.unlink(os.path.join(root, p))
            return 'delete %s' % p
        if k == 'orphan':
            ps = []
            for p, kind in sorted(self.do_files.items()):
                if kind[0] != 'specific' or not self.exists(p):
                    continue
                t = kind[1]
                r = self.rules[t]
                if r.kind in ('all', 'list', 'sum') or r.out not in ('stdout', 'file3') or t in self.hand:
                    continue
                if not os.path.isfile(os.path.join(root, t)):
                    continue
                if self.whichdo(t, without=p) is None:
                    ps.append((p, t))
            if not ps:
                return None
            p, t = rng.choice(ps)
            os.unlink(os.path.join(root, p))
            self.orphans.add(t)
            self.orphaned_now.add(t)
            self.rec.pop(t, None)
            return 'delete %s (orphans %s)' % (p, t)
        if k == 'fail_toggle':
            ps = [p for p in self.src_files(('.src',)) if os.path.basename(p).startswith('f')]
            if not ps:
                return None
            p = rng.choice(ps)
            old = self.read(p)
            new = old.replace('FAIL\n', '') if 'FAIL' in old else old + 'FAIL\n'
            with open(os.path.join(root, p), 'w') as f:
                f.write(new)
            return '%s FAIL in %s' % ('remove' if 'FAIL' in old else 'put', p)
        raise AssertionError(k)

    # --- a step ----------------------------------------------------------

    def parallel_in_dos(self):
        return any(r.call in ('amp', 'xargs') and len(r.inputs) > 1 for r in self.rules.values()) or \
            (self.has('list') and self.rules[self.sum].call in ('amp', 'xargs'))

    def choose_command(self):
        rng = self.rng
        tops = ['all']
        if rng.random() < 0.15:
            extra = sorted(t for t in self.rules if self.is_target(t) and self.rules[t].kind not in ('proc', 'all')
                           and (self.has('nested_redo_twice') or t not in self.nested_callees()))
            tops = rng.sample(extra, min(len(extra), 2)) + tops
        redo = 'redo' if self.has('redo_top') and rng.random() < 0.25 else 'redo-ifchange'
        jmin = 1 if (self.has('j1_parallel') or not self.parallel_in_dos()) else 2
        j = rng.randint(jmin, 4)
        opts = []
        env = {}
        if rng.random() < 0.5:
            opts.append('-j%d' % j)
        else:
            env['REDO_JOBS'] = str(j)
        if self.has('keep_going') and rng.random() < 0.3:
            opts.append('-k')
        if self.has('shuffle') and rng.random() < 0.2:
            opts.append('--shuffle')
        cwd = ''
        if self.has('subdir_cwd') and len(self.dirs) > 1 and rng.random() < 0.2:
            cwd = rng.choice(self.dirs[1:])
        return redo, opts, tops, env, cwd, j

    def edits(self, edits=None):
        """A step's edits (random unless given); returns their descriptions."""
        self.nstep += 1
        self.orphaned_now = set()
        done = []
        if edits is None:
            n = self.rng.choice([0, 1, 1, 1, 2, 2, 3]) if self.nstep > 1 else 0
            for _ in range(n):
                e = self.edit()
                if e:
                    done.append(e)
        else:
            for e in edits:
                done.append(e() if callable(e) else e)
        return done

    def note(self, line):
        self.history.append(line)
        self.logf(line)
        with open(os.path.join(self.base, 'history.txt'), 'a') as f:
            f.write(line + '\n')

    def describe(self, done, command):
        redo, opts, tops, env, cwd, j = command
        argv = [redo] + opts + [rel(t, cwd) for t in tops]
        line = 'step %d: %s; %s%s%s' % (self.nstep, '; '.join(done) or 'no edit',
                                        ('cd %s && ' % cwd) if cwd else '',
                                        ''.join('%s=%s ' % kv for kv in sorted(env.items())), ' '.join(argv))
        return argv, line

    def step(self, edits=None, command=None, strict=True, prefix=''):
        """One step: edits (random unless given), then a build, then every
        check (strict: also which .do may run, from the model).  Returns
        (exit status, stderr)."""
        done = self.edits(edits)
        return self.build(done, command, strict, prefix)

    def build(self, done=(), command=None, strict=True, prefix=''):
        command = command or self.choose_command()
        redo, opts, tops, env, cwd, j = command
        argv, line = self.describe(done, command)
        self.note(prefix + line)
        self.pre_build_targets, self.pre_build_others = self.snapshot()
        keep = '-k' in opts
        if not strict:
            self.rec = {}
        t0 = time.monotonic()
        rc, out, err = self.run(argv, cwd=os.path.join(self.root, cwd), env=dict(env, TMPDIR=self.tmpdir, RLOG=self.rlog))
        self.last_seconds = time.monotonic() - t0
        self.check(rc, out, err, tops, keep, redo, strict)
        return rc, err

    def check(self, rc, out, err, tops, keep, redo, strict=True, clean=True):
        """Every check of one build that ended with status rc (clean: it
        left no temporaries)."""
        what = 'the build'
        self.no_traceback(out, err, what)
        if clean:
            self.hygiene(self.root, self.tmpdir, what, self.excused_tmp)
        counts = self.runs(self.rlog, self.root)
        post_targets, post_others = self.snapshot()
        reached, fails, deps, nested = self.evaluate(tops)
        expect_fail = any(fails.get(t) for t in tops)
        ctx = '\n--- exit status %d; stderr:\n%s' % (rc, err[-3000:])
        if out.strip():
            self.fail('redo wrote to stdout: %r%s' % (out[:500], ctx))
        if rc not in (0, 1):
            self.fail('exit status %d (expected 0 or 1)%s' % (rc, ctx))
        # the sources are untouched, no stray files appeared
        known = self.sources | set(self.do_files)
        for p, s in sorted(post_others.items()):
            if p not in known:
                self.fail('a file that is no source is in the tree: %s%s' % (p, ctx))
            if p not in self.pre_build_others:
                self.fail('the build made %s%s' % (p, ctx))
            if s != self.pre_build_others[p]:
                self.fail('the build changed the source %s: %s -> %s%s'
                          % (p, show(self.pre_build_others[p]), show(s), ctx))
        for p in self.pre_build_others:
            if p not in post_others:
                self.fail('the build removed the source %s%s' % (p, ctx))
        for t in sorted(self.hand | self.orphans):
            if post_targets[t] != self.pre_build_targets[t]:
                self.fail('the build overwrote %s, a target %s: %s -> %s%s'
                          % (t, 'edited by hand' if t in self.hand else 'whose .do is gone',
                             show(self.pre_build_targets[t]), show(post_targets[t]), ctx))
        # the exit status: the model, and the fresh build
        orc, otargets, oruns, oerr = self.oracle(tops)
        if (orc != 0) != expect_fail:
            self.fail('the model and the fresh build disagree: model says %s, fresh build exit %d:\n%s'
                      % ('failure' if expect_fail else 'success', orc, oerr[-3000:]))
        if (rc != 0) != expect_fail:
            self.fail('exit status %d, expected %s%s' % (rc, 'failure' if expect_fail else '0', ctx))
        if rc and 'fail' not in err:
            self.fail('exit status %d without a line saying what failed%s' % (rc, ctx))
        # the targets equal the fresh build's
        compare = not expect_fail or keep
        if compare:
            for t in sorted(reached):
                if fails.get(t):
                    continue
                if post_targets[t] != otargets[t]:
                    self.fail('target %s differs from a fresh build:\n  here:  %s\n  fresh: %s%s'
                              % (t, show(post_targets[t]), show(otargets[t]), ctx))
        # fresh build: every target it reaches ran, none twice
        for t in sorted(reached):
            calls = sum(n * oruns.get(c, 0) for (c, x), n in nested.items() if x == t)
            if not oruns.get(t):
                self.fail('the fresh build did not run %s.do\n%s' % (t, oerr[-3000:]))
            if oruns.get(t, 0) > 1 + calls:
                self.fail('the fresh build ran %s %d times\n%s' % (t, oruns[t], oerr[-3000:]))
        # which .do ran here
        redo_calls = {}
        for (c, x), n in nested.items():
            redo_calls[x] = redo_calls.get(x, 0) + n * counts.get(c, 0)
        if redo == 'redo':
            for t in tops:
                redo_calls[t] = redo_calls.get(t, 0) + 1
        ok = rc == 0 and not expect_fail
        for t, n in sorted(counts.items()):
            if t not in self.rules:
                self.fail('a .do ran for %s, which is no target%s' % (t, ctx))
            if not self.is_target(t):
                self.fail('%s.do ran %d times, but %s is a source now (%s)%s'
                          % (t, n, t, 'edited by hand' if t in self.hand else 'its .do is gone', ctx))
            if t not in reached and self.has('check_unneeded'):
                self.fail('%s.do ran, but nothing needs %s now%s' % (t, t, ctx))
            allowed = self.allowed(t, post_targets, post_others, counts, fails) if strict else 'not checked'
            limit = (1 if allowed else 0) + redo_calls.get(t, 0)
            if n > limit:
                self.fail('%s.do ran %d times, at most %d expected (%s%s)%s'
                          % (t, n, limit, 'up to date' if not allowed else 'out of date: ' + allowed,
                             ', `redo %s` called %d times' % (t, redo_calls[t]) if redo_calls.get(t) else '', ctx))
        if ok:
            for t, n in sorted(redo_calls.items()):
                if self.is_target(t) and counts.get(t, 0) < n:
                    self.fail('`redo %s` was called %d times but %s.do ran %d times%s'
                              % (t, n, t, counts.get(t, 0), ctx))
            for t in sorted(reached):
                if self.rules[t].always and not counts.get(t):
                    self.fail('%s calls redo-always but its .do did not run%s' % (t, ctx))
        # what the next step's model starts from
        good = rc == 0 or keep
        if not good:
            self.rec = {}
        for t in list(self.rec):
            if t not in reached or fails.get(t):
                del self.rec[t]
        if good:
            for t in reached:
                if fails.get(t) or t not in deps:
                    continue
                d = []
                for kind, p in deps[t]:
                    if kind == 'do':
                        d.append((kind, p, fstate(os.path.join(self.root, p))))
                    elif kind == 'ifcreate':
                        d.append((kind, p, None))
                    elif self.is_target(p) and fails.get(p):
                        # It failed: t was built with that (`|| ...`); once
                        # it builds again t is out of date, whatever it holds.
                        d.append((kind, p, ('failed',)))
                    elif self.is_target(p) and self.rules[p].kind == 'stamp':
                        d.append(('stamp', p, self.stamp_of(p, post_targets, post_others)))
                    else:
                        d.append((kind, p, post_targets[p] if p in self.rules else post_others.get(p)))
                self.rec[t] = (d, post_targets[t])


    def allowed(self, t, post, others, counts, fails):
        """Why target t may have run in this step ('' if it may not)."""
        r = self.rules[t]
        if t not in self.rec:
            return 'not built well last time'
        if r.always:
            return 'redo-always'
        deps, out = self.rec[t]
        if self.pre_build_targets[t] != out:
            return 'the target changed since'
        for kind, p, was in deps:
            if kind == 'do':
                if self.whichdo(t) != p:
                    return 'another .do applies'
                if fstate(os.path.join(self.root, p)) != was:
                    return '%s changed' % p
            elif kind == 'ifcreate':
                if self.exists(p):
                    return '%s appeared' % p
            else:
                if p in self.orphaned_now:
                    return '%s lost its .do' % p
                if self.is_target(p) and counts.get(p) and (fails.get(p) or (self.rules[p].virtual
                                                                            and kind != 'stamp')):
                    return '%s ran (virtual or failed)' % p
                if kind == 'stamp':
                    if self.is_target(p) and self.stamp_of(p, post, others) != was:
                        return 'the stamp of %s changed' % p
                    continue
                now = post[p] if p in self.rules else self.pre_build_others.get(p)
                if now != was:
                    return '%s changed' % p
        return ''


def make_bindir(d):
    """A directory of symlinks to redo.py, one per command (as conftest's)."""
    here = os.path.dirname(os.path.abspath(__file__))
    redo_py = os.environ.get('RANDPROJ_REDO_PY') or os.path.join(os.path.dirname(here), 'redo.py')
    os.makedirs(d, exist_ok=True)
    for c in ('redo', 'redo-ifchange', 'redo-ifcreate', 'redo-always', 'redo-stamp', 'redo-ood',
              'redo-targets', 'redo-sources', 'redo-whichdo', 'redo-log', 'redo-dot', 'redo-affects',
              'redo-cleanup'):
        if not os.path.lexists(os.path.join(d, c)):
            os.symlink(redo_py, os.path.join(d, c))
    return d


def main(argv=None):
    """Runs one seed outside pytest and keeps the project, for shrinking
    a failure by hand:  python3 t/randproj.py SEED STEPS DIR [FEATURES]
    (RANDPROJ_REDO_PY=path: test another redo.py, e.g. a mutated copy)"""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import test_random
    args = (argv or sys.argv)[1:]
    if len(args) < 3:
        raise SystemExit('usage: randproj.py SEED STEPS DIR [FEATURES like all or +fail_or,-dir3]')
    seed, steps, d = int(args[0]), int(args[1]), args[2]
    enabled = test_random.parse_features(args[3] if len(args) > 3 else None)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    sim = Sim(seed, enabled, os.path.join(d, 'run'), make_bindir(os.path.join(d, 'bin')), log=print)
    print('features: %s' % ' '.join(sorted(sim.features)))
    try:
        for _ in range(steps):
            sim.step()
        status = 'ok'
    except Failure as e:
        print(e)
        status = None
    sim.clean_copy(os.path.join(d, 'clean'))
    with open(os.path.join(d, 'env.sh'), 'w') as f:
        f.write(''.join("export %s='%s'\n" % (k, sim.env[k]) for k in ('PATH', 'RLIB', 'LC_ALL', 'REDO_NO_SYNC'))
                + "export RLOG=%s/rlog TMPDIR=%s/tmp\nmkdir -p $TMPDIR\n" % (d, d))
    print('a clean copy of the sources as they are now is in %s/clean; . %s/env.sh to run redo there' % (d, d))
    if status is None:
        raise SystemExit(1)
    print(status)


if __name__ == '__main__':
    main()
