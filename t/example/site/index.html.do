# The index lists every page; a new page (pages/*.txt) appears in it
# because the list of pages is a target of its own (../pages.list).
redo-ifchange ../pages.list ../version
echo '<!doctype html><title>Index</title><ul>'
while read -r page; do
    echo "<li><a href=\"$page.html\">$page</a>"
done <../pages.list
echo '</ul>'
