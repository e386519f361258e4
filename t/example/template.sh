# template.sh TITLE BODYFILE: wraps a text page in HTML.
title=$1
printf '<!doctype html>\n<title>%s</title>\n<h1>%s</h1>\n' "$title" "$title"
sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/^/<p>/' "$2"
printf '<footer>version %s</footer>\n' "$(cat "$3")"
