# The whole site: every page (as ../pages.list names them), the index and
# the statistics.
redo-ifchange pages.list
redo-ifchange site/index.html site/stats.txt $(sed 's|.*|site/&.html|' pages.list)
