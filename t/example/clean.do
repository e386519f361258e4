# `./redo.py clean`: removes what the build made (a target with no output).
rm -rf site/*.html site/stats.txt pages.list version .redo site/.redo
