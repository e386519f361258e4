# site/NAME.html from pages/NAME.txt: one .do for every page.
src=../pages/$2.txt
redo-ifchange "$src" ../template.sh ../version
echo "rendering $2" >&2
title=$(head -n 1 "$src")
tail -n +2 "$src" >"$3.body"
sh ../template.sh "$title" "$3.body" ../version
rm -f "$3.body"
