#!/bin/sh
# Installs redo.py and every redo command under $PREFIX (default /usr/local):
#   $DESTDIR$PREFIX/bin/redo.py and symlinks redo, redo-ifchange, ... to it.
# Usage: ./install.sh [PREFIX]      (or PREFIX=... DESTDIR=... ./install.sh)
# Uninstall: rm "$PREFIX/bin/redo.py" "$PREFIX"/bin/redo "$PREFIX"/bin/redo-*
set -e
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
PREFIX=${1:-${PREFIX:-/usr/local}}
bin=${DESTDIR-}$PREFIX/bin
mkdir -p "$bin"
cp "$here/redo.py" "$bin/redo.py.new"
chmod 755 "$bin/redo.py.new"
mv -f "$bin/redo.py.new" "$bin/redo.py"
for c in redo redo-ifchange redo-ifcreate redo-always redo-stamp redo-recheck redo-ood \
         redo-targets redo-sources redo-whichdo redo-log redo-dot \
         redo-affects redo-cleanup redo-clean redo-cleandead redo-rebuild; do
    rm -f "$bin/$c"
    ln -s redo.py "$bin/$c"
done
echo "installed redo.py and 17 commands (redo, redo-ifchange, ...) in $bin"
