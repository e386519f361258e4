# Word counts of the rendered pages.
redo-ifchange ../pages.list
pages=$(sed 's|$|.html|' ../pages.list)
redo-ifchange $pages
wc -w $pages
