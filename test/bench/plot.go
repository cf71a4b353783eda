package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// point is one scale measurement: Backups, records/s, peak RSS in MiB.
type point struct{ n, rate, rss float64 }

// plot writes docs/scale.svg-style charts (records/s and peak RSS against the number of
// Backups, log scale) from points given as N:records/s:RSS-MiB, as printed by scale.
func plot(out string, args []string) error {
	var pts []point
	for _, a := range args {
		f := strings.Split(a, ":")
		if len(f) != 3 {
			return fmt.Errorf("point %q: want N:records/s:RSS-MiB", a)
		}
		var p [3]float64
		for i, s := range f {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("point %q: %q is not a positive number", a, s)
			}
			p[i] = v
		}
		pts = append(pts, point{p[0], p[1], p[2]})
	}
	if len(pts) < 2 {
		return fmt.Errorf("want at least two points, got %d", len(pts))
	}
	var b strings.Builder
	const w, h = 720, 300
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	panel(&b, 0, "first records per second", "records/s", pts, func(p point) float64 { return p.rate })
	panel(&b, w/2, "peak RSS of the reconciler", "MiB", pts, func(p point) float64 { return p.rss })
	b.WriteString("</svg>\n")
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// panel draws one chart in a 360x300 box at x0: y from 0 to a round maximum, x in log scale.
func panel(b *strings.Builder, x0 int, title, unit string, pts []point, y func(point) float64) {
	const left, right, top, bottom = 60, 20, 40, 50
	pw, ph := 360-left-right, 300-top-bottom
	minX, maxX := math.Log10(pts[0].n), math.Log10(pts[0].n)
	maxY := 0.0
	for _, p := range pts {
		minX, maxX = math.Min(minX, math.Log10(p.n)), math.Max(maxX, math.Log10(p.n))
		maxY = math.Max(maxY, y(p))
	}
	step := math.Pow(10, math.Floor(math.Log10(maxY)))
	maxY = math.Ceil(maxY/step) * step
	px := func(n float64) float64 { return float64(x0+left) + (math.Log10(n)-minX)/(maxX-minX)*float64(pw) }
	py := func(v float64) float64 { return float64(top) + (1-v/maxY)*float64(ph) }
	fmt.Fprintf(b, `<text x="%d" y="20" font-weight="bold">%s</text>`+"\n", x0+left, title)
	for v := 0.0; v <= maxY+step/2; v += step {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0+left, x0+left+pw, py(v), py(v))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", x0+left-6, py(v)+4, v)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" transform="rotate(-90 %d %d)">%s</text>`+"\n", x0+14, top+ph/2, x0+14, top+ph/2, unit)
	var path []string
	for _, p := range pts {
		path = append(path, fmt.Sprintf("%.1f,%.1f", px(p.n), py(y(p))))
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="#1f77b4"/>`+"\n", px(p.n), py(y(p)))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", px(p.n), py(y(p))-9, y(p))
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", px(p.n), top+ph+18, p.n)
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="#1f77b4" stroke-width="2"/>`+"\n", strings.Join(path, " "))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">Backups whose Jobs fail at once (log scale)</text>`+"\n", x0+left+pw/2, top+ph+38)
}
