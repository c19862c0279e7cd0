package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets are the page's files. assets/vendor holds uPlot, the chart
// library, which make fetches from the npm registry at the version and
// sha512 package-lock.json pins (`make web-assets`,
// internal/tools/webassets) rather than the repository carrying another
// project's code; a binary built without it serves the page without
// plots, says so on the page, and logs it at start.
//
//go:embed assets
var assets embed.FS

const chartLibrary = "assets/vendor/uPlot.iife.min.js"

// hasCharts reports whether the chart library was built in.
func hasCharts() bool {
	_, err := fs.Stat(assets, chartLibrary)
	return err == nil
}

func assetHandler() http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The assets change with the binary; a browser checks each
		// load, which costs it a 304.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func (s *Sink) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, assets, "assets/index.html")
}
