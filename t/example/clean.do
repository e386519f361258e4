# `./redo.py clean`: removes what the build made, and what redo knew of it
# (a target with no output).  redo-clean leaves the pages and the .do files,
# and this target, which is being built.
redo-clean
