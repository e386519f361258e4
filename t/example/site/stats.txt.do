# Word counts of the rendered pages.
redo-ifchange about.html history.html
wc -w about.html history.html
