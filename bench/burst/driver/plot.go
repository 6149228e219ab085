package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"
)

// series is one line of the CDF plot: the sorted latencies of the pods that got Running out
// of n pods created, so a run that did not finish ends below 1.
type series struct {
	label  string
	color  color.RGBA
	dashed bool
	sorted []float64 // ms
	n      int
}

var (
	colorOf = map[string]color.RGBA{
		"burstlet": {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		"upstream": {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		"kwok":     {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	}
	black = color.RGBA{A: 0xff}
	grey  = color.RGBA{R: 0xdd, G: 0xdd, B: 0xdd, A: 0xff}
)

// writeCDF draws the latency CDFs: x = bound→Running latency in ms on a log scale, y = the
// fraction of the run's pods Running by then; legend on the right.
func writeCDF(path, title string, lines []series) error {
	const (
		w, h                     = 1120, 620
		left, right, top, bottom = 80, 350, 60, 70
	)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	pw, ph := w-left-right, h-top-bottom

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range lines {
		if len(s.sorted) > 0 {
			lo, hi = math.Min(lo, s.sorted[0]), math.Max(hi, s.sorted[len(s.sorted)-1])
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 1000
	}
	// Whole decades around the data, at least 1 ms wide at the bottom.
	d0 := math.Floor(math.Log10(math.Max(lo, 0.1)))
	d1 := math.Max(math.Ceil(math.Log10(math.Max(hi, 1))), d0+1)
	px := func(ms float64) int {
		f := (math.Log10(math.Max(ms, math.Pow(10, d0))) - d0) / (d1 - d0)
		return left + int(f*float64(pw))
	}
	py := func(frac float64) int { return top + ph - int(frac*float64(ph)) }

	// Grid, ticks and tick labels.
	for d := d0; d <= d1; d++ {
		x := px(math.Pow(10, d))
		line(img, x, top, x, top+ph, grey, 1, false)
		label := strconv.FormatFloat(math.Pow(10, d), 'f', -1, 64) // 1000000, not 1e+06
		drawText(img, x-textWidth(label, 2)/2, top+ph+10, label, 2, black)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := py(f)
		line(img, left, y, left+pw, y, grey, 1, false)
		label := fmt.Sprintf("%.2f", f)
		drawText(img, left-textWidth(label, 2)-8, y-7, label, 2, black)
	}
	line(img, left, top, left, top+ph, black, 2, false)
	line(img, left, top+ph, left+pw, top+ph, black, 2, false)
	drawText(img, left, 8, title, 2, black)
	xl := "bound to running latency (ms, log scale)"
	drawText(img, left+pw/2-textWidth(xl, 2)/2, h-30, xl, 2, black)
	drawText(img, left-70, top-30, "fraction", 2, black)

	for i, s := range lines {
		// A step function: at each pod's latency the fraction rises by 1/n.
		x0, y0 := px(math.Pow(10, d0)), py(0)
		for k, ms := range s.sorted {
			x, y := px(ms), py(float64(k+1)/float64(s.n))
			line(img, x0, y0, x, y0, s.color, 3, s.dashed)
			line(img, x, y0, x, y, s.color, 3, s.dashed)
			x0, y0 = x, y
		}
		ly := top + 10 + i*30
		line(img, left+pw+20, ly+7, left+pw+60, ly+7, s.color, 3, s.dashed)
		drawText(img, left+pw+70, ly, s.label, 2, black)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// line draws a straight line width pixels thick; dashed lines draw 8 pixels of every 14.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, width int, dashed bool) {
	steps := max(abs(x1-x0), abs(y1-y0))
	for i := 0; i <= steps; i++ {
		x, y := x0, y0
		if steps > 0 {
			x = x0 + (x1-x0)*i/steps
			y = y0 + (y1-y0)*i/steps
		}
		// The dash pattern follows the position, so a step function's many short
		// segments still look dashed.
		if dashed && (x+y)%14 >= 8 {
			continue
		}
		for dx := 0; dx < width; dx++ {
			for dy := 0; dy < width; dy++ {
				img.Set(x+dx-width/2, y+dy-width/2, c)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
