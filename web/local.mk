# web: the dashboard's assets (included from Makefile.am).
#
# The files under web/ are copied as they are into the build's web-dist/
# (the test harness points GOTTWALL_WEBDIR there), together with uPlot from
# npm (node_modules at the top of the source tree, made by `npm ci` when it
# is missing), and installed into $(pkgdatadir)/web, where the daemon looks
# by default (GW_WEBDIR; WEB_DIR in the config or GOTTWALL_WEBDIR override).

GW_WEB_SRC = \
	web/index.html \
	web/login.html \
	web/embed.html \
	web/error.html \
	web/style.css \
	web/app.js \
	web/chart.js \
	web/page.js \
	web/share.js \
	web/store.js \
	web/view.js \
	web/widgets.js \
	web/embed.js \
	web/favicon.svg

webdistdir = $(pkgdatadir)/web
nodist_webdist_DATA = $(GW_WEB_SRC:web/%=web-dist/%) \
	web-dist/uPlot.iife.min.js web-dist/uPlot.min.css

EXTRA_DIST += $(GW_WEB_SRC) package.json package-lock.json
CLEANFILES += $(nodist_webdist_DATA)

web-dist/%: $(top_srcdir)/web/%
	@$(MKDIR_P) web-dist
	$(AM_V_GEN)cp $< $@

# npm ci once, under a lock: several builds may share one source tree.
# Explicit targets (not a pattern), so make never deletes them as
# intermediate files.
GW_UPLOT_DIR = $(top_srcdir)/node_modules/uplot/dist

$(GW_UPLOT_DIR)/uPlot.iife.min.js $(GW_UPLOT_DIR)/uPlot.min.css:
	$(AM_V_GEN)cd $(top_srcdir) && flock "$${TMPDIR:-/tmp}/gottwall-npm.lock" sh -c \
	  'test -f node_modules/uplot/dist/uPlot.iife.min.js || npm ci --no-audit --no-fund' \
	  || { echo "web: npm ci failed: the dashboard needs uPlot from npm (install node and npm, then run npm ci in $(top_srcdir))" >&2; exit 1; }

web-dist/uPlot.iife.min.js: $(GW_UPLOT_DIR)/uPlot.iife.min.js
	@$(MKDIR_P) web-dist
	$(AM_V_GEN)cp $(GW_UPLOT_DIR)/uPlot.iife.min.js $@

web-dist/uPlot.min.css: $(GW_UPLOT_DIR)/uPlot.min.css
	@$(MKDIR_P) web-dist
	$(AM_V_GEN)cp $(GW_UPLOT_DIR)/uPlot.min.css $@
