# The names of the pages.  Runs in every build (redo-always), but counts as
# changed for the index only when the list really changed (redo-stamp).
redo-always
for f in pages/*.txt; do
    n=${f#pages/}
    echo "${n%.txt}"
done >"$3"
redo-stamp <"$3"
