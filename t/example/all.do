# The whole site: every page, the index and the statistics.
redo-ifchange site/index.html site/about.html site/history.html site/stats.txt
